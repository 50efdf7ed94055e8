"""The one owner of the model, the store and the ingest worker, behind `kb serve` (``service.py``).

It holds one embedder, the store, a reranker loaded on first use, the registry of sources
(``ingest.sources``, under the data folder) and one worker thread running sync jobs one at a time
from the durable queue (``jobs.py``). A job cut off by a stop goes back to the queue; one cut off by
a crash is found ``running`` at the next start and queued again (failed after the second crash). A
cancelled job stops at the end of a batch: what was written stays valid, the next sync does the rest.

Concurrency: searches are answered while a job runs. The embedder embeds queries on a context of
their own, which one thread at a time uses (``_SerialQueries``); ingest uses the document contexts,
which the embedder hands out under its own lock. Qdrant Edge takes concurrent reads and writes from
several threads, so the store is not locked. The reranker has one context and its own lock.

Uploads are kept as ``data_dir/uploads/<16 hex>-<word-character stem><.ext>``; the client's file
name is metadata only. They are the source ``uploads``, which no folder's sync touches
(``pipeline.owns``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import threading
import time
import uuid
from contextlib import ExitStack
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

import numpy as np

from ingest.discover import hidden_part
from ingest.loaders import LoadOptions, kind_for
from ingest.model.embedder import make_embedder
from ingest.model.gpuinfo import query_vram
from ingest.model.protocols import RerankScore
from ingest.model.recipes import cut_dimension
from ingest.pipeline import (
    ChunkSettings,
    IngestLimits,
    Progress,
    SyncRefused,
    ingest_folder,
    remove_source,
    source_states,
)
from ingest.records import point_id
from ingest.sources import SOURCES_FILE, Source, SourceRegistry, now_iso, summarize
from ingest.store import make_store
from kb.contract import UPLOAD_SCOPE, UPLOAD_SOURCE, split_source
from kb.search.document import DocumentNotFound, DocumentText, read_document
from kb.search.query import SearchRequest, SearchResult, search
from kb.service.access import EVERYTHING, Access, checked_allow
from kb.service.answers import AnswerService
from kb.service.jobs import Job, JobQueue, Upload
from kb.service.watch import Watcher
from kb.settings import DEFAULT_QUERY_TASK, Settings
from kb.tools.evaluate import REPORT_DIR, list_reports, report_file

log = logging.getLogger(__name__)

UPLOADS_DIR = "uploads"
JOBS_DB = "jobs.sqlite"
UPLOAD_NAME = re.compile(r"[0-9a-f]{16}-[\w-]{1,40}(\.[a-z0-9]{1,10})?")
PROGRESS_EVERY_S = 0.25  # how often a running job's progress is written to the queue
WORKER_IDLE_S = 1.0


class InvalidRequest(ValueError):
    """The request cannot be carried out as asked (bad path, bad parameter)."""


class NotFound(LookupError):
    """No such document, upload, job or file."""


class Refused(PermissionError):
    """The request names something outside what the service may hand out."""


class _Interrupted(Exception):
    """The service is stopping: the running job goes back to the queue."""


class _Cancelled(Exception):
    """The running job was cancelled: it stops at the end of its batch."""


def safe_upload_name(original: str) -> str:
    """A fresh file name for an upload: random hex, a word-character stem, the suffix if plain.

    Only the last path segment of ``original`` is looked at, and only for readability: no part of it
    can climb directories, name a device or carry control characters.
    """
    base = original.replace("\\", "/").rsplit("/", 1)[-1].strip()
    stem, dot, ext = base.rpartition(".")
    if not dot or not re.fullmatch(r"[A-Za-z0-9]{1,10}", ext) or not stem.strip("."):
        stem, ext = base, ""
    slug = re.sub(r"[^\w-]+", "_", stem).strip("_")[:40] or "file"
    return f"{uuid.uuid4().hex[:16]}-{slug}" + (f".{ext.lower()}" if ext else "")


def _progress_dict(p: Progress) -> dict[str, Any]:
    return {
        "files_total": p.files_total,
        "files_done": p.files_done,
        "chunks": p.chunks,
        "tokens": p.tokens,
        "tokens_per_s": round(p.tokens_per_s, 1),
        "current": p.current,
    }


class Closing(RuntimeError):
    """The service is stopping: no model call starts any more."""


class _SerialQueries:
    """The embedder, with its single query context used by one thread at a time."""

    def __init__(self, embedder: Any, lock: threading.Lock, closed: threading.Event) -> None:
        self._embedder, self._lock, self._closed = embedder, lock, closed

    def embed_query(self, text: str, task: str | None = None) -> np.ndarray:
        with self._lock:
            if self._closed.is_set():
                raise Closing("the service is stopping")
            return self._embedder.embed_query(text, task)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)


class _SerialReranker:
    """The reranker's one context, locked for one document's scoring at a time (never a whole search),
    so that reranked searches take turns document by document and a stop waits for one document only."""

    def __init__(self, reranker: Any, lock: threading.Lock, closed: threading.Event) -> None:
        self._reranker, self._lock, self._closed = reranker, lock, closed

    def score(
        self, query: str, documents: list[str], instruction: str = DEFAULT_QUERY_TASK
    ) -> list[RerankScore]:
        out: list[RerankScore] = []
        for doc in documents:
            with self._lock:
                if self._closed.is_set():
                    raise Closing("the service is stopping")
                out.extend(self._reranker.score(query, [doc], instruction))
        return out


class KbService:
    """The resources and the ingest worker; ``service.py`` only parses requests and answers."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.uploads_dir = settings.data_dir / UPLOADS_DIR
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        with ExitStack() as undo:  # what opened is closed again if a later step fails
            self.sources = SourceRegistry(settings.data_dir / SOURCES_FILE)
            self.queue = JobQueue(settings.data_dir / JOBS_DB)
            undo.callback(self.queue.close)
            self.store = make_store(settings)
            undo.callback(self.store.close)
            started = time.perf_counter()
            self.embedder = make_embedder(settings)
            self.load_seconds = time.perf_counter() - started
            undo.pop_all()
        self._query_lock, self._rerank_lock = threading.Lock(), threading.Lock()
        self._embed_lock, self._load_lock = threading.Lock(), threading.Lock()
        self._models_closed = threading.Event()
        self._queries = _SerialQueries(self.embedder, self._query_lock, self._models_closed)
        self._reranker: Any = None
        self.answers = AnswerService(settings, lambda req: self.search(req).hits)
        self._stop, self._wake = threading.Event(), threading.Event()
        self._worker = threading.Thread(target=self._work, name="kb-ingest", daemon=True)
        self._closed = False
        self._watcher: Watcher | None = None
        resumed, failed = self.queue.recover()
        if resumed:
            log.info("resuming %d interrupted job(s)", resumed)
        if failed:
            log.warning("%d job(s) cut off twice by a stop of the service are marked failed", failed)

    # --- lifecycle --------------------------------------------------------------------------------
    def start(self) -> None:
        if not self._worker.is_alive():
            self._worker.start()
        s = self.settings
        if s.watch and self._watcher is None:
            self._watcher = Watcher(self.sources, self._sync_changed, s.watch_debounce_s, s.watch_rescan_s)
            self._watcher.start()

    def _sync_changed(self, name: str) -> None:
        self.submit_folder(None, False, [], "watch", name)

    def close(self) -> None:
        """Stop the worker (a running job goes back to the queue), then close what was opened.

        The worker stops between batches. One still inside a long batch after ``STOP_GRACE_S`` (a big
        model on a CPU) is left to die with the process: its job stays ``running`` in the queue, which
        the next start resumes, and every point written so far is already in the store's WAL."""
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.close()
        self._stop.set()
        self._wake.set()
        if self._worker.is_alive():
            self._worker.join(self.settings.stop_grace_s)
        if self._worker.is_alive():
            log.warning("the running job is mid-batch; it resumes when the service starts again")
            return  # the model and the store are in use: closing them under the worker would crash it
        # no model call is under way once these are held, and none starts after (``Closing``)
        with self._load_lock, self._query_lock, self._rerank_lock, self._embed_lock:
            self._models_closed.set()
            if self._reranker is not None:
                self._reranker.close()
        self.answers.close()
        self.store.close()
        self.embedder.close()
        self.queue.close()

    # --- the ingest worker ------------------------------------------------------------------------
    def _work(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.queue.claim()
                if job is not None:
                    self._run(job)
                    continue
            except Exception:  # the queue itself failed (disk full…): say so, keep serving
                log.exception("the ingest worker failed; it tries again")
            self._wake.wait(WORKER_IDLE_S)
            self._wake.clear()

    def _run(self, job: Job) -> None:
        latest: dict[str, Any] = {}
        last_write = 0.0
        upload = job.kind == "upload"

        def on_progress(p: Progress) -> None:
            nonlocal last_write
            if self._stop.is_set():
                raise _Interrupted
            if self.queue.cancel_requested(job.id):
                raise _Cancelled
            latest.update(_progress_dict(p))
            if time.monotonic() - last_write >= PROGRESS_EVERY_S or p.files_done == p.files_total:
                self.queue.set_progress(job.id, latest)
                last_write = time.monotonic()

        s = self.settings
        try:
            if upload:
                source = Source(UPLOAD_SOURCE, str(self.uploads_dir))
                root, within, avoid = self.uploads_dir, tuple[Path, ...](), tuple[Path, ...]()
            else:
                source = self.sources.get(job.source)
                root = Path(source.path)
                if root.is_dir():  # checked again: the folder may have changed (or become a link) since
                    root = self.checked_root(source.path)
                within = tuple(r.resolve() for r in s.ingest_roots) or (root,)
                avoid = (s.data_dir.resolve(),)
            report = ingest_folder(
                root,
                self.embedder,
                self.store,
                ChunkSettings.from_settings(s),
                source=source.name,
                rebuild=job.rebuild,
                exclude=source.exclude,
                allow_removals=job.allow_removals,
                workers=s.parse_workers,
                on_progress=on_progress,
                load_options=LoadOptions.from_settings(s),
                limits=IngestLimits.from_settings(s),
                within=within,
                avoid=avoid,
            )
        except _Interrupted:
            self.queue.requeue(job.id)
            log.info("job %s interrupted; it resumes when the service starts again", job.id)
            return
        except _Cancelled:
            self.queue.cancelled(job.id, latest)
            log.info("job %s cancelled", job.id)
            return
        except SyncRefused as err:  # the report names what would go, for the app to show
            self.queue.fail(job.id, err, {"source": err.source, "would_remove": err.would_remove})
            return
        except Exception as err:  # noqa: BLE001 — the job fails with its reason; the service goes on
            log.warning("job %s failed: %s", job.id, err)
            self.queue.fail(job.id, err)
            return
        self.queue.finish(job.id, report.as_dict(), latest)
        if not upload:
            self._note_sync(source.name)
        if job.rebuild:  # the rebuild dropped every other source's points: sync them again
            for other in self.sources.all():
                if other.name != source.name:
                    self.queue.submit("folder", other.path, job.origin, source=other.name)
            if not upload and self.queue.uploads():
                self.queue.submit("upload", str(self.uploads_dir), job.origin, source=UPLOAD_SOURCE)

    def _note_sync(self, name: str) -> None:
        try:
            self.sources.update(name, last_sync=now_iso())
        except LookupError:  # removed while it synced
            pass

    def submit_folder(
        self,
        path: str | None,
        rebuild: bool,
        exclude: list[str],
        origin: str,
        name: str | None = None,
        allow_removals: bool = False,
    ) -> Job:
        """Queue a sync of a folder (added as a source, named ``name`` or after the folder, unless it is
        one) or, without a path, of the source ``name``."""
        if path is None:
            if name is None:
                raise InvalidRequest("a folder path or a source name is required")
            if name == UPLOAD_SOURCE:
                return self._submit_uploads(origin, rebuild)
            source = self.sources.get(name)
        else:
            source = self.sources.add(self.checked_root(path), name, tuple(exclude) if exclude else None)
        job = self.queue.submit(
            "folder", source.path, origin, rebuild, source.exclude, source.name, allow_removals
        )
        self._wake.set()
        return job

    def checked_root(self, path: str) -> Path:
        """The resolved folder a folder job may ingest, checked when it is submitted and again when it
        runs: absolute, a folder, not hidden, neither inside nor around kb's data folder, and under
        ``KB_INGEST_ROOTS`` when set (symlinks resolved first). InvalidRequest or Refused otherwise."""
        root = Path(path)
        if not root.is_absolute():
            raise InvalidRequest(f"path must be absolute: {path}")
        resolved = root.resolve()
        if not resolved.is_dir():
            raise InvalidRequest(f"not a folder: {path}")
        data = self.settings.data_dir.resolve()
        if resolved.is_relative_to(data):
            raise InvalidRequest(f"{path} is inside kb's own data folder; upload files instead")
        if data.is_relative_to(resolved):
            raise Refused(f"{path} contains kb's own data folder ({data}); ingest a folder beside it")
        hidden = hidden_part(root) or hidden_part(resolved)
        if hidden:
            raise Refused(f"{path} is in a hidden folder ({hidden}); hidden folders are never ingested")
        roots = [r.resolve() for r in self.settings.ingest_roots]
        if roots and not any(resolved.is_relative_to(r) for r in roots):
            raise Refused(
                f"{path} is outside the folders this service may ingest (KB_INGEST_ROOTS: "
                f"{', '.join(map(str, self.settings.ingest_roots))})"
            )
        return resolved

    def _submit_uploads(self, origin: str, rebuild: bool = False) -> Job:
        job = self.queue.submit("upload", str(self.uploads_dir), origin, rebuild, source=UPLOAD_SOURCE)
        self._wake.set()
        return job

    # --- sources ----------------------------------------------------------------------------------
    def list_sources(self) -> list[dict[str, Any]]:
        """Every source (the uploads last) with what the store holds of it."""
        registered = [*self.sources.all(), Source(UPLOAD_SOURCE, str(self.uploads_dir), watch=False)]
        return [
            {**row, "syncing": bool(self.queue.active(row["name"]))}
            for row in summarize(registered, source_states(self.store))
        ]

    def remove_source(self, name: str) -> dict[str, Any]:
        """Delete a folder source's points, then forget it; its queued syncs are cancelled."""
        if name == UPLOAD_SOURCE:
            raise InvalidRequest("the uploads are removed one by one (DELETE /documents)")
        self.sources.get(name)  # UnknownSource
        for job in self.queue.active(name):
            if job.state == "running":
                raise InvalidRequest(
                    f"job {job.id} is syncing {name!r}: cancel it first (kb jobs cancel {job.id})"
                )
            self.queue.cancel(job.id)
        files = remove_source(self.store, name)
        self.sources.remove(name)
        return {"removed": name, "files": files}

    def set_watch(self, name: str, on: bool) -> dict[str, Any]:
        return self.sources.update(name, watch=on).as_dict()

    def set_access(self, name: str, allow: list[str]) -> dict[str, Any]:
        """Restrict a source to users and groups of the accounts file (empty: every signed-in user)."""
        if name == UPLOAD_SOURCE:
            raise InvalidRequest("the uploads are readable by every signed-in user")
        self.sources.get(name)  # UnknownSource first
        return self.sources.update(name, allow=checked_allow(self.settings, allow)).as_dict()

    def source_at(self, path: str) -> Source | None:
        """The registered source whose folder ``path`` is (symlinks resolved), if any."""
        folder = str(Path(path).resolve())
        return next((s for s in self.sources.all() if s.path == folder), None)

    # --- jobs -------------------------------------------------------------------------------------
    def cancel_job(self, job_id: str) -> dict[str, Any]:
        job = self.queue.cancel(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r}")
        return job.as_dict()

    # --- uploads ----------------------------------------------------------------------------------
    def store_uploads(self, files: list[tuple[str, BinaryIO]], origin: str) -> dict[str, Any]:
        """Keep each (client's name, content) under a generated name, then queue the uploads job.

        Files of a type that is never indexed (images, archives…) are turned away, not stored."""
        stored, rejected = [], []
        for original, content in files:
            name = safe_upload_name(original)
            if kind_for(Path(name)) is None:
                reason = f"unsupported file type ({Path(name).suffix})"
                rejected.append({"original_name": original, "reason": reason})
                continue
            tmp = self.uploads_dir / f".{name}.part"  # hidden: a running upload job does not see it
            digest, size = hashlib.sha256(), 0
            with tmp.open("wb") as out:
                while block := content.read(1 << 20):
                    digest.update(block)
                    size += len(block)
                    out.write(block)
            existing = self.queue.upload_with_hash(digest.hexdigest())
            if existing and not (self.uploads_dir / existing.name).is_file():  # removed by hand: forget it
                self.queue.remove_upload(existing.name)
                existing = None
            if existing:
                tmp.unlink()
                stored.append(
                    {
                        "original_name": original,
                        "source": UPLOAD_SCOPE + existing.name,
                        "bytes": size,
                        "duplicate": True,
                    }
                )
                continue
            os.replace(tmp, self.uploads_dir / name)
            self.queue.add_upload(Upload(name, original, size, digest.hexdigest()))
            stored.append(
                {"original_name": original, "source": UPLOAD_SCOPE + name, "bytes": size, "duplicate": False}
            )
        if not stored:
            raise InvalidRequest("; ".join(f"{r['original_name']}: {r['reason']}" for r in rejected))
        job = self._submit_uploads(origin)
        return {"job": job.as_dict(), "files": stored, "rejected": rejected}

    # --- searching and embedding ------------------------------------------------------------------
    def _loaded_reranker(self) -> _SerialReranker:
        with self._load_lock:
            if self._models_closed.is_set():
                raise Closing("the service is stopping")
            if self._reranker is None:
                from ingest.model.reranker import make_reranker

                self._reranker = make_reranker(self.settings)
        return _SerialReranker(self._reranker, self._rerank_lock, self._models_closed)

    def search(self, req: SearchRequest) -> SearchResult:
        """A search; the locks are held only around each model call (``_SerialQueries``,
        ``_SerialReranker``), so a long reranked search does not hold up plain ones."""
        reranker = self._loaded_reranker() if req.rerank else None
        return search(req, self._queries, self.store, reranker)

    def count_tokens(self, texts: list[str]) -> list[int]:
        return [self.embedder.count_tokens(t) for t in texts]

    def embeddings(self, texts: list[str], dimensions: int | None) -> np.ndarray:
        """Document vectors for one batch of texts (the API splits a request into batches)."""
        with self._embed_lock:
            if self._models_closed.is_set():
                raise Closing("the service is stopping")
            vectors = self.embedder.embed_documents(texts)
        return vectors if dimensions is None else cut_dimension(vectors, dimensions)

    # --- documents and files ----------------------------------------------------------------------
    def read_document(
        self, source: str, page: int | None, lines: tuple[int, int] | None, max_chars: int
    ) -> DocumentText:
        """A document, a page or a line range of it, from its stored chunks."""
        try:
            return read_document(self.store, source, page, lines, max_chars)
        except DocumentNotFound as err:
            raise NotFound(str(err)) from None
        except ValueError as err:
            raise InvalidRequest(str(err)) from None

    def documents(self) -> list[dict[str, Any]]:
        """Every indexed file; ``pages`` says where a PDF's pages got their text (as the ingest report
        does: ``{"pages", "text", "fallback", "ocr", "unreadable"}``), None for other files."""
        uploads = self.queue.uploads()
        out = []
        for source, st in sorted(self.store.file_states().items()):
            up = uploads.get(source[len(UPLOAD_SCOPE) :]) if source.startswith(UPLOAD_SCOPE) else None
            name, path = split_source(source)
            out.append(
                {
                    "source": source,
                    "source_name": name,
                    "path": path,
                    "kind": kind_for(PurePosixPath(source)),
                    "chunks": st.n_chunks,
                    "points": st.n_points,
                    "complete": st.complete,
                    "file_hash": st.file_hash,
                    "origin": "upload" if source.startswith(UPLOAD_SCOPE) else "folder",
                    "original_name": up.original_name if up else None,
                    "pages": st.pages.as_dict() if st.pages else None,
                }
            )
        return out

    def delete_document(self, source: str) -> dict[str, Any]:
        state = self.store.file_states().get(source)
        upload = self._upload_of(source)
        if state is None and upload is None:
            raise NotFound(f"no document {source!r}")
        if upload is not None:  # the file goes first, so no upload job can index it again
            (self.uploads_dir / upload.name).unlink(missing_ok=True)
            self.queue.remove_upload(upload.name)
        self.store.delete_source(source)
        self.store.flush()
        return {
            "deleted": source,
            "points": state.n_points if state else 0,
            "file_removed": upload is not None,
        }

    def _upload_of(self, source: str) -> Upload | None:
        if not source.startswith(UPLOAD_SCOPE):
            return None
        name = source[len(UPLOAD_SCOPE) :]
        return self.queue.upload(name) if UPLOAD_NAME.fullmatch(name) else None

    def file_for(self, source: str) -> tuple[Path, str]:
        """The file behind a source and the name to offer; refuses anything outside its root."""
        if source.startswith(UPLOAD_SCOPE):
            upload = self._upload_of(source)
            if upload is None:
                raise NotFound(f"no upload {source!r}")
            original = upload.original_name.replace("\\", "/").rsplit("/", 1)[-1]
            root, rel, name = self.uploads_dir, upload.name, original
        else:
            source_name, rel = split_source(source)
            try:
                root = Path(self.sources.get(source_name).path)
            except LookupError:
                raise NotFound(f"no source {source_name!r}") from None
            name = PurePosixPath(rel).name
        root = root.resolve()
        path = (root / rel).resolve()
        if not path.is_relative_to(root):
            raise Refused(f"{source!r} is outside its source's folder")
        if not source.startswith(UPLOAD_SCOPE) and not self.store.retrieve([point_id(source, 0)]):
            raise NotFound(f"{source!r} is not an indexed document")
        if not path.is_file():
            raise NotFound(f"{source!r} is no longer on disk")
        return path, "".join(ch for ch in name if ch.isprintable()) or path.name

    def _readable_points(self, access: Access) -> int:
        states = self.store.file_states().items()
        return sum(st.n_points for key, st in states if access.reads(key))

    # --- evaluation reports (`kb eval`) -----------------------------------------------------------
    def eval_reports(self) -> list[dict[str, Any]]:
        """The reports under ``data_dir/eval/reports``, newest first (``evaluate.list_reports``)."""
        return list_reports(self.settings.data_dir / REPORT_DIR)

    def _report_file(self, name: str, suffix: str) -> Path:
        try:
            return report_file(self.settings.data_dir / REPORT_DIR, name, suffix)
        except ValueError as err:
            raise InvalidRequest(str(err)) from None
        except FileNotFoundError as err:
            raise NotFound(str(err)) from None

    def eval_report(self, name: str) -> dict[str, Any]:
        """One report by its name (a file stem of the list): ``{name, data (its JSON), markdown (the .md
        text, None if missing), png (its path, None if missing)}``; only files directly inside the
        report folder are read."""
        path = self._report_file(name, ".json")
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise NotFound(f"report {name!r} cannot be read: {err}") from None
        try:
            markdown: str | None = self._report_file(name, ".md").read_text(encoding="utf-8")
        except (NotFound, OSError, ValueError):
            markdown = None
        try:
            png: Path | None = self._report_file(name, ".png")
        except NotFound:
            png = None
        return {"name": name, "data": report, "markdown": markdown, "png": png}

    def eval_chart(self, name: str) -> Path:
        """The chart of a report (NotFound if it has none)."""
        return self._report_file(name, ".png")

    # --- status -----------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        s = self.settings
        return {
            "ok": True,
            "data_dir": str(s.data_dir.resolve()),
            "qdrant_url": s.qdrant_url,
            "collection": s.collection,
        }

    def status(self, access: Access = EVERYTHING) -> dict[str, Any]:
        """The model, the index and the jobs; ``access``: the last ingest only when its source is readable,
        the points of readable sources only."""
        info = self.embedder.info()
        last = self.queue.last_done()
        if last is not None and not access.reads_source(last.source or ""):
            last = None
        vram = query_vram() if info["device"] == "GPU" else None  # None on a CPU or when nvidia-smi fails
        return {
            **self.health(),
            "model": self.settings.embed_model,
            "model_path": info["model"],
            "recipe": info["recipe"],
            "device": info["device"],
            "dim": info["dim"],
            "native_dim": info["native_dim"],
            "contexts": info["contexts"],
            "max_tokens": info["max_tokens"],
            "model_load_s": round(self.load_seconds, 3),
            "patched_engine": info["patched_engine"],
            "vram": vram,
            "points": self.store.count() if access.readable is None else self._readable_points(access),
            "reranker_loaded": self._reranker is not None,
            "answers": self.answers.status(),
            "jobs": self.queue.counts(),
            "last_ingest": None
            if last is None
            else {
                "job": last.id,
                "path": last.path,
                "kind": last.kind,
                "finished": last.as_dict()["updated"],
                "report": last.report,
            },
        }
