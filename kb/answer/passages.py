"""Packing retrieved hits into a prompt: best score first, whole passages only, up to a token budget.

A passage is numbered by its place in the pack ([1] is the best that fits); its citation label says
where it lies (file, page or lines). A passage that does not fit whole is left out, never cut, so a
citation always points at the full text the model read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from kb.contract import SearchHit

TokenCounter = Callable[[str], int]


@dataclass(frozen=True, slots=True)
class Passage:
    number: int  # the citation number: [number]
    hit: SearchHit

    @property
    def label(self) -> str:
        """Where the passage lies: ``docs/a.pdf, p. 3`` or ``src/x.py, lines 10-24``."""
        where = self.hit.locator
        return f"{self.hit.source}, {where}" if where else self.hit.source

    def block(self) -> str:
        """The passage as the prompt shows it."""
        return f"[{self.number}] ({self.label})\n{self.hit.text.strip()}"

    def to_json(self) -> dict[str, Any]:
        return {"number": self.number, "label": self.label, **self.hit.to_json()}

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Passage:
        return cls(obj["number"], SearchHit.from_json(obj))


def pack(hits: Sequence[SearchHit], budget: int, count_tokens: TokenCounter) -> list[Passage]:
    """The hits that fit whole into ``budget`` tokens, best score first, numbered from 1.

    A hit too long for what is left is skipped and a shorter one after it may still fit; the same
    chunk retrieved twice is packed once.
    """
    out: list[Passage] = []
    left, seen = budget, set()
    for hit in sorted(hits, key=lambda h: (-h.score, h.rank)):
        if hit.id in seen or not hit.text.strip():
            continue
        cost = count_tokens(Passage(len(out) + 1, hit).block()) + BLOCK_SEPARATOR_TOKENS
        if cost > left:
            continue
        seen.add(hit.id)
        out.append(Passage(len(out) + 1, hit))
        left -= cost
    return out


BLOCK_SEPARATOR_TOKENS = 2  # the blank line between two blocks


def passages_text(passages: Sequence[Passage]) -> str:
    return "\n\n".join(p.block() for p in passages)
