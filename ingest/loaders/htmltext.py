"""HTML to Markdown-shaped text, so that headings become a heading path like a Markdown file's.

:func:`main_content` keeps a web page's main content (trafilatura; navigation, banners, sidebars
and footers dropped); :func:`all_blocks` keeps every block of a document whose every part is
content (an EPUB chapter), with lxml. Both keep the text of links and drop their targets, and
:func:`located_sections` cuts the result at its headings. Line numbers are not kept: they would
count lines of the converted text, not of the file.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from ingest.loaders.markdown import heading_sections
from ingest.records import Section

HEADINGS = {f"h{n}": n for n in range(1, 7)}
# blocks whose whole text is one paragraph of the output (a block inside one of them is part of it)
TEXT_BLOCKS = frozenset(
    {"p", "li", "pre", "dt", "dd", "figcaption", "caption", "blockquote", "tr", "address"}
)
SKIPPED = frozenset({"script", "style", "noscript", "template", "head", "nav"})
CELL_SEPARATOR = " | "


def main_content(html: str) -> str:
    """A page's main content as Markdown (headings as ``#`` lines); the whole text when the page is
    too small for main-content detection."""
    import trafilatura  # imported on first use (a second): parse workers start with the registry only

    quiet = logging.getLogger("trafilatura")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # it logs a page too small to extract from: that case is handled here
    try:
        text = trafilatura.extract(
            html, output_format="markdown", include_links=False, include_tables=True, favor_recall=True
        )
    finally:
        quiet.setLevel(level)
    return text if text and text.strip() else all_blocks(html)


def all_blocks(html: str | bytes) -> str:
    """Every heading and text block of ``html`` in order, as Markdown paragraphs."""
    import lxml.html

    if isinstance(html, str) and html.lstrip().startswith("<?xml"):
        html = html.encode("utf-8")  # lxml refuses text that declares its own encoding
    try:
        root = lxml.html.document_fromstring(html)
    except Exception:  # noqa: BLE001 - lxml raises ParserError (or ValueError) on empty or odd input
        return ""
    out: list[str] = []
    _walk(root, out)
    return "\n\n".join(out)


def _walk(element: Any, out: list[str]) -> None:
    for child in element:
        tag = child.tag if isinstance(child.tag, str) else ""
        if tag in SKIPPED:
            continue
        if tag in HEADINGS:
            text = " ".join(child.text_content().split())
            if text:
                out.append("#" * HEADINGS[tag] + " " + text)
        elif tag == "tr":
            cells = [" ".join(c.text_content().split()) for c in child if c.tag in ("td", "th")]
            if any(cells):
                out.append(CELL_SEPARATOR.join(cells))
        elif tag in TEXT_BLOCKS:
            text = child.text_content().strip()
            if text:
                out.append(text)
        else:
            if child.text and child.text.strip() and tag not in ("html", "body"):
                out.append(child.text.strip())
            _walk(child, out)
        if child.tail and child.tail.strip() and element.tag not in TEXT_BLOCKS:
            out.append(child.tail.strip())


def located_sections(markdown_text: str, **fields: Any) -> list[Section]:
    """Sections of converted text cut at its headings, without line numbers, with ``fields`` set."""
    return [
        replace(s, line_start=None, line_end=None, **fields)
        for s in heading_sections(markdown_text.split("\n"))
    ]
