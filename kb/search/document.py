"""A document read back from its stored chunks: whole, one page, or a line range, bounded.

Chunks are stored with deterministic ids (source, position), so a document is its chunks 0..n-1.
Neighbouring chunks overlap; the overlap is dropped where one chunk's end repeats as the next one's
start. Works alike on the embedded engine and a server, with no access to the original file.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ingest.records import point_id
from ingest.store.base import Store

MAX_CHARS = 20_000  # the most one read returns
MAX_OVERLAP_CHARS = 4_000  # how far back an overlap is looked for


class DocumentNotFound(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class DocumentText:
    source: str
    kind: str
    text: str
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    truncated: bool = False
    pages: tuple[int, ...] = ()  # the pages the document has text on (PDFs)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "kind": self.kind,
            "page": self.page,
            "line_start": self.line_start,
            "line_end": self.line_end,
            "truncated": self.truncated,
            "pages": list(self.pages),
            "text": self.text,
        }


def merge_overlapping(texts: list[str]) -> str:
    """Consecutive chunk texts joined with each repeated overlap kept once."""
    out = ""
    for text in texts:
        longest = min(len(out), len(text), MAX_OVERLAP_CHARS)
        k = next((n for n in range(longest, 0, -1) if out.endswith(text[:n])), 0)
        out += text[k:] if k else ("\n" if out and not out.endswith("\n") else "") + text
    return out


def chunks_of(store: Store, source: str) -> list[dict[str, Any]]:
    """The stored payloads of ``source`` in order (DocumentNotFound when it has none)."""
    first = store.retrieve([point_id(source, 0)])
    if not first:
        raise DocumentNotFound(f"no indexed document {source!r}")
    n = int(first[0].payload.get("n_chunks") or 1)
    hits = [first[0], *store.retrieve([point_id(source, i) for i in range(1, n)])]
    return sorted((h.payload for h in hits), key=lambda p: p.get("position") or 0)


def read_document(
    store: Store,
    source: str,
    page: int | None = None,
    lines: tuple[int, int] | None = None,
    max_chars: int = MAX_CHARS,
) -> DocumentText:
    """The text of ``source``, or of one of its pages, or of lines ``start..end`` (1-based, inclusive)."""
    if lines is not None and not 1 <= lines[0] <= lines[1]:
        raise ValueError(f"a line range is start..end with 1 <= start <= end, not {lines[0]}..{lines[1]}")
    if page is not None and page < 1:
        raise ValueError(f"pages count from 1, not {page}")
    payloads = chunks_of(store, source)
    kind = payloads[0].get("kind") or ""
    pages = tuple(sorted({p["page"] for p in payloads if p.get("page")}))
    if page is not None:
        if page not in pages:
            raise DocumentNotFound(f"{source} has no text on page {page} (pages with text: {list(pages)})")
        payloads = [p for p in payloads if p.get("page") == page]
    span: tuple[int, int] | None = None
    if lines is not None:
        payloads = [p for p in payloads if p.get("line_start") and _overlaps(p, lines)]
        if not payloads:
            raise DocumentNotFound(f"{source} has no indexed text at lines {lines[0]}-{lines[1]}")
    text = merge_overlapping([p.get("text", "") for p in payloads])
    if lines is not None:
        first = payloads[0]["line_start"]
        rows = text.split("\n")
        start, end = max(lines[0], first), min(lines[1], first + len(rows) - 1)
        text = "\n".join(rows[start - first : end - first + 1])
        span = (start, end)
    truncated = len(text) > max_chars
    return DocumentText(
        source=source,
        kind=kind,
        text=text[:max_chars],
        page=page,
        line_start=span[0] if span else None,
        line_end=span[1] if span else None,
        truncated=truncated,
        pages=pages,
    )


def _overlaps(payload: dict[str, Any], lines: tuple[int, int]) -> bool:
    return bool(
        payload["line_start"] <= lines[1] and (payload.get("line_end") or payload["line_start"]) >= lines[0]
    )
