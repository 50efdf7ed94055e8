"""Where a command's work runs: in the running `kb serve` (it owns the model and the store) or, when
none serves this store, in this process. Each command calls one ``Backend`` method once; the two
adapters give the same results, and say every failure as a ``CommandError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from ingest.store.base import SearchFilter
from kb.cli.common import CommandError
from kb.contract import SearchHit
from kb.search.query import SearchRequest
from kb.settings import Settings


@dataclass(frozen=True, slots=True)
class IngestProgress:
    files_total: int
    files_done: int
    chunks: int
    tokens_per_s: float


ProgressCallback = Callable[[IngestProgress], None]


class Backend(Protocol):
    where: str  # "service at <url>" or "this process", for messages

    def ingest(
        self, root: Path, *, rebuild: bool, exclude: list[str], on_progress: ProgressCallback
    ) -> dict[str, Any]:
        """Index a folder; the report as ``IngestReport.as_dict()``."""
        ...

    def search(self, req: SearchRequest) -> list[SearchHit]: ...

    def ask(self, question: str, flt: SearchFilter | None, rerank: bool) -> Iterator[dict[str, Any]]:
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

    def ingest(
        self, root: Path, *, rebuild: bool, exclude: list[str], on_progress: ProgressCallback
    ) -> dict[str, Any]:
        from ingest.loaders import LoadOptions
        from ingest.pipeline import ChunkSettings, IngestLimits, Progress, ingest_folder
        from ingest.store import StoreError

        embedder, store = self._open()

        def progress(p: Progress) -> None:
            on_progress(IngestProgress(p.files_total, p.files_done, p.chunks, p.tokens_per_s))

        try:
            report = ingest_folder(
                root,
                embedder,
                store,
                ChunkSettings.from_settings(self.settings),
                rebuild=rebuild,
                exclude=exclude,
                workers=self.settings.parse_workers,
                on_progress=progress,
                load_options=LoadOptions.from_settings(self.settings),
                limits=IngestLimits.from_settings(self.settings),
            )
        except StoreError as err:  # includes FingerprintMismatch
            raise CommandError(store_error_message(str(err))) from err
        return report.as_dict()

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

    def ask(self, question: str, flt: SearchFilter | None, rerank: bool) -> Iterator[dict[str, Any]]:
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

    def ingest(
        self, root: Path, *, rebuild: bool, exclude: list[str], on_progress: ProgressCallback
    ) -> dict[str, Any]:
        from kb.service.client import ServiceError

        try:
            job = self.client.submit_folder(root.resolve(), rebuild=rebuild, exclude=exclude, origin="cli")
        except ServiceError as err:
            raise CommandError(str(err)) from err

        def progress(j: dict[str, Any]) -> None:
            p = j["progress"]
            if p:
                on_progress(IngestProgress(p["files_total"], p["files_done"], p["chunks"], p["tokens_per_s"]))

        try:
            job = self.client.wait(job["id"], progress)
        except KeyboardInterrupt:
            raise CommandError(
                f"job {job['id']} goes on in the service ({self.client.base_url}/jobs/{job['id']})"
            ) from None
        except ServiceError as err:
            raise CommandError(f"lost the service while waiting for job {job['id']}: {err}") from err
        if job["state"] == "failed":
            store_error = job["error_type"] in {"StoreError", "FingerprintMismatch"}
            raise CommandError(store_error_message(job["error"]) if store_error else job["error"])
        return job["report"]

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
                task=req.task,
            )
        except ServiceError as err:
            raise CommandError(str(err)) from err
        return [SearchHit.from_json(h) for h in result["hits"]]

    def ask(self, question: str, flt: SearchFilter | None, rerank: bool) -> Iterator[dict[str, Any]]:
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
