"""What every vector store adapter offers: records, filters, errors and the protocol.

A collection holds one named dense vector ``"dense"`` (cosine) and one named sparse
vector ``"sparse"`` (IDF modifier) per point, plus the chunk payload. Adapters add a
``dirs`` field to each payload (the source's ancestor directories and the source
itself) for prefix filters and strip it from what they return.

The fingerprint (embedding model, dimension, chunking…) is stored where each backend
has room for it: in the collection's ``metadata`` on a Qdrant server, in a JSON file
beside the shard for the embedded engine. No sentinel point exists, so counts,
scrolls and searches see only chunks.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ingest.pagesources import PageSources
from ingest.records import Hit
from ingest.sparse import SparseVector

Vector = Sequence[float] | np.ndarray  # a dense vector: a list, a tuple or a numpy array

DEFAULT_K = 10


class StoreError(Exception):
    """The store cannot be used: unreachable server, store locked by another process…"""


class FingerprintMismatch(StoreError):
    """The collection was built with other settings than the ones asked for."""

    def __init__(self, stored: dict[str, Any] | None, wanted: dict[str, Any]) -> None:
        self.stored = stored
        self.wanted = wanted
        if stored is None:
            detail = "the collection holds points but no fingerprint"
        else:
            keys = sorted(k for k in stored.keys() | wanted.keys() if stored.get(k) != wanted.get(k))
            detail = "; ".join(f"{k}: stored {stored.get(k)!r}, wanted {wanted.get(k)!r}" for k in keys)
        super().__init__(f"collection fingerprint differs ({detail}); rebuild the collection")


@dataclass(frozen=True, slots=True)
class Point:
    """One chunk as stored: ``vector`` may be a numpy array."""

    id: str
    vector: Vector
    payload: dict[str, Any]
    sparse: SparseVector | None = None


@dataclass(frozen=True, slots=True)
class SearchFilter:
    """Restricts a search; empty fields do not restrict.

    ``source_prefix`` is a directory or path prefix of ``payload["source"]`` taken at
    '/' boundaries (``docs`` matches ``docs/a.md``, not ``docs2/a.md``).
    ``source_glob`` is an ``fnmatch`` pattern (case-sensitive; ``*`` also crosses '/').
    ``kinds`` and ``exts`` (with or without the dot) match any of their values; so does ``sources``
    (source names, ``payload["source_name"]``). ``readable`` (None: no restriction) is the source names
    the asker may read: the engine's query itself is restricted to them, so a hit from any other
    source is never returned, counted or paged through.
    """

    source_prefix: str | None = None
    source_glob: str | None = None
    kinds: tuple[str, ...] = ()
    exts: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    readable: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class FileState:
    """What the store holds of one source file.

    ``file_hash`` is the hash most of its points carry (``mixed`` when they disagree),
    ``n_chunks`` the chunk count those points announce, ``n_points`` how many of them
    are stored. A file is complete when every announced chunk is present under one hash.
    ``pages``: where a PDF's pages got their text, as its points under that hash record it (None
    for other files).
    """

    source: str
    file_hash: str
    n_chunks: int
    n_points: int
    mixed: bool = False
    pages: PageSources | None = None

    @property
    def complete(self) -> bool:
        return not self.mixed and self.n_points == self.n_chunks


class Store(Protocol):
    """A collection of chunk points behind the embedded engine or a Qdrant server."""

    def ensure_collection(self, dim: int, fingerprint: dict[str, Any]) -> None:
        """Create the collection if missing; raise FingerprintMismatch if it differs."""
        ...

    def recreate_collection(self, dim: int, fingerprint: dict[str, Any]) -> None:
        """Drop the collection (if any) and create it empty."""
        ...

    def fingerprint(self) -> dict[str, Any] | None:
        """The stored fingerprint; None without a collection."""
        ...

    def replace_fingerprint(self, fingerprint: dict[str, Any]) -> None:
        """Record ``fingerprint`` for the collection as it is (a migration changed what it describes,
        not the vectors): no check, no point touched."""
        ...

    def upsert(self, points: Sequence[Point]) -> None: ...

    def delete_source(self, source: str, keep_file_hash: str | None = None) -> None:
        """Delete a source's points, or only those whose file_hash is not keep_file_hash."""
        ...

    def file_states(self) -> dict[str, FileState]: ...

    def scroll_points(self) -> Iterator[Point]:
        """Every point with its dense and sparse vectors and payload, page by page (backups)."""
        ...

    def search(
        self,
        dense: Vector | None = None,
        sparse: SparseVector | None = None,
        k: int = DEFAULT_K,
        flt: SearchFilter | None = None,
    ) -> list[Hit]:
        """Dense, sparse, or both fused by the engine's reciprocal rank fusion."""
        ...

    def count(self) -> int: ...

    def retrieve(self, ids: Sequence[str]) -> list[Hit]:
        """The stored points among ``ids``, in that order, with score 0."""
        ...

    def flush(self) -> None:
        """Make every write so far durable."""
        ...

    def optimize(self) -> None:
        """Build indexes now where the engine does not do it by itself."""
        ...

    def close(self) -> None: ...
