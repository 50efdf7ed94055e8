"""Token-aware chunking of a loaded Document into Sections ready to embed. Pure: no I/O, no model.

Sizes are counted by ``count_tokens``, the embedding model's own tokenizer. The rules:

* no output section exceeds ``hard_max`` tokens, ever (a last pass halves any piece still over it);
* a section of at most ``target`` tokens stays whole;
* a larger one is split into pieces of about ``target`` tokens: code by its language's separators
  (``RecursiveCharacterTextSplitter.from_language``), prose on paragraphs, lines, sentences (CJK
  。！？； included), clauses and words; Markdown like prose except that a code fence is never cut
  unless it alone exceeds ``hard_max`` (a fence may therefore exceed ``target``);
* neighbouring pieces share up to ``overlap`` tokens: each piece but the first also starts with
  the end of its predecessor, cut at a line start (code) or a word or CJK character (prose), never
  reaching back into a code fence;
* neighbouring sections are merged while the result stays within ``target``, never across pages
  and never between sections with different ``meta``. A merged section's ``heading_path`` is the
  longest common prefix of its members' paths: the deepest heading all of its text sits under;
* every piece keeps its section's ``page``, ``heading_path``, ``meta`` and ``locator``;
  ``line_start`` and ``line_end`` are recomputed from character offsets, so they are the file's
  real lines;
* sections with a ``locator`` merge only when it differs at most in its ranges (rows of one sheet,
  cells of a notebook: the merged range spans them); a section's ``header`` (a table's header row)
  starts every piece made of it and counts towards its size.

The splitter runs without overlap so that its pieces tile the text and their offsets are exact
even in repetitive text (where searching for an overlapping piece would find the wrong copy); the
overlap is added afterwards from those exact offsets.
"""

from __future__ import annotations

import bisect
import functools
import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any

from langchain_text_splitters import Language, RecursiveCharacterTextSplitter

from ingest.loaders.base import Document
from ingest.loaders.code import CODE_LANGUAGES
from ingest.records import LOCATOR_RANGES, Section

TokenCounter = Callable[[str], int]
Span = tuple[int, int]  # [start, end) character offsets into a section's text

# Prose: paragraphs, lines, sentences (CJK and Latin), clauses, words, characters.
PROSE_SEPARATORS = [
    "\n\n",
    "\n",
    "。",
    "！",
    "？",
    "；",
    "…",
    ". ",
    "! ",
    "? ",
    "; ",
    "，",
    ", ",
    "、",
    " ",
    "",
]
# Kinds whose text is Markdown (headings, code fences): split like Markdown.
MARKDOWN_KINDS = frozenset({"markdown", "html", "epub", "notebook"})
# Code in a language the splitter library does not know: blank lines, lines, words, characters.
GENERIC_CODE_SEPARATORS = ["\n\n", "\n", " ", ""]
# Where an overlap may begin: a line's first non-blank character (code); after whitespace, CJK
# punctuation or any CJK character (prose).
CODE_OVERLAP_START = re.compile(r"\n[ \t]*(?=\S)")
PROSE_OVERLAP_START = re.compile(
    r"(?<=[\s\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef])(?=\S)"
)
# Fence info words that are neither a splitter language nor a file suffix.
FENCE_ALIASES = {"javascript": "js", "typescript": "ts", "shell": "sh", "bash": "sh", "c++": "cpp"}
# Token counts of short strings are cached within one chunk_document call (the splitter counts
# the same small parts again and again); long strings are counted afresh, to bound the memory.
COUNT_CACHE_SIZE = 16384
COUNT_CACHE_MAX_CHARS = 2048
# An overlap preferably starts after one of these (and whitespace): a sentence or a line ended.
_SENTENCE_END = re.compile(r"(?:[.!?;:。！？；：…]\s*|\n[ \t]*)$")
_FENCE_OPEN = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*([^\s`]*)")


def chunk_document(
    doc: Document, count_tokens: TokenCounter, target: int, overlap: int, hard_max: int
) -> list[Section]:
    """Sections of ``doc`` cut to ``target`` tokens (``hard_max`` at most), in reading order."""
    if not 0 < target <= hard_max:
        raise ValueError(f"need 0 < target <= hard_max, got target={target}, hard_max={hard_max}")
    if not 0 <= overlap < target:
        raise ValueError(f"need 0 <= overlap < target, got overlap={overlap}, target={target}")
    count = _cached(count_tokens)
    out: list[Section] = []
    for section in merge_sections(doc.sections, count, target):
        if section.header:
            out.extend(_split_headed(section, doc.kind, doc.language, count, target, overlap, hard_max))
        else:
            out.extend(split_section(section, doc.kind, doc.language, count, target, overlap, hard_max))
    return out


def _headed(header: str, text: str) -> str:
    return f"{header}\n{text}" if header else text


def _split_headed(
    section: Section,
    kind: str,
    language: str | None,
    count: TokenCounter,
    target: int,
    overlap: int,
    hard_max: int,
) -> list[Section]:
    """The pieces of a section whose ``header`` starts each of them: the room it takes is kept free in
    every piece (loaders keep headers short; one over half the target still leaves half for text)."""
    room = min(count(section.header + "\n"), target // 2, hard_max // 2)
    size = target - room
    pieces = split_section(
        replace(section, header=""), kind, language, count, size, min(overlap, size // 2), hard_max - room
    )
    return [replace(p, text=_headed(section.header, p.text)) for p in pieces]


def _cached(count_tokens: TokenCounter) -> TokenCounter:
    cached = functools.lru_cache(maxsize=COUNT_CACHE_SIZE)(count_tokens)

    def count(text: str) -> int:
        return cached(text) if len(text) <= COUNT_CACHE_MAX_CHARS else count_tokens(text)

    return count


# ----------------------------------------------------------------------------------------------
# merging


def _common_prefix(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    prefix = paths[0]
    for path in paths[1:]:
        n = 0
        while n < min(len(prefix), len(path)) and prefix[n] == path[n]:
            n += 1
        prefix = prefix[:n]
    return prefix


def _place(locator: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in locator.items() if k not in LOCATOR_RANGES}


def _joinable(a: Section, b: Section) -> bool:
    return (
        a.page == b.page
        and a.meta == b.meta
        and (a.line_start is None) == (b.line_start is None)
        and a.header == b.header
        and _place(a.locator) == _place(b.locator)
        and a.locator.keys() == b.locator.keys()
    )


def _merged_locator(first: dict[str, Any], last: dict[str, Any]) -> dict[str, Any]:
    return {k: [v[0], last[k][1]] if k in LOCATOR_RANGES else v for k, v in first.items()}


def _joiner(a: Section, b: Section) -> str:
    """What goes between two merged sections: the real line breaks between them where known."""
    if a.line_end is not None and b.line_start is not None and b.line_start > a.line_end:
        return "\n" * (b.line_start - a.line_end)
    return "\n" if "rows" in a.locator else "\n\n"  # a table's rows, one a line


def _merged(group: list[Section], text: str) -> Section:
    first, last = group[0], group[-1]
    return Section(
        text=text,
        page=first.page,
        heading_path=_common_prefix([s.heading_path for s in group]),
        line_start=first.line_start,
        line_end=last.line_end,
        meta=first.meta,
        locator=_merged_locator(first.locator, last.locator),
        header=first.header,
    )


def merge_sections(sections: Iterable[Section], count: TokenCounter, target: int) -> list[Section]:
    """Neighbouring sections merged greedily while the merged text has at most ``target`` tokens."""
    out: list[Section] = []
    group: list[Section] = []
    text = ""

    def close() -> None:
        if group:
            out.append(group[0] if len(group) == 1 else _merged(group, text))

    for section in sections:
        if not section.text.strip():
            continue
        if group and _joinable(group[-1], section):
            candidate = text + _joiner(group[-1], section) + section.text
            if count(_headed(section.header, candidate)) <= target:
                group.append(section)
                text = candidate
                continue
        close()
        group, text = [section], section.text
    close()
    return out


# ----------------------------------------------------------------------------------------------
# splitting into pieces that tile the text


def _stripped(text: str, start: int, end: int) -> Span | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if start < end else None


def _locate(text: str, pieces: Iterable[str], base: int = 0) -> list[Span]:
    """Offsets of a splitter's pieces, which tile ``text`` in order with only whitespace between."""
    spans: list[Span] = []
    pos = 0
    for piece in pieces:
        if not piece.strip():
            continue
        start = text.find(piece, pos)
        if start < 0 or text[pos:start].strip():
            raise RuntimeError("text splitter pieces do not tile the text")
        pos = start + len(piece)
        spans.append((base + start, base + pos))
    return spans


def _splitter_language(language: str | None) -> Language | None:
    if language is None:
        return None
    try:
        lang = Language(language)
        RecursiveCharacterTextSplitter.get_separators_for_language(lang)
    except ValueError:
        return None
    return lang


def fence_language(info: str) -> str | None:
    """The language of a fence's info word: a splitter language name ("python") or a suffix ("py")."""
    if not info:
        return None
    if _splitter_language(info) is not None:
        return info
    return CODE_LANGUAGES.get("." + FENCE_ALIASES.get(info, info))


def code_splitter(language: str | None, count: TokenCounter, size: int) -> RecursiveCharacterTextSplitter:
    lang = _splitter_language(language)
    if lang is not None:
        return RecursiveCharacterTextSplitter.from_language(
            lang, chunk_size=size, chunk_overlap=0, length_function=count
        )
    return RecursiveCharacterTextSplitter(
        separators=GENERIC_CODE_SEPARATORS, chunk_size=size, chunk_overlap=0, length_function=count
    )


def prose_splitter(count: TokenCounter, size: int) -> RecursiveCharacterTextSplitter:
    # separators stay at the end of the piece they close ("。" ends its sentence)
    return RecursiveCharacterTextSplitter(
        separators=PROSE_SEPARATORS,
        keep_separator="end",
        chunk_size=size,
        chunk_overlap=0,
        length_function=count,
    )


def fence_blocks(text: str) -> list[tuple[int, int, str | None]]:
    """(start, end, info) blocks covering ``text``: fences (info = the fence's language word, maybe
    "") and the prose between them (info None). An unclosed fence runs to the end."""
    blocks: list[tuple[int, int, str | None]] = []
    pos = prose_start = 0
    fence: tuple[int, str, str] | None = None  # (start, marker, info)
    for line in text.splitlines(keepends=True):
        line_start, pos = pos, pos + len(line)
        if fence is None:
            m = _FENCE_OPEN.match(line)
            if m:
                if line_start > prose_start:
                    blocks.append((prose_start, line_start, None))
                fence = (line_start, m.group(1), m.group(2).lower())
        else:
            stripped = line.strip()
            marker = fence[1]
            if stripped and set(stripped) == {marker[0]} and len(stripped) >= len(marker):
                blocks.append((fence[0], pos, fence[2]))
                fence, prose_start = None, pos
    if fence is not None:
        blocks.append((fence[0], len(text), fence[2]))
    elif prose_start < len(text):
        blocks.append((prose_start, len(text), None))
    return blocks


def _markdown_spans(
    text: str, count: TokenCounter, size: int, hard_max: int
) -> tuple[list[Span], list[Span]]:
    """(pieces, fences): prose split like prose, fences whole unless over ``hard_max``."""
    prose = prose_splitter(count, size)
    spans: list[Span] = []
    fences: list[Span] = []
    for start, end, info in fence_blocks(text):
        if info is None:
            spans.extend(_locate(text[start:end], prose.split_text(text[start:end]), start))
            continue
        span = _stripped(text, start, end)
        if span is None:
            continue
        fences.append(span)
        if count(text[span[0] : span[1]]) <= hard_max:
            spans.append(span)
        else:
            splitter = code_splitter(fence_language(info), count, size)
            spans.extend(_locate(text[start:end], splitter.split_text(text[start:end]), start))
    return spans, fences


def _pack(text: str, spans: list[Span], count: TokenCounter, size: int) -> list[Span]:
    """Neighbouring pieces joined while the joined text has at most ``size`` tokens.

    The splitter sums the counts of small parts, which overestimates a subword tokenizer's count of
    their join: a long unbroken string (CJK, base64, a URL) otherwise ends in far too small pieces.
    """
    packed: list[Span] = []
    for start, end in spans:
        if packed and count(text[packed[-1][0] : end]) <= size:
            packed[-1] = (packed[-1][0], end)
        else:
            packed.append((start, end))
    return packed


# ----------------------------------------------------------------------------------------------
# overlap, hard maximum, line numbers


def _with_overlap(
    text: str,
    spans: list[Span],
    count: TokenCounter,
    overlap: int,
    target: int,
    starts: re.Pattern[str],
    fences: list[Span],
) -> list[Span]:
    """Each piece but the first extended back over at most ``overlap`` tokens of its predecessor."""
    fence_ends = sorted(end for _, end in fences)
    out = [spans[0]]
    for (prev_start, _), (start, end) in itertools.pairwise(spans):
        i = bisect.bisect_right(fence_ends, start)
        floor = max(prev_start, fence_ends[i - 1] if i else 0)
        if any(f_start < start < f_end for f_start, f_end in fences):
            floor = prev_start  # a piece of a fence too long to keep whole continues its fence
        options = [m.end() for m in starts.finditer(text, floor, start) if floor <= m.end() < start]
        fitting: list[int] = []  # starts whose overlap fits, nearest first
        for p in reversed(options):
            if count(text[p:start]) > overlap:
                break
            fitting.append(p)
        # the longest overlap, begun at a sentence or line start when one fits
        clean = [p for p in fitting if _SENTENCE_END.search(text, max(0, p - 8), p)]
        best = clean[-1] if clean else fitting[-1] if fitting else start
        if best < start and count(text[best:end]) > target:
            # keep the piece within target: the farthest start that still fits (binary search)
            usable = [p for p in options if p >= best]
            lo, hi = 0, len(usable)
            while lo < hi:
                mid = (lo + hi) // 2
                if count(text[usable[mid] : end]) <= target:
                    hi = mid
                else:
                    lo = mid + 1
            best = usable[lo] if lo < len(usable) else start
        out.append((best, end))
    return out


def _cut(text: str, start: int, end: int) -> int:
    """A cut point strictly inside (start, end), near the middle, at a line break or space if any."""
    mid = (start + end) // 2
    for sep in ("\n", " "):
        left = text.rfind(sep, start + 1, mid + 1)
        right = text.find(sep, mid, end - 1)
        options = [p for p in (left, right) if start < p < end]
        if options:
            return min(options, key=lambda p: abs(p - mid))
    return mid


def fit(text: str, span: Span, count: TokenCounter, hard_max: int) -> list[Span]:
    """``span`` cut in halves until every part has at most ``hard_max`` tokens."""
    start, end = span
    if count(text[start:end]) <= hard_max:
        return [span]
    if end - start <= 1:
        raise ValueError(f"hard_max={hard_max} is smaller than one character's token count")
    cut = _cut(text, start, end)
    parts = [p for p in (_stripped(text, start, cut), _stripped(text, cut, end)) if p is not None]
    return [piece for part in parts for piece in fit(text, part, count, hard_max)]


class _Lines:
    """Maps character offsets of a section's text to 1-based file lines."""

    def __init__(self, text: str, first_line: int):
        self.first = first_line
        self.breaks = [m.start() for m in re.finditer("\n", text)]

    def of(self, offset: int) -> int:
        return self.first + bisect.bisect_left(self.breaks, offset)


def split_section(
    section: Section,
    kind: str,
    language: str | None,
    count: TokenCounter,
    target: int,
    overlap: int,
    hard_max: int,
) -> list[Section]:
    """``section`` as is when it has at most ``target`` tokens, else its pieces (see module doc)."""
    text = section.text
    if count(text) <= target:
        return [section]
    size = target - overlap  # room left for the overlap a piece starts with
    fences: list[Span] = []
    if kind == "code":
        spans = _locate(text, code_splitter(language, count, size).split_text(text))
    elif kind in MARKDOWN_KINDS:
        spans, fences = _markdown_spans(text, count, size, hard_max)
    else:
        spans = _locate(text, prose_splitter(count, size).split_text(text))
    spans = _pack(text, spans, count, size)
    if overlap and len(spans) > 1:
        starts = CODE_OVERLAP_START if kind == "code" else PROSE_OVERLAP_START
        spans = _with_overlap(text, spans, count, overlap, target, starts, fences)
    spans = [piece for span in spans for piece in fit(text, span, count, hard_max)]
    lines = _Lines(text, section.line_start) if section.line_start is not None else None
    return [
        Section(
            text=text[start:end],
            page=section.page,
            heading_path=section.heading_path,
            line_start=lines.of(start) if lines else None,
            line_end=lines.of(end - 1) if lines else None,
            meta=section.meta,
            locator=section.locator,
            header=section.header,
        )
        for start, end in spans
    ]
