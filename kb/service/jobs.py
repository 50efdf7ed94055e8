"""Durable ingest jobs and upload records: one small SQLite file (WAL) under ``data_dir/jobs.sqlite``.

A job syncs one source: ``folder`` jobs a named folder of the user's (``source``, registered in
``ingest.sources``), ``upload`` jobs ``data_dir/uploads`` as the source ``uploads``. States go
queued → running → done | failed | cancelled. A job found ``running`` when the queue opens was cut
off (the service stopped or died mid-ingest) and goes back to ``queued``: ingest is idempotent, so
running it again is safe and finishes the work; but a job that was running when the service died
``MAX_ATTEMPTS`` times is marked failed with the reason instead (it may be what kills it). A cancel
marks a queued job cancelled at once and asks a running one to stop at the end of its batch.
Uploaded files are recorded here with their original names, which are metadata only and never part
of a path.
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

MAX_ATTEMPTS = 2  # a job that was running when the service died this often is not run again
KINDS = ("folder", "upload")
ORIGINS = ("cli", "ui", "api", "watch")
LIST_LIMIT = 100  # most jobs one listing returns
LISTED = 20  # jobs a listing returns unless it asks for another number

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, path TEXT NOT NULL, origin TEXT NOT NULL,
    rebuild INTEGER NOT NULL, exclude TEXT NOT NULL, state TEXT NOT NULL, progress TEXT NOT NULL,
    report TEXT, error TEXT, error_type TEXT, created REAL NOT NULL, updated REAL NOT NULL,
    source TEXT NOT NULL DEFAULT '', allow_removals INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0, cancel INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created);
CREATE TABLE IF NOT EXISTS uploads (
    name TEXT PRIMARY KEY, original_name TEXT NOT NULL, bytes INTEGER NOT NULL, sha256 TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS uploads_sha ON uploads (sha256);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


# columns added since the first version of the file, added to an older one when it opens
_ADDED_COLUMNS = {
    "source": "TEXT NOT NULL DEFAULT ''",
    "allow_removals": "INTEGER NOT NULL DEFAULT 0",
    "attempts": "INTEGER NOT NULL DEFAULT 0",
    "cancel": "INTEGER NOT NULL DEFAULT 0",
}
_COLUMNS = (
    "id, kind, path, origin, rebuild, exclude, state, progress, report, error, error_type, created, "
    "updated, source, allow_removals, attempts, cancel"
)


class JobNotActive(ValueError):
    """The job asked to stop has already finished."""


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
    source: str = ""
    allow_removals: bool = False
    attempts: int = 0
    cancel: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "source": self.source,
            "allow_removals": self.allow_removals,
            "cancel_requested": self.cancel,
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

    def brief(self) -> dict[str, Any]:
        """What a listing shows of the job: everything but the report, whose lists become counts
        (``summary``); ``GET /jobs/{id}`` has the whole report."""
        brief = self.as_dict()
        brief["summary"] = report_summary(brief.pop("report"))
        return brief


def report_summary(report: dict[str, Any] | None) -> dict[str, Any] | None:
    """A report with each list replaced by its length and nested records left out."""
    if report is None:
        return None
    return {
        k: len(v) if isinstance(v, list) else v
        for k, v in report.items()
        if isinstance(v, list | int | float | str | None)
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
        have = {row[1] for row in self._db.execute("PRAGMA table_info(jobs)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in have:
                self._db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

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
            source,
            allow_removals,
            attempts,
            cancel,
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
            source,
            bool(allow_removals),
            attempts,
            bool(cancel),
        )

    # --- jobs -----------------------------------------------------------------------------------
    def submit(
        self,
        kind: str,
        path: str,
        origin: str,
        rebuild: bool = False,
        exclude: Iterable[str] = (),
        source: str = "",
        allow_removals: bool = False,
    ) -> Job:
        """A new queued job; a plain sync of the same source already waiting is returned instead."""
        if kind not in KINDS or origin not in ORIGINS:
            raise ValueError(f"kind must be one of {KINDS} and origin one of {ORIGINS}")
        if not rebuild:
            waiting = self._exec(
                f"SELECT {_COLUMNS} FROM jobs WHERE kind = ? AND source = ? AND state = 'queued' "
                "AND rebuild = 0 AND allow_removals >= ? LIMIT 1",
                (kind, source, int(allow_removals)),
            )
            if waiting:
                return self._job(waiting[0])
        now = time.time()
        job = Job(
            uuid.uuid4().hex[:16],
            kind,
            path,
            origin,
            rebuild,
            list(exclude),
            created=now,
            updated=now,
            source=source,
            allow_removals=allow_removals,
        )
        self._exec(
            f"INSERT INTO jobs ({_COLUMNS}) VALUES "
            "(?, ?, ?, ?, ?, ?, 'queued', '{}', NULL, NULL, NULL, ?, ?, ?, ?, 0, 0)",
            (
                job.id,
                kind,
                path,
                origin,
                int(rebuild),
                json.dumps(job.exclude),
                now,
                now,
                source,
                int(allow_removals),
            ),
        )
        return job

    def get(self, job_id: str) -> Job | None:
        rows = self._exec(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
        return self._job(rows[0]) if rows else None

    def recent(self, limit: int = LIST_LIMIT) -> list[Job]:
        rows = self._exec(f"SELECT {_COLUMNS} FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
        return [self._job(r) for r in rows]

    def active(self, source: str | None = None) -> list[Job]:
        """Queued and running jobs, oldest first (of one source when given)."""
        rows = self._exec(
            f"SELECT {_COLUMNS} FROM jobs WHERE state IN ('queued', 'running') ORDER BY created"
        )
        return [j for j in map(self._job, rows) if source is None or j.source == source]

    def counts(self) -> dict[str, int]:
        return {state: n for state, n in self._exec("SELECT state, COUNT(*) FROM jobs GROUP BY state")}

    def recover(self) -> tuple[int, int]:
        """Jobs cut off while running go back to the queue, or fail once they were cut off
        ``MAX_ATTEMPTS`` times (a cancelled one is cancelled); returns (requeued, failed)."""
        now = time.time()
        reason = f"the service stopped while this job ran, {MAX_ATTEMPTS} times: it is not run again"
        with self._lock:
            self._db.execute(
                "UPDATE jobs SET state = 'cancelled', updated = ? WHERE state = 'running' AND cancel = 1",
                (now,),
            )
            failed = self._db.execute(
                "UPDATE jobs SET state = 'failed', error = ?, error_type = 'Interrupted', updated = ? "
                "WHERE state = 'running' AND attempts >= ?",
                (reason, now, MAX_ATTEMPTS),
            ).rowcount
            requeued = self._db.execute(
                "UPDATE jobs SET state = 'queued', updated = ? WHERE state = 'running'", (now,)
            ).rowcount
        return requeued, failed

    def claim(self) -> Job | None:
        """The oldest queued job, now marked running; None when the queue is empty."""
        with self._lock:
            row = self._db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE state = 'queued' ORDER BY created LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            self._db.execute(
                "UPDATE jobs SET state = 'running', error = NULL, error_type = NULL, "
                "attempts = attempts + 1, updated = ? WHERE id = ?",
                (time.time(), row[0]),
            )
        job = self._job(row)
        job.state, job.attempts = "running", job.attempts + 1
        return job

    def cancel(self, job_id: str) -> Job | None:
        """Cancel a queued job now; ask a running one to stop (``cancel_requested``). None: no such job;
        JobNotActive when it has finished."""
        now = time.time()
        with self._lock:
            row = self._db.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
            if row is None:
                return None
            if row[0] not in ("queued", "running"):
                raise JobNotActive(f"job {job_id} has already finished ({row[0]})")
            new_state = "cancelled" if row[0] == "queued" else "running"
            self._db.execute(
                "UPDATE jobs SET state = ?, cancel = 1, updated = ? WHERE id = ?", (new_state, now, job_id)
            )
        return self.get(job_id)

    def cancel_requested(self, job_id: str) -> bool:
        rows = self._exec("SELECT cancel FROM jobs WHERE id = ?", (job_id,))
        return bool(rows and rows[0][0])

    def cancelled(self, job_id: str, progress: dict[str, Any]) -> None:
        self._exec(
            "UPDATE jobs SET state = 'cancelled', progress = ?, updated = ? WHERE id = ?",
            (json.dumps(progress), time.time(), job_id),
        )

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

    def fail(self, job_id: str, error: BaseException, report: dict[str, Any] | None = None) -> None:
        kind = type(error).__name__
        self._exec(
            "UPDATE jobs SET state = 'failed', error = ?, error_type = ?, report = ?, updated = ? WHERE id = ?",
            (str(error) or kind, kind, json.dumps(report) if report else None, time.time(), job_id),
        )

    def requeue(self, job_id: str) -> None:
        """Back to the queue after a stop of the service (not a death: the attempt does not count)."""
        self._exec(
            "UPDATE jobs SET state = 'queued', attempts = MAX(0, attempts - 1), updated = ? WHERE id = ?",
            (time.time(), job_id),
        )

    def last_done(self) -> Job | None:
        rows = self._exec(f"SELECT {_COLUMNS} FROM jobs WHERE state = 'done' ORDER BY updated DESC LIMIT 1")
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
