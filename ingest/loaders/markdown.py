"""Markdown: one Section per heading, each with its ``heading_path`` and line range.

A section runs from its heading line to the line before the next heading (text before the first
heading is a section with an empty path). Headings are markdown-it-py's top-level ATX and setext
headings, so a ``#`` line inside a code fence or a quote never splits. YAML front matter is read
into ``meta["front_matter"]`` and not indexed. Fences are never split here; the chunker keeps them
whole as well unless one alone exceeds the hard maximum.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingest.loaders.base import Document, LoadError, json_safe, line_section, read_text
from ingest.records import Section

KIND = "markdown"
FRONT_MATTER_OPEN = "---"
FRONT_MATTER_CLOSE = ("---", "...")
_INLINE_TEXT = ("text", "code_inline", "html_inline")
# front matter is copied into every chunk's payload, and YAML aliases can make a few lines expand
# a billionfold ("billion laughs"): more values than this and it is ignored with a warning
MAX_FRONT_MATTER_VALUES = 1000


def split_front_matter(lines: list[str]) -> tuple[dict[str, Any], int, list[str]]:
    """(front matter, index of the first body line, warnings). No front matter: ({}, 0, [])."""
    if not lines or lines[0].rstrip() != FRONT_MATTER_OPEN:
        return {}, 0, []
    for i in range(1, len(lines)):
        if lines[i].rstrip() in FRONT_MATTER_CLOSE:
            break
    else:
        return {}, 0, []  # no closing line: a thematic break, not front matter
    try:
        data = yaml.safe_load("\n".join(lines[1:i]))
    except yaml.YAMLError as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        return {}, i + 1, [f"front matter: invalid YAML ({first})"]
    except RecursionError:
        return {}, i + 1, ["front matter: nested too deeply; ignored"]
    if data is None:
        return {}, i + 1, []
    if not isinstance(data, dict):
        return {}, i + 1, ["front matter: not a mapping of keys to values; ignored"]
    if _more_values_than(data, MAX_FRONT_MATTER_VALUES):
        return {}, i + 1, [f"front matter: more than {MAX_FRONT_MATTER_VALUES} values; ignored"]
    return json_safe(data), i + 1, []


def _more_values_than(data: Any, limit: int) -> bool:
    """Whether ``data`` holds more than ``limit`` values, aliases counted each time they are used."""
    stack, seen = [data], 0
    while stack:
        value = stack.pop()
        seen += 1
        if seen > limit:
            return True
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, (list, tuple, set)):
            stack.extend(value)
    return False


def _heading_text(inline: Token) -> str:
    parts: list[str] = []
    for child in inline.children or []:
        if child.type in _INLINE_TEXT:
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return " ".join("".join(parts).split()) or inline.content.strip()


def headings(body: str) -> list[tuple[int, int, str]]:
    """(0-based line, level 1-6, plain text) of every top-level heading of a Markdown text."""
    tokens = MarkdownIt("commonmark").parse(body)
    found = []
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.level == 0 and token.map is not None:
            found.append((token.map[0], int(token.tag[1]), _heading_text(tokens[i + 1])))
    return found


def heading_sections(lines: list[str], body_start: int = 0) -> list[Section]:
    """One Section per heading of ``lines[body_start:]`` (and one for the text before the first)."""
    marks = [
        (body_start + line, level, title) for line, level, title in headings("\n".join(lines[body_start:]))
    ]
    sections: list[Section] = []
    preamble = line_section(lines, body_start, marks[0][0] if marks else len(lines))
    if preamble is not None:
        sections.append(preamble)
    stack: list[tuple[int, str]] = []  # (level, title) from the top
    for k, (line, level, title) in enumerate(marks):
        while stack and stack[-1][0] >= level:
            stack.pop()
        stack.append((level, title))
        stop = marks[k + 1][0] if k + 1 < len(marks) else len(lines)
        section = line_section(lines, line, stop, heading_path=tuple(t for _, t in stack))
        if section is not None:
            sections.append(section)
    return sections


def load_markdown(path: Path) -> Document:
    text, encoding = read_text(path)
    lines = text.split("\n")
    front_matter, body_start, warnings = split_front_matter(lines)

    sections = heading_sections(lines, body_start)
    if not sections:
        raise LoadError("no text (front matter only)" if front_matter else "no text (whitespace only)")

    meta: dict[str, Any] = {"encoding": encoding}
    if front_matter:
        meta["front_matter"] = front_matter
        if isinstance(front_matter.get("title"), str):
            meta["title"] = front_matter["title"]
    return Document(kind=KIND, sections=sections, meta=meta, warnings=warnings)
