"""Durable ingest jobs and upload records: one small SQLite file (WAL) under ``data_dir/jobs.sqlite``.

A job brings the store in line with one folder: ``folder`` jobs with a folder of the user's,
``upload`` jobs with ``data_dir/uploads`` under the ``.uploads/`` source scope. States go
queued → running → done | failed. A job found ``running`` when the queue opens was cut off (the
service stopped or died mid-ingest) and goes back to ``queued``: ingest is idempotent, so running
it again is safe and finishes the work. Uploaded files are recorded here with their original names,
which are metadata only and never part of a path.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

KINDS = ("folder", "upload")
ORIGINS = ("cli", "ui", "api")
LIST_LIMIT = 100

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL, origin TEXT NOT NULL,
    rebuild INTEGER NOT NULL, exclude TEXT NOT NULL, state TEXT NOT NULL, progress TEXT NOT NULL,
    report TEXT, error TEXT, error_type TEXT, created REAL NOT NULL, updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created);
CREATE TABLE IF NOT EXISTS uploads (
    name TEXT PRIMARY KEY, original_name TEXT NOT NULL, bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_sha ON uploads (sha256);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@dataclass
class Job:
    id: str
    kind: str
    path: str
    origin: str
    rebuild: bool = False
    exclude: list[str] = field(default_factory=list)
    state: str = "queued"
    progress: dict[str, Any] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None
    created: float = 0.0
    updated: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "path": self.path,
            "origin": self.origin,
            "rebuild": self.rebuild,
            "exclude": self.exclude,
            "state": self.state,
            "progress": self.progress,
            "report": self.report,
            "error": self.error,
            "error_type": self.error_type,
            "created": _iso(self.created),
            "updated": _iso(self.updated),
        }


@dataclass(frozen=True)
class Upload:
    name: str  # the generated file name under data_dir/uploads
    original_name: str
    bytes: int
    sha256: str


class JobQueue:
    """The jobs table behind a lock: callers on any thread (HTTP handlers, the worker)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _exec(self, sql: str, args: Iterable[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, tuple(args)).fetchall()

    @staticmethod
    def _job(row: tuple) -> Job:
        (
            id_,
            kind,
            path,
            origin,
            rebuild,
            exclude,
            state,
            progress,
            report,
            error,
            error_type,
            created,
            updated,
        ) = row
        return Job(
            id_,
            kind,
            path,
            origin,
            bool(rebuild),
            json.loads(exclude),
            state,
            json.loads(progress),
            json.loads(report) if report else None,
            error,
            error_type,
            created,
            updated,
        )

    # --- jobs -----------------------------------------------------------------------------------
    def submit(
        self, kind: str, path: str, origin: str, rebuild: bool = False, exclude: Iterable[str] = ()
    ) -> Job:
        """A new queued job; an upload job already waiting is returned instead of a second one."""
        if kind not in KINDS or origin not in ORIGINS:
            raise ValueError(f"kind must be one of {KINDS} and origin one of {ORIGINS}")
        if kind == "upload":
            waiting = self._exec("SELECT * FROM jobs WHERE kind = 'upload' AND state = 'queued' LIMIT 1")
            if waiting:
                return self._job(waiting[0])
        now = time.time()
        job = Job(uuid.uuid4().hex[:16], kind, path, origin, rebuild, list(exclude), created=now, updated=now)
        self._exec(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, 'queued', '{}', NULL, NULL, NULL, ?, ?)",
            (job.id, kind, path, origin, int(rebuild), json.dumps(job.exclude), now, now),
        )
        return job

    def get(self, job_id: str) -> Job | None:
        rows = self._exec("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return self._job(rows[0]) if rows else None

    def recent(self, limit: int = LIST_LIMIT) -> list[Job]:
        return [
            self._job(r) for r in self._exec("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
        ]

    def counts(self) -> dict[str, int]:
        return {state: n for state, n in self._exec("SELECT state, COUNT(*) FROM jobs GROUP BY state")}

    def recover(self) -> int:
        """Jobs cut off while running go back to the queue; returns how many."""
        with self._lock:
            cur = self._db.execute(
                "UPDATE jobs SET state = 'queued', updated = ? WHERE state = 'running'", (time.time(),)
            )
            return cur.rowcount

    def claim(self) -> Job | None:
        """The oldest queued job, now marked running; None when the queue is empty."""
        with self._lock:
            row = self._db.execute(
                "SELECT * FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE jobs SET state = 'running', error = NULL, error_type = NULL, "
                "updated = ? WHERE id = ?",
                (time.time(), row[0]),
            )
        job = self._job(row)
        job.state = "running"
        return job

    def set_progress(self, job_id: str, progress: dict[str, Any]) -> None:
        self._exec(
            "UPDATE jobs SET progress = ?, updated = ? WHERE id = ?",
            (json.dumps(progress), time.time(), job_id),
        )

    def finish(self, job_id: str, report: dict[str, Any], progress: dict[str, Any]) -> None:
        self._exec(
            "UPDATE jobs SET state = 'done', report = ?, progress = ?, updated = ? WHERE id = ?",
            (json.dumps(report), json.dumps(progress), time.time(), job_id),
        )

    def fail(self, job_id: str, error: BaseException) -> None:
        kind = type(error).__name__
        self._exec(
            "UPDATE jobs SET state = 'failed', error = ?, error_type = ?, updated = ? WHERE id = ?",
            (str(error) or kind, kind, time.time(), job_id),
        )

    def requeue(self, job_id: str) -> None:
        self._exec("UPDATE jobs SET state = 'queued', updated = ? WHERE id = ?", (time.time(), job_id))

    def last_done(self) -> Job | None:
        rows = self._exec("SELECT * FROM jobs WHERE state = 'done' ORDER BY updated DESC LIMIT 1")
        return self._job(rows[0]) if rows else None

    # --- uploads and small facts ------------------------------------------------------------------
    def add_upload(self, upload: Upload) -> None:
        self._exec(
            "INSERT INTO uploads VALUES (?, ?, ?, ?, ?)",
            (upload.name, upload.original_name, upload.bytes, upload.sha256, time.time()),
        )

    def upload(self, name: str) -> Upload | None:
        rows = self._exec("SELECT name, original_name, bytes, sha256 FROM uploads WHERE name = ?", (name,))
        return Upload(*rows[0]) if rows else None

    def upload_with_hash(self, sha256: str) -> Upload | None:
        rows = self._exec(
            "SELECT name, original_name, bytes, sha256 FROM uploads WHERE sha256 = ? LIMIT 1", (sha256,)
        )
        return Upload(*rows[0]) if rows else None

    def uploads(self) -> dict[str, Upload]:
        return {
            r[0]: Upload(*r) for r in self._exec("SELECT name, original_name, bytes, sha256 FROM uploads")
        }

    def remove_upload(self, name: str) -> None:
        self._exec("DELETE FROM uploads WHERE name = ?", (name,))

    def set_meta(self, key: str, value: str) -> None:
        self._exec(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta(self, key: str) -> str | None:
        rows = self._exec("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0][0] if rows else None

    def close(self) -> None:
        with self._lock:
            self._db.close()
