"""What crosses the API: the hit record, and the names the service, the CLI and the app share.

Light on purpose (standard library and one pure helper): the Streamlit app imports it, and must load
neither a model, the store nor the parsers.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

from ingest.pagesources import page_ranges

__all__ = [
    "ACTIVE_JOB_STATES",
    "ASK_EVENTS",
    "DOCUMENT_KINDS",
    "EVAL_LABELS",
    "EVAL_LATENCY",
    "EVAL_QUALITY",
    "MAX_K",
    "RERANK_DEPTHS",
    "ROLES",
    "SOURCE_NAME",
    "UPLOAD_SCOPE",
    "UPLOAD_SOURCE",
    "SearchHit",
    "locator_label",
    "page_ranges",
    "role_at_least",
    "source_key",
    "split_source",
]

# --- search ----------------------------------------------------------------------------------------

MAX_K = 200  # hits one search returns at most
# what a loader makes of a file (the kind filter)
DOCUMENT_KINDS = (
    "pdf",
    "markdown",
    "code",
    "text",
    "word",
    "slides",
    "sheet",
    "html",
    "epub",
    "image",
    "notebook",
)

# --- sources ---------------------------------------------------------------------------------------
# A source is a named folder; a document is known everywhere by its key "name/path", the path being
# '/'-separated inside the source's folder. Uploads are the source "uploads".
SOURCE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
UPLOAD_SOURCE = "uploads"
UPLOAD_SCOPE = UPLOAD_SOURCE + "/"  # keys under it came through uploads, not a folder


def source_key(name: str, path: str) -> str:
    """The key of a document: its source's name and its path inside the source."""
    return f"{name}/{path}"


def split_source(key: str) -> tuple[str, str]:
    """(source name, path inside it) of a document key."""
    name, _, path = key.partition("/")
    return name, path


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result with its citation: the CLI's ``--json``, the HTTP API and the app all show this.

    ``source`` is the document's key ``name/path``: ``source_name`` is the source (a named folder, or
    ``uploads``) and ``path`` the file's path inside it.

    ``page`` (PDFs), ``line_start``/``line_end`` (code and text) and ``heading_path`` (Markdown) locate
    the passage in ``source``; ``location`` does in the other formats (``{"slide": 7}``,
    ``{"sheet": "Q3", "rows": [120, 180]}``, ``{"chapter": 3}``, ``{"cells": [4, 6]}``). After a rerank, ``score`` is the reranker's and ``retrieval_score`` the
    store's; ``reranked_window`` says the reranker read a window of a passage too long for it.
    """

    rank: int
    id: str
    score: float
    source: str
    kind: str
    text: str
    position: int | None = None
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    heading_path: tuple[str, ...] = ()
    location: dict[str, Any] | None = None
    ocr: bool = False
    retrieval_score: float | None = None
    rerank_score: float | None = None
    reranked_window: bool | None = None
    source_name: str = ""
    path: str = ""
    _OPTIONAL = ("retrieval_score", "rerank_score", "reranked_window")

    @classmethod
    def from_payload(
        cls, id: str, rank: int, score: float, payload: dict[str, Any], **scores: float | bool | None
    ) -> SearchHit:
        """A stored point's payload (``Chunk.payload()``) as a hit at ``rank``."""
        unknown = set(scores) - set(cls._OPTIONAL)
        if unknown:
            raise TypeError(f"unknown hit fields: {', '.join(sorted(unknown))}")
        key = payload.get("source") or ""
        name, path = split_source(key)
        return cls(
            rank=rank,
            id=id,
            score=round(float(score), 6),
            source=payload.get("source") or "",
            kind=payload.get("kind") or "",
            text=payload.get("text", ""),
            position=payload.get("position"),
            page=payload.get("page"),
            line_start=payload.get("line_start"),
            line_end=payload.get("line_end"),
            heading_path=tuple(payload.get("heading_path") or ()),
            location=payload.get("locator") or None,
            ocr=bool((payload.get("meta") or {}).get("ocr")),
            source_name=payload.get("source_name") or name,
            path=payload.get("path") or path,
            retrieval_score=_round(scores.get("retrieval_score")),
            rerank_score=_round(scores.get("rerank_score")),
            reranked_window=_flag(scores.get("reranked_window")),
        )

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape (README, "Hit fields"); rerank fields only after a rerank."""
        out = asdict(self)
        out["heading_path"] = list(self.heading_path)
        for key in self._OPTIONAL:
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SearchHit:
        known = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        values = {k: v for k, v in obj.items() if k in known}
        values["heading_path"] = tuple(values.get("heading_path") or ())
        return cls(**values)

    @property
    def locator(self) -> str:
        """Where in its file the passage lies, for a person: "p. 3", "slide 7", "lines 10-24", "Setup > Linux"."""
        if self.location:
            return locator_label(self.location) + (f", p. {self.page}" if self.page else "")
        if self.page:
            return f"p. {self.page}"
        if self.line_start:
            return f"lines {self.line_start}-{self.line_end}"
        return " > ".join(self.heading_path)


def _round(value: float | bool | None) -> float | None:
    return None if value is None else round(float(value), 6)


def _flag(value: float | bool | None) -> bool | None:
    return None if value is None else bool(value)


def locator_label(location: dict[str, Any] | None) -> str:
    """How a ``location`` reads: "slide 7", "Sheet 'Q3', rows 120–180", "chapter 3", "cells 4–5"."""
    if not location:
        return ""
    parts = []
    if "sheet" in location:
        parts.append(f"Sheet '{location['sheet']}'")
    if "slide" in location:
        parts.append(f"slide {location['slide']}")
    if "chapter" in location:
        parts.append(f"chapter {location['chapter']}")
    for key, one in (("rows", "row"), ("cells", "cell")):
        if key in location:
            first, last = location[key]
            parts.append(f"{one} {first}" if first == last else f"{key} {first}–{last}")
    return ", ".join(parts)


# --- answers ---------------------------------------------------------------------------------------

# the server-sent events of POST /ask, in the order they come (``kb.answer.flow`` describes each)
ASK_EVENTS = ("passages", "token", "answer", "error")

# --- team access -----------------------------------------------------------------------------------

ROLES = ("reader", "editor", "admin")  # each role may do what the ones before it may


def role_at_least(role: str, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


# --- jobs ------------------------------------------------------------------------------------------

ACTIVE_JOB_STATES = ("queued", "running")  # the others: "done", "failed", "cancelled"

# --- evaluation reports ----------------------------------------------------------------------------

EVAL_QUALITY = ("top1", "top3", "top5", "recall10", "mrr10", "ndcg10")
EVAL_LATENCY = ("p50_ms", "p99_ms")
RERANK_DEPTHS = (10, 20, 40, 80)  # candidate counts whose first-stage recall a report carries
EVAL_LABELS = {
    "top1": "Top-1",
    "top3": "Top-3",
    "top5": "Top-5",
    "recall10": "R@10",
    "mrr10": "MRR@10",
    "ndcg10": "nDCG@10",
    "p50_ms": "P50 ms",
    "p99_ms": "P99 ms",
    **{f"first_recall{n}": f"R@{n}" for n in RERANK_DEPTHS},
}
