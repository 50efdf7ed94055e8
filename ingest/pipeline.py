"""Sync a source: discover its folder, parse (worker processes), chunk, embed, write — incremental
and exact, and touching nothing but that source's points.

A source is a named folder; every point carries the source's name and the file's path inside the
folder, and its id derives from both (``kb.contract.source_key``), so two folders with equal relative
paths never share a point. Sync safety: a folder that is missing, unreadable or empty never empties
its source, and a sync that would remove more than half of its files stops too, unless the caller
allows removals (``SyncRefused`` names the folder and what would go).

Order of writes (each step is idempotent, so a run killed at any moment is repaired by running it
again; the next run redoes exactly the files that are not complete):

1. the collection is created if missing (on the embedded engine: built aside and renamed into place)
   and its fingerprint recorded before any point is written; a fingerprint that differs stops the
   run before it writes anything;
2. the points of the source's files that are no longer in the folder are deleted;
3. a file skipped in this run (unreadable, not a regular file, too large, parse failure or limits,
   no text) has its points deleted when it is skipped: a skipped file holds no points;
4. a new or changed file's chunks join a batch of about ``embed_batch_tokens`` tokens (a file may
   span several batches); each batch is embedded, then upserted under ids derived from
   (source, position), so a changed file's points are overwritten in place;
5. after the upsert of the batch that holds a file's last chunk, the file's leftovers are deleted
   (points whose ``file_hash`` is not the new one: the tail of a file that shrank);
6. a run stopped by an exception between batches (a cancel, a stop) deletes the points of the files
   it had begun but not finished writing, so that each file is complete under its hash or absent;
7. the store is flushed after a batch (after 4 and 5) at most every ``FLUSH_EVERY_S`` seconds, and
   at the end of the run. Every write is in the engine's write-ahead log when it returns, so a
   killed process loses nothing; an OS crash may lose the writes since the last flush, a suffix of
   the sequence above, which the next run redoes like any other incomplete file.

A file counts as done (and is skipped by the next run) only when all its ``n_chunks`` points carry
its current hash, which is read back from the store itself (``Store.file_states``): there is no
separate record that could disagree with the points. A run killed between 4 and 5 leaves a file
whose points carry two hashes (``mixed``), which is not complete either.
"""

from __future__ import annotations

import hashlib
import os
import stat
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest.chunking import chunk_document
from ingest.discover import discover, escapes
from ingest.loaders import Document, LoadError, LoadOptions
from ingest.pagesources import PageSources
from ingest.parsing.pool import ParseLimits, ParsePool
from ingest.records import Chunk, point_id, sha256_text
from ingest.sparse import sparse_vector
from ingest.store.base import FileState, FingerprintMismatch, Point, Store, StoreError
from kb.contract import SOURCE_NAME, source_key
from kb.settings import DEFAULTS, Settings

# the store is flushed after a batch when this long has passed since the last flush (Qdrant's own
# flush interval); a SIGKILL loses nothing either way (the engine's WAL has every write)
FLUSH_EVERY_S = 5.0
SPARSE_SCHEME = "bm25-blake2b-v1"  # change when ingest.sparse's tokenizing or weights change
# how points are named (recorded in the fingerprint): change when payload keys or point ids change
IDENTITY_KEY = "identity"
IDENTITY_SCHEME = "source-name-path-v1"
# a sync removing more than this share of a source's files (and at least MIN_MASS_REMOVAL) stops
MASS_REMOVAL_SHARE = 0.5
MIN_MASS_REMOVAL = 2


class SyncRefused(Exception):
    """A sync that would delete what may not be meant to go: nothing was deleted.

    ``would_remove``: the document keys whose points the sync would delete."""

    def __init__(self, message: str, source: str, would_remove: list[str]) -> None:
        super().__init__(message)
        self.source, self.would_remove = source, would_remove


class LegacyCollection(StoreError):
    """The collection was written by a kb version whose points carry no source name."""


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
    """What a run did; ``pages``: where the pages of each PDF indexed or updated got their text."""

    source: str = ""
    indexed: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[tuple[str, str]] = field(default_factory=list)
    pages: dict[str, PageSources] = field(default_factory=dict)
    chunks: int = 0
    tokens: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return {
            "source": self.source,
            "indexed": self.indexed,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "removed": self.removed,
            "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
            "warnings": [{"path": p, "message": m} for p, m in self.warnings],
            "pages": {source: pages.as_dict() for source, pages in self.pages.items()},
            "chunks": self.chunks,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ChunkSettings:
    """Tokens per chunk (of the embedding model's own tokenizer) and tokens shared by neighbours."""

    target: int = DEFAULTS.chunk_tokens
    overlap: int = DEFAULTS.chunk_overlap

    @classmethod
    def from_settings(cls, settings: Settings) -> ChunkSettings:
        return cls(settings.chunk_tokens, settings.chunk_overlap)


@dataclass(frozen=True)
class IngestLimits:
    """What one run may spend: file size, tokens per embed call, time and memory per parsed file."""

    max_file_mb: int = DEFAULTS.max_file_mb
    embed_batch_tokens: int = DEFAULTS.embed_batch_tokens
    parse: ParseLimits = field(default_factory=ParseLimits)

    @classmethod
    def from_settings(cls, settings: Settings) -> IngestLimits:
        return cls(settings.max_file_mb, settings.embed_batch_tokens, ParseLimits.from_settings(settings))


class NotRegularFile(OSError):
    """A FIFO, socket or device where a file was expected (opening a FIFO would block)."""


_FILE_TYPES = {
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory",
}


def _file_type(mode: int) -> str:
    return _FILE_TYPES.get(stat.S_IFMT(mode), "not a regular file")


def file_sha256(path: Path) -> str:
    """The file's SHA-256; NotRegularFile for anything but a regular file (checked on the open file)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO must not block the open
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise NotRegularFile(f"not a regular file ({_file_type(mode)})")
        h = hashlib.sha256()
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def display_name(source: str) -> str:
    """A source as reports print it: bytes of a non-UTF-8 file name escaped (``\\xff``)."""
    return source.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def admit(source: str, path: Path, max_bytes: int) -> tuple[str, str]:
    """(SHA-256, "") of a file to parse, or ("", why it is skipped)."""
    if display_name(source) != source:
        return "", "file name is not valid UTF-8"
    try:
        st = path.stat()
        if not stat.S_ISREG(st.st_mode):
            return "", f"not a regular file ({_file_type(st.st_mode)})"
        if st.st_size > max_bytes:
            return "", f"larger than {max_bytes >> 20} MB ({st.st_size >> 20} MB)"
        return file_sha256(path), ""
    except NotRegularFile as err:
        return "", str(err)
    except OSError as err:
        why = err.strerror or str(err)
        return "", (f"broken symbolic link ({why})" if path.is_symlink() else f"unreadable: {why}")


def owns(source: str, key: str) -> bool:
    """Whether a sync of the source named ``source`` is responsible for (and may remove) document ``key``."""
    return key.startswith(source + "/")


def make_chunks(
    doc: Document,
    source: str,
    file_hash: str,
    count_tokens: Callable[[str], int],
    cs: ChunkSettings,
    hard_max: int,
) -> list[Chunk]:
    sections = chunk_document(doc, count_tokens, cs.target, cs.overlap, hard_max)
    sections = [s for s in sections if s.text.strip()]
    n = len(sections)
    return [
        Chunk(
            id=point_id(source, i),
            text=s.text,
            source=source,
            kind=doc.kind,
            position=i,
            n_chunks=n,
            chunk_hash=sha256_text(s.text),
            file_hash=file_hash,
            page=s.page,
            heading_path=s.heading_path,
            line_start=s.line_start,
            line_end=s.line_end,
            locator=s.locator,
            n_tokens=count_tokens(s.text),
            meta={**doc.meta, **s.meta} | ({"language": doc.language} if doc.language else {}),
        )
        for i, s in enumerate(sections)
    ]


class _Writer:
    """Buffers chunks, embeds and writes them in batches of about ``batch_tokens``, closes finished files.

    A file's chunks may span several batches; a file is finished (its leftovers deleted, its outcome
    reported) after the batch that holds its last chunk.
    """

    def __init__(
        self,
        embedder,
        store: Store,
        report: IngestReport,
        progress: Progress,
        on_progress,
        batch_tokens: int = DEFAULTS.embed_batch_tokens,
    ):
        self.embedder, self.store, self.report, self.progress = embedder, store, report, progress
        self.on_progress = on_progress
        self.batch_tokens = batch_tokens
        self.buffer: deque[Chunk] = deque()
        self.tokens = 0
        self.pending: dict[str, int] = {}  # source -> chunks not yet written
        self.total: dict[str, int] = {}  # source -> chunks of the file
        self.finished: dict[str, tuple[str, str]] = {}  # source -> (file_hash, outcome list name)
        self.flushed = time.monotonic()

    def add(self, source: str, file_hash: str, outcome: str, chunks: list[Chunk]) -> None:
        self.pending[source] = self.total[source] = len(chunks)
        self.finished[source] = (file_hash, outcome)
        self.buffer.extend(chunks)
        self.tokens += sum(c.n_tokens for c in chunks)
        while self.tokens >= self.batch_tokens:
            self._write(self._take(self.batch_tokens))

    def abandon(self) -> None:
        """A run stopped between batches: the files it had begun to write go, so that every file is
        either complete under its hash or absent (the next sync indexes them again)."""
        for source, left in self.pending.items():
            if left < self.total[source]:
                self.store.delete_source(source)
        self.store.flush()

    def flush(self) -> None:
        """Write whatever is buffered and flush the store."""
        self._write(self._take(self.tokens), flush=True)

    def _take(self, tokens: int) -> list[Chunk]:
        batch: list[Chunk] = []
        taken = 0
        while self.buffer and (not batch or taken + self.buffer[0].n_tokens <= tokens):
            chunk = self.buffer.popleft()
            batch.append(chunk)
            taken += chunk.n_tokens
        self.tokens -= taken
        return batch

    def _write(self, batch: list[Chunk], flush: bool = False) -> None:
        if batch:
            texts = list(dict.fromkeys(c.text for c in batch))  # repeated chunks are embedded once
            vectors = dict(zip(texts, self.embedder.embed_documents(texts)))
            self.store.upsert(
                [
                    Point(
                        c.id, vectors[c.text], c.payload(), sparse_vector(" ".join([*c.heading_path, c.text]))
                    )
                    for c in batch
                ]
            )
            for c in batch:
                self.pending[c.source] -= 1
                self.progress.chunks += 1
                self.progress.tokens += c.n_tokens
            self.report.chunks += len(batch)
            self.report.tokens += sum(c.n_tokens for c in batch)
        for source in [s for s, left in self.pending.items() if left == 0]:
            file_hash, outcome = self.finished.pop(source)
            del self.pending[source], self.total[source]
            self.store.delete_source(source, keep_file_hash=file_hash)  # leftovers of a shrunk file
            getattr(self.report, outcome).append(source)
        if flush or time.monotonic() - self.flushed >= FLUSH_EVERY_S:
            self.store.flush()
            self.flushed = time.monotonic()
        self.on_progress(self.progress)


def collection_fingerprint(embedder, chunk_settings: ChunkSettings) -> dict:
    """What the collection's vectors and point ids depend on (``Store.ensure_collection`` checks it)."""
    return {
        **embedder.fingerprint(),
        "chunk_target": chunk_settings.target,
        "chunk_overlap": chunk_settings.overlap,
        "sparse": SPARSE_SCHEME,
        IDENTITY_KEY: IDENTITY_SCHEME,
    }


def open_collection(store: Store, embedder, chunk_settings: ChunkSettings, rebuild: bool = False) -> None:
    """Create (``rebuild``: recreate) the collection, or check that it holds what this run would write.

    A collection of the version before named sources (the same fingerprint without ``identity``)
    raises LegacyCollection naming the command that re-embeds it."""
    fingerprint = collection_fingerprint(embedder, chunk_settings)
    if rebuild:
        store.recreate_collection(embedder.dim, fingerprint)
        return
    try:
        store.ensure_collection(embedder.dim, fingerprint)
    except FingerprintMismatch as err:
        stored = err.stored or {}
        if stored and IDENTITY_KEY not in stored and {**stored, IDENTITY_KEY: IDENTITY_SCHEME} == err.wanted:
            raise LegacyCollection(
                "the collection was written by an earlier kb version, whose points carry no source name: "
                "take it over in place, without re-embedding, with `kb ingest DIR --name NAME --adopt` (DIR "
                "the folder it was built from; stop `kb serve` first), or re-embed it with `kb ingest DIR "
                "--name NAME --rebuild` (then `kb ingest OTHER_DIR` for each further folder)"
            ) from err
        raise


def _folder_files(
    root: Path, source: str, exclude: Iterable[str], avoid: Sequence[Path] = ()
) -> list[tuple[str, Path]] | None:
    """(key, path) of every file of the source; None when the folder is missing or unreadable."""
    try:
        if not root.is_dir():
            return None
        os.listdir(root)  # an unreadable folder walks as an empty one: tell them apart
    except OSError:
        return None
    return [(source_key(source, rel), path) for rel, path in discover(root, exclude, avoid)]


def check_removals(
    source: str, root: Path, files: list[tuple[str, Path]] | None, going: list[str], held: int
) -> None:
    """SyncRefused when this sync would empty the source or remove more than half of its files.

    ``going``: the keys whose points the sync would delete; ``held``: the files the store holds."""
    if not going:
        return
    if files is None:
        why = f"the folder of source {source!r} is missing or unreadable: {root}"
    elif not files:
        why = f"the folder of source {source!r} is empty: {root}"
    elif len(going) >= MIN_MASS_REMOVAL and len(going) > held * MASS_REMOVAL_SHARE:
        why = f"this sync would remove {len(going)} of the {held} files of source {source!r} ({root})"
    else:
        return
    raise refused(why, source, going)


def refused(why: str, source: str, going: list[str]) -> SyncRefused:
    return SyncRefused(
        f"{why}; nothing was deleted. Check the folder (an unmounted drive, a mistyped path?), then "
        "sync with --allow-empty to delete its points, or remove the source (`kb source remove "
        f"{source}`)",
        source,
        going,
    )


def ingest_folder(
    root: Path,
    embedder,
    store: Store,
    chunk_settings: ChunkSettings = ChunkSettings(),
    *,
    source: str,
    rebuild: bool = False,
    exclude: Iterable[str] = (),
    allow_removals: bool = False,
    workers: int = 2,
    on_progress: Callable[[Progress], None] | None = None,
    load_options: LoadOptions | None = None,
    limits: IngestLimits = IngestLimits(),
    within: Sequence[Path] = (),
    avoid: Sequence[Path] = (),
) -> IngestReport:
    """Bring the points of the source named ``source`` in line with the files under ``root``; see the
    module docstring for the order of writes. Points of other sources are never touched.

    ``avoid`` (resolved folders: kb's data folder) is never walked into nor read through a link, and a
    link to a file outside ``within`` (resolved folders, when given) is skipped with the reason.


    Before anything is deleted, ``check_removals`` may stop the run with SyncRefused (a missing,
    unreadable or empty folder; more than half of the files going) unless ``allow_removals``.
    Files that cannot be indexed are reported in ``skipped`` with the reason and never abort the run;
    parsing runs in worker processes under ``limits.parse`` (see ``ingest.parsing.pool``).
    ``on_progress`` is called after every batch: an exception it raises stops the run there, with
    every batch written so far complete (the next sync redoes the files left incomplete).
    """
    if not SOURCE_NAME.fullmatch(source):
        raise ValueError(f"invalid source name {source!r}")
    started = time.monotonic()
    root = Path(root)
    found = _folder_files(root, source, exclude, avoid)
    if found is None and not allow_removals:
        raise refused(f"the folder of source {source!r} is missing or unreadable: {root}", source, [])
    on_progress = on_progress or (lambda p: None)
    open_collection(store, embedder, chunk_settings, rebuild)  # FingerprintMismatch propagates
    report = IngestReport(source=source)
    states = {k: st for k, st in store.file_states().items() if owns(source, k)}
    files = found or []
    present = {key for key, _ in files}

    todo: list[tuple[str, Path, str, str]] = []  # key, path, hash, outcome
    skips: list[tuple[str, str]] = []  # key, reason
    for key, path in files:
        why = escapes(path, within, avoid)
        digest, why = ("", why) if why else admit(key, path, limits.max_file_mb << 20)
        if why:
            skips.append((key, why))
            continue
        state = states.get(key)
        if state and state.complete and state.file_hash == digest:
            report.unchanged.append(key)
        else:
            todo.append((key, path, digest, "updated" if state else "indexed"))
    removed = sorted(set(states) - present)
    going = removed + [key for key, _ in skips if key in states]
    if not allow_removals:
        check_removals(source, root, found, going, len(states))
    for key in removed:
        store.delete_source(key)
        report.removed.append(key)
    for key, why in skips:
        _skip(report, store, states, key, why)

    progress = Progress(files_total=len(todo))
    on_progress(progress)
    writer = _Writer(embedder, store, report, progress, on_progress, limits.embed_batch_tokens)
    hard_max = embedder.max_document_tokens
    with ParsePool[Any](workers, limits.parse, load_options) as pool, _abandoned_on_error(writer):
        for (key, _path, digest, outcome), result in pool.map(todo, lambda item: str(item[1])):
            progress.current = key
            progress.files_done += 1
            if isinstance(result, LoadError):
                _skip(report, store, states, key, str(result))
                continue
            report.warnings.extend((key, w) for w in result.warnings)
            chunks = make_chunks(result, key, digest, embedder.count_tokens, chunk_settings, hard_max)
            if not chunks:
                _skip(report, store, states, key, "no text to index")
                continue
            if (pages := PageSources.from_meta(result.meta)) is not None:
                report.pages[key] = pages
            writer.add(key, digest, outcome, chunks)
        writer.flush()  # the last batch; flushes the store even when nothing was left to write
    report.seconds = time.monotonic() - started
    return report


@contextmanager
def _abandoned_on_error(writer: _Writer) -> Iterator[None]:
    """A run stopped by an exception (a cancel raised from ``on_progress``, a stop) leaves no file half
    written; a killed process leaves incomplete files, which the next run finds and redoes."""
    try:
        yield
    except BaseException:
        writer.abandon()
        raise


def remove_source(store: Store, source: str) -> int:
    """Delete every point of the source named ``source``; returns how many files it held."""
    keys = [k for k in store.file_states() if owns(source, k)]
    for key in keys:
        store.delete_source(key)
    store.flush()
    return len(keys)


def source_states(store: Store) -> dict[str, dict[str, FileState]]:
    """The store's files grouped by source name."""
    grouped: dict[str, dict[str, FileState]] = {}
    for key, state in store.file_states().items():
        grouped.setdefault(key.partition("/")[0], {})[key] = state
    return grouped


def _skip(report: IngestReport, store: Store, states: dict, source: str, reason: str) -> None:
    """Report a file that is not indexed; what the store held of it goes (it is not what was indexed)."""
    report.skipped.append((display_name(source), reason))
    if source in states:
        store.delete_source(source)


__all__ = [
    "ChunkSettings",
    "FingerprintMismatch",
    "IngestLimits",
    "IngestReport",
    "LegacyCollection",
    "ParseLimits",
    "Progress",
    "SyncRefused",
    "ingest_folder",
    "open_collection",
    "remove_source",
    "source_states",
]
