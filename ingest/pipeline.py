"""Ingest a folder: discover, parse (process pool), chunk, embed, write — incremental and exact.

Order of writes (what makes a crash at any moment recoverable by re-running):
1. a changed file's new points are upserted under ids derived from (source, position), so they
   overwrite its old points in place;
2. only when all of a file's points are written are its leftovers deleted (points whose file_hash
   is not the new one: the tail of a file that shrank);
3. a file counts as done only when all ``n_chunks`` points carry its current hash, which is read
   back from the store itself: there is no separate record that could disagree with the points.
Removed files are deleted first. The store is flushed at the end of each batch.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from .chunking import chunk_document
from .discover import discover
from .loaders import Document, LoadError, LoadOptions
from .parse import parse
from .records import Chunk, point_id, sha256_text
from .sparse import sparse_vector
from .store.base import FingerprintMismatch, Point, Store

EMBED_BATCH_TOKENS = 16384  # chunks gathered before one embed call (spread over the contexts)
MAX_FILE_BYTES = 512 << 20
SPARSE_SCHEME = "bm25-blake2b-v1"  # change when ingest.sparse's tokenizing or weights change
HIDDEN_NAMESPACE = "."  # sources starting with it are never discovered in a folder (uploads live there)


@dataclass
class Progress:
    files_total: int = 0
    files_done: int = 0
    chunks: int = 0
    tokens: int = 0
    current: str = ""
    started: float = field(default_factory=time.monotonic)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(1e-9, time.monotonic() - self.started)


@dataclass
class IngestReport:
    indexed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    chunks: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "indexed": self.indexed, "updated": self.updated, "unchanged": self.unchanged,
            "removed": self.removed, "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "warnings": [{"path": p, "message": m} for p, m in self.warnings],
            "chunks": self.chunks, "tokens": self.tokens, "seconds": round(self.seconds, 3),
        }  # fmt: skip


@dataclass(frozen=True)
class ChunkSettings:
    target: int = 512
    overlap: int = 64


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def owns(scope: str, source: str) -> bool:
    """Whether an ingest with this scope is responsible for (and may remove) ``source``."""
    return source.startswith(scope) if scope else not source.startswith(HIDDEN_NAMESPACE)


def make_chunks(doc: Document, source: str, file_hash: str, count_tokens: Callable[[str], int],
                cs: ChunkSettings, hard_max: int) -> list[Chunk]:  # fmt: skip
    sections = chunk_document(doc, count_tokens, cs.target, cs.overlap, hard_max)
    sections = [s for s in sections if s.text.strip()]
    n = len(sections)
    return [
        Chunk(id=point_id(source, i), text=s.text, source=source, kind=doc.kind, position=i, n_chunks=n,
              chunk_hash=sha256_text(s.text), file_hash=file_hash, page=s.page, heading_path=s.heading_path,
              line_start=s.line_start, line_end=s.line_end, n_tokens=count_tokens(s.text),
              meta={**doc.meta, **s.meta} | ({"language": doc.language} if doc.language else {}))
        for i, s in enumerate(sections)
    ]  # fmt: skip


class _Writer:
    """Buffers chunks, embeds them in large packed calls, writes points, closes finished files."""

    def __init__(self, embedder, store: Store, report: IngestReport, progress: Progress, on_progress):
        self.embedder, self.store, self.report, self.progress = embedder, store, report, progress
        self.on_progress = on_progress
        self.buffer: list[Chunk] = []
        self.tokens = 0
        self.pending: dict[str, int] = {}  # source -> chunks not yet written
        self.finished: dict[str, tuple[str, str]] = {}  # source -> (file_hash, outcome list name)

    def add(self, source: str, file_hash: str, outcome: str, chunks: list[Chunk]) -> None:
        self.pending[source] = len(chunks)
        self.finished[source] = (file_hash, outcome)
        self.buffer.extend(chunks)
        self.tokens += sum(c.n_tokens for c in chunks)
        if self.tokens >= EMBED_BATCH_TOKENS:
            self.flush()

    def flush(self) -> None:
        if self.buffer:
            batch, self.buffer, self.tokens = self.buffer, [], 0
            vectors = self.embedder.embed_documents([c.text for c in batch])
            self.store.upsert([
                Point(c.id, v, c.payload(), sparse_vector(" ".join([*c.heading_path, c.text])))
                for c, v in zip(batch, vectors)
            ])  # fmt: skip
            for c in batch:
                self.pending[c.source] -= 1
                self.progress.chunks += 1
                self.progress.tokens += c.n_tokens
            self.report.chunks += len(batch)
            self.report.tokens += sum(c.n_tokens for c in batch)
        for source in [s for s, left in self.pending.items() if left == 0]:
            file_hash, outcome = self.finished.pop(source)
            del self.pending[source]
            self.store.delete_source(source, keep_file_hash=file_hash)  # leftovers of a shrunk file
            getattr(self.report, outcome).append(source)
        self.store.flush()
        self.on_progress(self.progress)


def ingest_folder(root: Path, embedder, store: Store, chunk_settings: ChunkSettings = ChunkSettings(), *,
                  rebuild: bool = False, exclude: Iterable[str] = (), workers: int = 2, scope: str = "",
                  on_progress: Callable[[Progress], None] | None = None,
                  load_options: LoadOptions | None = None) -> IngestReport:  # fmt: skip
    """Bring the store in line with the files under ``root``; see the module docstring for the order.

    ``scope`` (e.g. ``".uploads/"``) prefixes every source, and the folder then owns only the sources
    under it. Without a scope the folder owns every source except those in a hidden namespace (first
    segment starting with '.', which discovery never yields): a folder ingest leaves uploads alone.
    """
    if scope and not (scope.startswith(HIDDEN_NAMESPACE) and scope.endswith("/")):
        raise ValueError(f"scope {scope!r} must look like '.name/'")
    started = time.monotonic()
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    on_progress = on_progress or (lambda p: None)
    fingerprint = {**embedder.fingerprint(), "chunk_target": chunk_settings.target,
                   "chunk_overlap": chunk_settings.overlap, "sparse": SPARSE_SCHEME}  # fmt: skip
    if rebuild:
        store.recreate_collection(embedder.dim, fingerprint)
    else:
        store.ensure_collection(embedder.dim, fingerprint)  # FingerprintMismatch propagates
    report = IngestReport()
    files = [(scope + rel, path) for rel, path in discover(root, exclude)]
    states = store.file_states()
    present = {rel for rel, _ in files}
    for source in sorted(s for s in set(states) - present if owns(scope, s)):
        store.delete_source(source)
        report.removed.append(source)

    todo: list[tuple[str, Path, str, str]] = []  # rel, path, hash, outcome
    for rel, path in files:
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                report.skipped.append((rel, f"larger than {MAX_FILE_BYTES >> 20} MB"))
                continue
            digest = file_sha256(path)
        except OSError as err:
            report.skipped.append((rel, f"unreadable: {err.strerror or err}"))
            continue
        state = states.get(rel)
        if state and state.complete and state.file_hash == digest:
            report.unchanged.append(rel)
        else:
            todo.append((rel, path, digest, "updated" if state else "indexed"))

    progress = Progress(files_total=len(todo))
    on_progress(progress)
    writer = _Writer(embedder, store, report, progress, on_progress)
    hard_max = embedder.max_tokens
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=max(1, workers), mp_context=ctx) as pool:
        queue: deque[tuple[tuple[str, Path, str, str], Future]] = deque()
        items = iter(todo)
        for item in items:  # keep a bounded number of files in flight
            queue.append((item, pool.submit(parse, str(item[1]), load_options)))
            if len(queue) >= 2 * max(1, workers):
                _consume(queue.popleft(), writer, report, progress, store, embedder, chunk_settings, hard_max)
        while queue:
            _consume(queue.popleft(), writer, report, progress, store, embedder, chunk_settings, hard_max)
    writer.flush()
    store.flush()
    report.seconds = time.monotonic() - started
    return report


def _consume(entry, writer: _Writer, report: IngestReport, progress: Progress, store: Store, embedder,
             cs: ChunkSettings, hard_max: int) -> None:  # fmt: skip
    (rel, _path, digest, outcome), fut = entry
    progress.current = rel
    try:
        result = fut.result()
    except Exception as err:  # the worker died (e.g. killed for memory): report the file, go on
        result = LoadError(f"parser crashed: {type(err).__name__}")
    progress.files_done += 1
    if isinstance(result, LoadError):
        report.skipped.append((rel, str(result)))
        store.delete_source(rel)  # the file is no longer what was indexed
        return
    report.warnings.extend((rel, w) for w in result.warnings)
    chunks = make_chunks(result, rel, digest, embedder.count_tokens, cs, hard_max)
    if not chunks:
        report.skipped.append((rel, "no text to index"))
        store.delete_source(rel)
        return
    writer.add(rel, digest, outcome, chunks)


__all__ = ["ChunkSettings", "FingerprintMismatch", "IngestReport", "Progress", "ingest_folder"]
