"""Where a command's work runs: in the running `kb serve` (it owns the model and the store) or, when
none serves this store, in this process. Each command calls one ``Backend`` method once; the two
adapters give the same results, and say every failure as a ``CommandError``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ingest.store.base import SearchFilter
from kb.cli.common import EXIT_FAIL, EXIT_USAGE, CommandError
from kb.contract import UPLOAD_SOURCE, SearchHit
from kb.search.query import SearchRequest
from kb.settings import Settings


@dataclass(frozen=True, slots=True)
class IngestProgress:
    files_total: int
    files_done: int
    chunks: int
    tokens_per_s: float


ProgressCallback = Callable[[IngestProgress], None]


@dataclass(frozen=True, slots=True)
class SyncRequest:
    """What `kb ingest` asks: a folder (added as a source or synced) or, without one, the source
    ``name``, or every source when neither is given."""

    root: Path | None = None
    name: str | None = None
    rebuild: bool = False
    exclude: tuple[str, ...] = ()
    allow_removals: bool = False
    adopt: bool = False  # take the previous version's collection over as this source first


class Backend(Protocol):
    where: str  # "service at <url>" or "this process", for messages

    def ingest(self, req: SyncRequest, on_progress: ProgressCallback) -> list[dict[str, Any]]:
        """Sync the sources asked for; one report (``IngestReport.as_dict()``) per source."""
        ...

    def search(self, req: SearchRequest) -> list[SearchHit]: ...

    def sources(self) -> list[dict[str, Any]]:
        """Every source as ``ingest.sources.summarize`` describes it."""
        ...

    def remove_source(self, name: str) -> dict[str, Any]: ...

    def watch_source(self, name: str, on: bool) -> dict[str, Any]: ...

    def source_access(self, name: str, allow: list[str]) -> dict[str, Any]:
        """Restrict the source to users and groups (empty: every signed-in user)."""
        ...

    def jobs(self) -> list[dict[str, Any]]: ...

    def cancel_job(self, job_id: str) -> dict[str, Any]: ...

    def ask(
        self, question: str, flt: SearchFilter | None, rerank: bool
    ) -> Generator[dict[str, Any], None, None]:
        """The answer's events (``kb.answer.flow``); closing the iterator stops the generation."""
        ...

    def get(
        self, source: str, page: int | None, lines: tuple[int, int] | None, max_chars: int
    ) -> dict[str, Any]:
        """A document, one page or a line range of it (``DocumentText.to_json()``)."""
        ...

    def documents(self) -> list[dict[str, Any]]: ...

    def status(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


NO_SERVICE_JOBS = "jobs run in `kb serve`, and none is running for this store"
ADOPT_NEEDS_STORE = (
    "--adopt rewrites the whole collection and needs the store to itself: stop `kb serve`, run this "
    "again, then start it"
)


def store_error_message(message: str) -> str:
    return message + ("" if "rebuild" in message else " (kb ingest --rebuild re-embeds)")


class LocalBackend:
    """The library in this process: the model and the store opened on first need, closed by ``close``."""

    where = "this process"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._embedder: Any = None
        self._store: Any = None
        self._reranker: Any = None
        self._generator: Any = None

    def _open(self) -> tuple[Any, Any]:
        from ingest.model.download import ModelUnavailable
        from ingest.model.embedder import make_embedder
        from ingest.store import StoreError, make_store

        if self._store is None:
            try:
                self._store = make_store(self.settings)
                self._embedder = make_embedder(self.settings)
            except (ModelUnavailable, StoreError) as err:
                self.close()
                raise CommandError(str(err)) from err
        return self._embedder, self._store

    @property
    def registry(self) -> Any:
        from ingest.sources import SOURCES_FILE, SourceRegistry

        return SourceRegistry(self.settings.data_dir / SOURCES_FILE)

    def _plan(self, req: SyncRequest) -> list[Any]:
        """The sources to sync, in order; a rebuild first, then every other source after it."""
        from ingest.sources import Source, SourceError, UnknownSource

        registry = self.registry
        uploads = self.settings.data_dir / UPLOAD_SOURCE
        try:
            if req.root is not None:
                first = [registry.add(req.root, req.name, req.exclude or None)]
            elif req.name is not None and req.name != UPLOAD_SOURCE:
                first = [registry.get(req.name)]
            else:
                first = []
        except (SourceError, UnknownSource) as err:
            raise CommandError(str(err), EXIT_USAGE) from err
        every = [*registry.all(), *([Source(UPLOAD_SOURCE, str(uploads))] if uploads.is_dir() else [])]
        if req.name == UPLOAD_SOURCE and req.root is None:
            first = every[-1:] if uploads.is_dir() else []
        if first and not req.rebuild:
            return first
        return first + [s for s in every if s not in first]

    def ingest(self, req: SyncRequest, on_progress: ProgressCallback) -> list[dict[str, Any]]:
        from ingest.loaders import LoadOptions
        from ingest.pipeline import ChunkSettings, IngestLimits, Progress, SyncRefused, ingest_folder
        from ingest.sources import now_iso
        from ingest.store import StoreError

        plan = self._plan(req)
        embedder, store = self._open()
        adopted = self._adopt(plan[0].name, embedder, store) if req.adopt and plan else None

        def progress(p: Progress) -> None:
            on_progress(IngestProgress(p.files_total, p.files_done, p.chunks, p.tokens_per_s))

        reports = []
        for i, source in enumerate(plan):
            try:
                report = ingest_folder(
                    Path(source.path),
                    embedder,
                    store,
                    ChunkSettings.from_settings(self.settings),
                    source=source.name,
                    rebuild=req.rebuild and i == 0,
                    exclude=source.exclude,
                    allow_removals=req.allow_removals,
                    workers=self.settings.parse_workers,
                    on_progress=progress,
                    load_options=LoadOptions.from_settings(self.settings),
                    limits=IngestLimits.from_settings(self.settings),
                    avoid=(self.settings.data_dir.resolve(),),  # kb's own data is never read
                )
            except StoreError as err:  # includes FingerprintMismatch
                raise CommandError(store_error_message(str(err))) from err
            except SyncRefused as err:
                raise CommandError(str(err)) from err
            if source.name != UPLOAD_SOURCE:
                self.registry.update(source.name, last_sync=now_iso())
            reports.append(report.as_dict())
        if adopted is not None and reports:
            reports[0]["adopted"] = adopted
        return reports

    def _adopt(self, name: str, embedder: Any, store: Any) -> dict[str, Any]:
        from ingest.adopt import adopt_legacy
        from ingest.pipeline import ChunkSettings
        from ingest.store import StoreError

        try:
            return adopt_legacy(store, embedder, ChunkSettings.from_settings(self.settings), name).as_dict()
        except StoreError as err:  # AdoptRefused, FingerprintMismatch
            raise CommandError(str(err)) from err

    def sources(self) -> list[dict[str, Any]]:
        from ingest.pipeline import source_states
        from ingest.sources import Source, summarize

        _, store = self._open()
        uploads = Source(UPLOAD_SOURCE, str(self.settings.data_dir / UPLOAD_SOURCE), watch=False)
        return summarize([*self.registry.all(), uploads], source_states(store))

    def remove_source(self, name: str) -> dict[str, Any]:
        from ingest.pipeline import remove_source
        from ingest.sources import UnknownSource

        if name == UPLOAD_SOURCE:
            raise CommandError("the uploads are removed one by one, in the app or with DELETE /documents")
        try:
            self.registry.get(name)
        except UnknownSource as err:
            raise CommandError(str(err), EXIT_USAGE) from err
        _, store = self._open()
        files = remove_source(store, name)
        self.registry.remove(name)
        return {"removed": name, "files": files}

    def watch_source(self, name: str, on: bool) -> dict[str, Any]:
        from ingest.sources import UnknownSource

        try:
            return self.registry.update(name, watch=on).as_dict()
        except UnknownSource as err:
            raise CommandError(str(err), EXIT_USAGE) from err

    def source_access(self, name: str, allow: list[str]) -> dict[str, Any]:
        from ingest.sources import SourceError, UnknownSource
        from kb.service.access import checked_allow

        try:
            if name == UPLOAD_SOURCE:
                raise SourceError("the uploads are readable by every signed-in user")
            self.registry.get(name)
            return self.registry.update(name, allow=checked_allow(self.settings, allow)).as_dict()
        except (SourceError, UnknownSource) as err:
            raise CommandError(str(err), EXIT_USAGE) from err

    def jobs(self) -> list[dict[str, Any]]:
        raise CommandError(NO_SERVICE_JOBS)

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        raise CommandError(NO_SERVICE_JOBS)

    def search(self, req: SearchRequest) -> list[SearchHit]:
        from ingest.model.download import ModelUnavailable
        from kb.search.query import search

        embedder, store = self._open()
        try:
            if req.rerank and self._reranker is None:
                from ingest.model.reranker import make_reranker

                self._reranker = make_reranker(self.settings)
            return search(req, embedder, store, self._reranker).hits
        except ModelUnavailable as err:
            raise CommandError(str(err)) from err

    def ask(
        self, question: str, flt: SearchFilter | None, rerank: bool
    ) -> Generator[dict[str, Any], None, None]:
        from ingest.model.download import ModelUnavailable
        from kb.answer.flow import AnswerOptions, AnswersOff, EmptyQuestion, answer_events
        from kb.answer.generate import GeneratorError, make_generator

        self._open()
        try:
            if self._generator is None:
                self._generator = make_generator(self.settings)
            options = AnswerOptions.from_settings(self.settings, rerank=rerank)
            yield from answer_events(question, self.search, self._generator, options, flt)
        except (AnswersOff, EmptyQuestion, GeneratorError, ModelUnavailable) as err:
            raise CommandError(str(err)) from err

    def get(
        self, source: str, page: int | None, lines: tuple[int, int] | None, max_chars: int
    ) -> dict[str, Any]:
        from kb.search.document import DocumentNotFound, read_document

        _, store = self._open()
        try:
            return read_document(store, source, page, lines, max_chars).to_json()
        except (DocumentNotFound, ValueError) as err:
            raise CommandError(str(err)) from err

    def documents(self) -> list[dict[str, Any]]:
        from ingest.loaders import kind_for

        _, store = self._open()
        return [
            {
                "source": source,
                "kind": kind_for(PurePosixPath(source)),
                "chunks": st.n_chunks,
                "complete": st.complete,
            }
            for source, st in sorted(store.file_states().items())
        ]

    def status(self) -> dict[str, Any]:
        from kb.answer.generate import answers_status

        embedder, store = self._open()
        s = self.settings
        return {
            "where": self.where,
            "model": s.embed_model,
            "dim": embedder.dim,
            "points": store.count(),
            "documents": len(store.file_states()),
            "answers": answers_status(s),
        }

    def close(self) -> None:
        for resource in (self._generator, self._reranker, self._embedder, self._store):
            if resource is not None:
                resource.close()
        self._generator = self._reranker = self._embedder = self._store = None


class ServiceBackend:
    """The running service, through its HTTP API."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.where = f"the service at {client.base_url}"

    def _call(self, method: str, *args: Any, **kw: Any) -> Any:
        from kb.service.client import ServiceError

        try:
            return getattr(self.client, method)(*args, **kw)
        except ServiceError as err:
            code = EXIT_USAGE if err.status in (400, 404, 409) else EXIT_FAIL
            raise CommandError(str(err), code) from err

    def ingest(self, req: SyncRequest, on_progress: ProgressCallback) -> list[dict[str, Any]]:
        if req.adopt:
            raise CommandError(ADOPT_NEEDS_STORE)
        if req.root is not None or req.name is not None:
            names: list[str | None] = [req.name]
        else:  # every source; a rebuild of the first queues the others itself
            names = [s["name"] for s in self._call("sources") if s["kind"] == "folder" or s["files"]]
            names = names[:1] if req.rebuild else names
        reports = []
        for name in names:
            job = self._call(
                "submit_folder",
                req.root,
                rebuild=req.rebuild,
                exclude=req.exclude,
                origin="cli",
                name=name,
                allow_removals=req.allow_removals,
            )
            reports.append(self._wait(job, on_progress))
        if req.rebuild:  # the service queued a sync of every other source after the rebuild
            for job in self._call("jobs"):
                if job["state"] in ("queued", "running"):
                    reports.append(self._wait(job, on_progress))
        return reports

    def _wait(self, job: dict[str, Any], on_progress: ProgressCallback) -> dict[str, Any]:
        from kb.service.client import ServiceError

        def progress(j: dict[str, Any]) -> None:
            p = j["progress"]
            if p:
                on_progress(IngestProgress(p["files_total"], p["files_done"], p["chunks"], p["tokens_per_s"]))

        try:
            job = self.client.wait(job["id"], progress)
        except KeyboardInterrupt:
            raise CommandError(
                f"job {job['id']} goes on in the service (`kb jobs cancel {job['id']}` stops it)"
            ) from None
        except ServiceError as err:
            raise CommandError(f"lost the service while waiting for job {job['id']}: {err}") from err
        if job["state"] == "cancelled":
            raise CommandError(f"job {job['id']} was cancelled; the next sync finishes it")
        if job["state"] == "failed":
            store_error = job["error_type"] in {"StoreError", "FingerprintMismatch", "LegacyCollection"}
            raise CommandError(store_error_message(job["error"]) if store_error else job["error"])
        report: dict[str, Any] = job["report"]
        return report

    def sources(self) -> list[dict[str, Any]]:
        return self._call("sources")

    def remove_source(self, name: str) -> dict[str, Any]:
        return self._call("remove_source", name)

    def watch_source(self, name: str, on: bool) -> dict[str, Any]:
        return self._call("watch_source", name, on)

    def source_access(self, name: str, allow: list[str]) -> dict[str, Any]:
        return self._call("source_access", name, allow)

    def jobs(self) -> list[dict[str, Any]]:
        return self._call("jobs")

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._call("cancel_job", job_id)

    def search(self, req: SearchRequest) -> list[SearchHit]:
        from kb.service.client import ServiceError

        flt = req.filter
        try:
            result = self.client.search(
                req.query,
                k=req.k,
                rerank=req.rerank,
                hybrid=req.hybrid,
                prefix=flt.source_prefix if flt else None,
                glob=flt.source_glob if flt else None,
                kinds=flt.kinds if flt else (),
                exts=flt.exts if flt else (),
                sources=flt.sources if flt else (),
                task=req.task,
            )
        except ServiceError as err:
            raise CommandError(str(err)) from err
        return [SearchHit.from_json(h) for h in result["hits"]]

    def ask(
        self, question: str, flt: SearchFilter | None, rerank: bool
    ) -> Generator[dict[str, Any], None, None]:
        from kb.service.client import ServiceError

        try:
            yield from self.client.ask(question, rerank=rerank, **_filter_fields(flt))
        except ServiceError as err:
            raise CommandError(str(err)) from err

    def get(
        self, source: str, page: int | None, lines: tuple[int, int] | None, max_chars: int
    ) -> dict[str, Any]:
        from kb.service.client import ServiceError

        try:
            return self.client.document(source, page=page, lines=lines, max_chars=max_chars)
        except ServiceError as err:
            raise CommandError(str(err)) from err

    def documents(self) -> list[dict[str, Any]]:
        from kb.service.client import ServiceError

        try:
            return self.client.documents()
        except ServiceError as err:
            raise CommandError(str(err)) from err

    def status(self) -> dict[str, Any]:
        from kb.service.client import ServiceError

        try:
            return {"where": self.where, **self.client.status()}
        except ServiceError as err:
            raise CommandError(str(err)) from err

    def close(self) -> None:
        pass


def _filter_fields(flt: SearchFilter | None) -> dict[str, Any]:
    if flt is None:
        return {}
    return {"prefix": flt.source_prefix, "glob": flt.source_glob, "kinds": flt.kinds, "exts": flt.exts}


def open_backend(settings: Settings) -> Backend:
    """The running `kb serve` for this store when one answers, else this process."""
    from kb.service.client import find_service

    client = find_service(settings)
    return ServiceBackend(client) if client is not None else LocalBackend(settings)
