"""Pure helpers of the Ask page: an answer from ``POST /ask`` as safe Markdown (no Streamlit here).

The model's text goes through :func:`app.render.escape_md` like any document text; the only markup
is what this module adds: citation markers ``[n]`` as links to their passage's file (at its page for
a PDF), and sentences the grounding check did not find in their passages marked in red with what is
missing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from app.render import card_title, display_name, escape_md

# [1], [1, 3], [1][2] and their full-width forms (the service's citation markers)
MARKER = re.compile(r"\s?[\[［【]\s*(\d{1,3}(?:\s*[,，、]\s*\d{1,3})*)\s*[\]］】]")
LIST_ITEM = re.compile(r"^(?:[-*•]|\d{1,2}[.)])\s")
UNSUPPORTED = ":red-background[{}]"
MISSING_BADGE = ":red-badge[not in its passages: {}]"
CURSOR = " ▌"  # the end of an answer still being written

FileUrl = Callable[[str, Any], str]


def passage_links(passages: Sequence[Mapping[str, Any]], file_url: FileUrl) -> dict[int, str]:
    """Citation number → where a browser opens its passage's file (at the page of a PDF)."""
    return {p["number"]: file_url(p["source"], p.get("page")) for p in passages}


def _numbers(group: str) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", group)]


def _links(numbers: Sequence[int], links: Mapping[int, str]) -> str:
    return "".join(f"[\\[{n}\\]]({links[n]})" if n in links else f"\\[{n}\\]" for n in numbers)


def answer_markdown(text: str, links: Mapping[int, str]) -> str:
    """``text`` escaped, each citation marker a link to its passage's file."""
    out, pos = [], 0
    for m in MARKER.finditer(text):
        out.append(escape_md(text[pos : m.start()]))
        out.append((" " if m.group(0)[0].isspace() else "") + _links(_numbers(m.group(1)), links))
        pos = m.end()
    out.append(escape_md(text[pos:]))
    return "".join(out)


def marked_answer(answer: Mapping[str, Any], links: Mapping[int, str]) -> str:
    """The checked answer: sentence by sentence as the check split it, the unsupported ones marked
    in red with their missing claims; the plain text when the check found no sentences."""
    sentences = answer.get("grounding", {}).get("sentences") or []
    if not sentences:
        return answer_markdown(answer["text"], links)
    parts = []
    for i, s in enumerate(sentences):
        text = s["text"]
        if s.get("supported") is False:
            cited = [n for m in MARKER.finditer(text) for n in _numbers(m.group(1))]
            body = escape_md(MARKER.sub("", text).strip())
            missing = escape_md(", ".join(s.get("unsupported") or ()))
            md = UNSUPPORTED.format(body) + (" " + _links(cited, links) if cited else "")
            md += " " + MISSING_BADGE.format(missing)
        else:
            md = answer_markdown(text, links)
        if i:
            parts.append("  \n" if LIST_ITEM.match(text) else " ")
        parts.append(md)
    return "".join(parts)


def unsupported_sentences(answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [s for s in answer.get("grounding", {}).get("sentences") or [] if s.get("supported") is False]


def cited_passages(answer: Mapping[str, Any], passages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The passages the answer cites, in order of first citation."""
    by_number = {p["number"]: p for p in passages}
    return [dict(by_number[c["number"]]) for c in answer.get("citations") or () if c["number"] in by_number]


def source_line(passage: Mapping[str, Any], url: str) -> str:
    """'**2\\.** [**kettle.md**](url) — lines 3–5': the passage's number, its file linked, its place."""
    return card_title({**passage, "rank": passage["number"]}, display_name(passage["source"]), url)


def answer_footer(answer: Mapping[str, Any]) -> str:
    """Which model answered, where, and how long it took (plain text, for a caption)."""
    parts = [answer.get("generator") or "", f"on {answer['where']}" if answer.get("where") else ""]
    timings = answer.get("timings") or {}
    if timings.get("first_token_ms") is not None:
        parts.append(f"first token {timings['first_token_ms']:.0f} ms")
    if timings.get("generate_ms") is not None:
        parts.append(f"answer {timings['generate_ms'] / 1000:.1f} s")
    return " · ".join(p for p in parts if p)
