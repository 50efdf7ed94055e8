"""The grounding check measured on answers whose truth is known (``data/eval/grounding.jsonl``).

Each case is a question over one paragraph of a corpus file (the one holding ``snippet``), an
answer every detail of which is in that paragraph, and the same answer with one detail invented
(``number``, ``name``, ``date``). The paragraph is passage [1]; the file's other paragraphs follow
as [2], [3]… as retrieval would bring neighbours. A supported answer is **kept** when no sentence
of it is flagged; an invented one is **caught** when one is. Deterministic: no model, no store.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.answer.grounding import check
from kb.answer.passages import Passage
from kb.contract import SearchHit

INVENTED_KINDS = ("number", "name", "date")
_PARAGRAPHS = re.compile(r"\n\s*\n")


class GroundingSetError(ValueError):
    """A line of the set is not a case (its number and what is wrong)."""


@dataclass(frozen=True, slots=True)
class GroundingCase:
    source: str
    snippet: str
    lang: str
    question: str
    answer: str
    invented: dict[str, str]


def load_cases(path: Path) -> list[GroundingCase]:
    cases = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            obj = json.loads(line)
            cases.append(GroundingCase(**{k: obj[k] for k in GroundingCase.__slots__}))
        except (ValueError, KeyError, TypeError) as err:
            raise GroundingSetError(f"{path.name}:{n}: not a grounding case ({err})") from None
    return cases


def passages_of(corpus: Path, case: GroundingCase) -> list[Passage]:
    """The paragraph holding the snippet as [1], the file's other paragraphs after it."""
    text = (corpus / case.source).read_text(encoding="utf-8")
    paragraphs = [p.strip() for p in _PARAGRAPHS.split(text) if p.strip()]
    target = [p for p in paragraphs if case.snippet in p]
    if not target:
        raise GroundingSetError(f"{case.source} holds no paragraph with {case.snippet!r}")
    ordered = target[:1] + [p for p in paragraphs if p != target[0]]
    kind = "markdown" if case.source.endswith(".md") else "text"
    return [
        Passage(
            i,
            SearchHit(rank=i, id=f"{case.source}#{i}", score=1.0 / i, source=case.source, kind=kind, text=p),
        )
        for i, p in enumerate(ordered, 1)
    ]


def flagged(answer: str, passages: list[Passage], withhold: float) -> bool:
    """Whether the check flags a sentence of ``answer`` (or withholds it)."""
    result = check(answer, passages, withhold)
    return result.withheld or result.unsupported > 0


def measure(cases: list[GroundingCase], corpus: Path, withhold: float = 0.5) -> dict[str, Any]:
    """Per language and in all: supported answers kept, invented ones caught by kind, and the misses."""
    counts: dict[str, dict[str, list[int]]] = {}
    misses = []
    for case in cases:
        passages = passages_of(corpus, case)
        outcomes = {"kept": not flagged(case.answer, passages, withhold)}
        for kind in INVENTED_KINDS:
            if kind in case.invented:
                outcomes[kind] = flagged(case.invented[kind], passages, withhold)
        for lang in (case.lang, "all"):
            row = counts.setdefault(lang, {})
            for name, ok in outcomes.items():
                done, total = row.setdefault(name, [0, 0])
                row[name] = [done + ok, total + 1]
        for name, ok in outcomes.items():
            if not ok:
                text = case.answer if name == "kept" else case.invented[name]
                misses.append({"source": case.source, "what": name, "answer": text})
    return {"counts": counts, "misses": misses, "cases": len(cases)}


ROW_LABELS = {
    "kept": "supported answer kept",
    "number": "invented number caught",
    "name": "invented name caught",
    "date": "invented date caught",
}


def render(result: dict[str, Any]) -> str:
    langs = [lang for lang in result["counts"] if lang != "all"] + ["all"]
    lines = ["| | " + " | ".join(langs) + " |", "|---|" + "---:|" * len(langs)]
    for name, label in ROW_LABELS.items():
        cells = []
        for lang in langs:
            done, total = result["counts"][lang].get(name, [0, 0])
            cells.append(f"{done}/{total}" if total else "–")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
