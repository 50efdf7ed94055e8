"""Where a PDF's pages got their text: the text layer, the fallback extractor, OCR, or nothing.

The PDF loader counts them into the document's ``meta`` (``pages``, ``pages_text``,
``pages_fallback``, ``pages_ocr``, ``pages_unreadable``); every chunk carries that meta into the
store, so the ingest report, the document list and the CLI all read the counts back through
:class:`PageSources`, the same for a file indexed in this run and one indexed long ago.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# the document meta keys the PDF loader writes, in the order of PageSources' fields
META_KEYS = ("pages", "pages_text", "pages_fallback", "pages_ocr", "pages_unreadable")


@dataclass(frozen=True, slots=True)
class PageSources:
    """A PDF's page count, how many pages each extractor read, and the pages none could read."""

    pages: int
    text: int
    fallback: int
    ocr: int
    unreadable: tuple[int, ...] = ()

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any] | None) -> PageSources | None:
        """The counts in a document's (or chunk's) meta; None where there are none (not a PDF)."""
        if not meta or "pages_text" not in meta:
            return None
        try:
            pages, text, fallback, ocr = (int(meta.get(key) or 0) for key in META_KEYS[:4])
            unreadable = tuple(int(p) for p in meta.get("pages_unreadable") or ())
            return cls(pages, text, fallback, ocr, unreadable)
        except (TypeError, ValueError):
            return None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PageSources:
        """The inverse of :meth:`as_dict` (a report read back from JSON)."""
        return cls(
            int(d["pages"]),
            int(d["text"]),
            int(d["fallback"]),
            int(d["ocr"]),
            tuple(int(p) for p in d.get("unreadable") or ()),
        )

    def as_dict(self) -> dict[str, Any]:
        """JSON-safe: ``{"pages", "text", "fallback", "ocr", "unreadable": [page numbers]}``."""
        return {
            "pages": self.pages,
            "text": self.text,
            "fallback": self.fallback,
            "ocr": self.ocr,
            "unreadable": list(self.unreadable),
        }

    @property
    def needed_help(self) -> bool:
        """Whether any page did not come from the text layer."""
        return bool(self.fallback or self.ocr or self.unreadable)

    def summary(self) -> str:
        """``3 pages — 1 text layer, 0 fallback, 2 OCR; unreadable: 4``."""
        pages = f"{self.pages} page" + ("" if self.pages == 1 else "s")
        line = f"{pages} — {self.text} text layer, {self.fallback} fallback, {self.ocr} OCR"
        return line + (f"; unreadable: {page_ranges(self.unreadable)}" if self.unreadable else "")


def page_ranges(pages: Iterable[int]) -> str:
    """Page numbers with runs folded: ``[1, 2, 3, 7, 9, 10]`` → ``1-3, 7, 9-10``."""
    runs: list[list[int]] = []
    for page in sorted(set(pages)):
        if runs and page == runs[-1][1] + 1:
            runs[-1][1] = page
        else:
            runs.append([page, page])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
