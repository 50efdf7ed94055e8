"""The one record type every input becomes, and the hits a search returns."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Any

from kb.contract import split_source

# Fixed namespace so that point ids are the same on every machine and every run.
POINT_NAMESPACE = uuid.UUID("6f1f3c2e-8a53-4d4b-9a4e-0b5f6c7d8e9f")


def point_id(source: str, position: int) -> str:
    """Deterministic point id from a document's key (source name and path inside the source, as
    ``kb.contract.source_key`` joins them) and the chunk's position in it."""
    return str(uuid.uuid5(POINT_NAMESPACE, f"{source}\x00{position}"))


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class Section:
    """A piece of a document as a loader yields it, before token-aware chunking.

    ``page`` (1-based, PDFs), ``heading_path`` (Markdown) and ``line_start``/``line_end``
    (1-based, inclusive; code and text) locate it in the source; ``locator`` says where it is in
    formats with other units (keys below; a hit shows it as ``kb.contract.locator_label`` says). ``header`` is repeated at the top of every
    chunk made of this section (a table's header row), outside the located text.
    """

    text: str
    page: int | None = None
    heading_path: tuple[str, ...] = ()
    line_start: int | None = None
    line_end: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    locator: dict[str, Any] = field(default_factory=dict)
    header: str = ""


@dataclass(frozen=True, slots=True)
class Chunk:
    """One embeddable unit of a source file, with where it came from."""

    id: str
    text: str
    source: str  # the document's key: source name, '/', path inside the source ('/'-separated)
    kind: str  # "pdf" | "markdown" | "code" | "text"
    position: int  # 0-based index of the chunk within its file
    n_chunks: int  # chunks the file produced (a file is complete when all are stored)
    chunk_hash: str
    file_hash: str
    page: int | None = None
    heading_path: tuple[str, ...] = ()
    line_start: int | None = None
    line_end: int | None = None
    n_tokens: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    locator: dict[str, Any] = field(default_factory=dict)

    def payload(self) -> dict[str, Any]:
        """The payload stored beside the vector (flat, JSON-safe)."""
        ext = self.source.rsplit(".", 1)[-1].lower() if "." in self.source.rsplit("/", 1)[-1] else ""
        name, path = split_source(self.source)
        return {
            "text": self.text,
            "source": self.source,
            "source_name": name,
            "path": path,
            "kind": self.kind,
            "ext": ext,
            "position": self.position,
            "n_chunks": self.n_chunks,
            "chunk_hash": self.chunk_hash,
            "file_hash": self.file_hash,
            "page": self.page,
            "heading_path": list(self.heading_path),
            "line_start": self.line_start,
            "line_end": self.line_end,
            "n_tokens": self.n_tokens,
            "meta": self.meta,
            "locator": self.locator or None,
        }


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result."""

    id: str
    score: float
    payload: dict[str, Any]

    @property
    def text(self) -> str:
        return str(self.payload.get("text", ""))

    @property
    def source(self) -> str:
        return str(self.payload.get("source", ""))


# ``locator`` keys: "slide", "sheet", "chapter" (1-based numbers, a sheet's name) and the ranges below,
# each a 1-based inclusive [first, last] pair; neighbouring sections that differ only in a range merge.
LOCATOR_RANGES = ("rows", "cells")
