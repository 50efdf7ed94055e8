"""Citation markers in an answer: found, checked against the packed passages, mapped to files.

Markers are ``[1]``, ``[1, 3]``, ``[1][2]`` and their full-width forms (``［1］``, ``【1】``). A number
that names no passage is removed from the text (with the marker when nothing is left of it).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from kb.answer.passages import Passage

MARKER = re.compile(r"\s?[\[［【]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]］】]")


@dataclass(frozen=True, slots=True)
class Citation:
    number: int
    source: str
    locator: str
    page: int | None
    line_start: int | None
    line_end: int | None

    @classmethod
    def of(cls, p: Passage) -> Citation:
        h = p.hit
        return cls(p.number, h.source, h.locator, h.page, h.line_start, h.line_end)

    def to_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "source": self.source,
            "locator": self.locator,
            "page": self.page,
            "line_start": self.line_start,
            "line_end": self.line_end,
        }


def _numbers(group: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", group)]


def cited_numbers(text: str) -> list[int]:
    """Every number cited in ``text``, in order of first appearance."""
    out: list[int] = []
    for m in MARKER.finditer(text):
        out += [n for n in _numbers(m.group(1)) if n not in out]
    return out


def strip_markers(text: str) -> str:
    return MARKER.sub("", text)


def drop_unknown(text: str, known: Iterable[int]) -> tuple[str, list[int]]:
    """``text`` without citation numbers outside ``known``, and the numbers removed."""
    known, removed = set(known), list[int]()

    def keep(m: re.Match[str]) -> str:
        numbers = _numbers(m.group(1))
        good = [n for n in numbers if n in known]
        removed.extend(n for n in numbers if n not in known)
        if not good:
            return ""
        lead = " " if m.group(0)[0].isspace() else ""
        return lead + "".join(f"[{n}]" for n in good)

    return MARKER.sub(keep, text), removed


def citations(text: str, passages: Iterable[Passage]) -> list[Citation]:
    """The passages ``text`` cites, in order of first citation, as file and place."""
    by_number = {p.number: p for p in passages}
    return [Citation.of(by_number[n]) for n in cited_numbers(text) if n in by_number]
