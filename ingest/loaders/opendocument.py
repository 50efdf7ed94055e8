"""OpenDocument text (.odt) with odfdo: headings give the heading path, tables are kept as rows.

The body is read in document order, as the Word loader reads a .docx. A heading (``text:h``, its
outline level) opens a section under the headings above it; a table becomes one line per row, its
cells joined by " | " (a cell a merge covers is not counted, a repeated row or cell counts once);
lists and sections are read through. Annotations (comments) and footnotes are left out, and so are
pending tracked changes, both insertions and deletions, so the text is the last accepted version
of the document. Frames (text boxes, images), indexes and tables of contents are not indexed.
A password-protected file (its members encrypted, as its manifest says) is refused by the ZIP guard.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.loaders.base import Document, LoadError, heading_sections
from ingest.loaders.zipguard import check_zip

if TYPE_CHECKING:  # the library is imported on first use: parse workers start with the registry only
    from odfdo import Element

KIND = "word"  # a word-processing document, whichever program wrote it
CELL_SEPARATOR = " | "
TEXT_MIMETYPE = "application/vnd.oasis.opendocument.text"
MAX_DEPTH = 64  # lists, sections and tables nested deeper than this are not read

# block elements read through for the paragraphs, headings and tables inside them
_CONTAINERS = frozenset({"text:list", "text:list-item", "text:list-header", "text:section"})
# inline elements whose text is not the document's own: comments, footnotes, frames, ruby glosses
_SKIPPED_INLINE = frozenset({"office:annotation", "text:note", "draw:frame", "draw:a", "text:ruby-text"})
_ROW_GROUPS = frozenset({"table:table-header-rows", "table:table-rows", "table:table-row-group"})


class _Reader:
    """Paragraph text without pending insertions: the insertions' ids come from the tracked changes,
    and text between a ``text:change-start`` and its ``text:change-end`` (which may stand in other
    paragraphs) is left out; deleted text lives in the tracked changes themselves, never read."""

    def __init__(self, insertions: set[str]) -> None:
        self.insertions = insertions
        self.open: set[str] = set()

    def inline(self, element: Element) -> str:
        out: list[str] = []
        self._walk(element, out, 0)
        return "".join(out)

    def _walk(self, element: Element, out: list[str], depth: int) -> None:
        self._add(element.text, out)
        for child in element.children:
            tag = child.tag
            change = child.get_attribute_string("text:change-id") if tag.startswith("text:change") else None
            if change in self.insertions and tag == "text:change-start":
                self.open.add(change)
            elif change in self.insertions and tag == "text:change-end":
                self.open.discard(change)
            elif tag == "text:s":
                self._add(" " * int(child.get_attribute_string("text:c") or 1), out)
            elif tag == "text:tab":
                self._add("\t", out)
            elif tag == "text:line-break":
                self._add("\n", out)
            elif tag not in _SKIPPED_INLINE and depth < MAX_DEPTH:
                self._walk(child, out, depth + 1)
            self._add(child.tail, out)

    def _add(self, text: str | None, out: list[str]) -> None:
        if text and not self.open:
            out.append(text)

    def blocks(self, parent: Element, depth: int = 0) -> Iterator[tuple[int | None, str]]:
        """(heading level or None, text) of each heading, paragraph and table row in order."""
        for child in parent.children:
            tag = child.tag
            if tag == "text:h":
                level = child.get_attribute_string("text:outline-level")
                yield (int(level) if level and level.isdigit() else 1), self.inline(child)
            elif tag == "text:p":
                yield None, self.inline(child)
            elif tag == "table:table":
                for row in self.table_rows(child, depth):
                    yield None, row
            elif tag in _CONTAINERS and depth < MAX_DEPTH:
                yield from self.blocks(child, depth + 1)

    def table_rows(self, table: Element, depth: int) -> Iterator[str]:
        for row in _rows(table):
            cells = [self.cell_text(cell, depth) for cell in row.children if cell.tag == "table:table-cell"]
            if any(cells):
                yield CELL_SEPARATOR.join(cells)

    def cell_text(self, cell: Element, depth: int) -> str:
        if depth >= MAX_DEPTH:
            return ""
        return " ".join(" ".join(text for _, text in self.blocks(cell, depth + 1)).split())


def _rows(table: Element) -> Iterator[Element]:
    for child in table.children:
        if child.tag == "table:table-row":
            yield child
        elif child.tag in _ROW_GROUPS:
            yield from _rows(child)


def pending_insertions(body: Element) -> set[str]:
    """Ids of the tracked insertions not yet accepted (their text stands in the body, marked)."""
    found: set[str] = set()
    for tracked in (c for c in body.children if c.tag == "text:tracked-changes"):
        for region in tracked.children:
            region_id = region.get_attribute_string("text:id")
            if region_id and any(c.tag == "text:insertion" for c in region.children):
                found.add(region_id)
    return found


def load_odt(path: Path) -> Document:
    import odfdo
    from lxml.etree import LxmlError

    check_zip(path)
    try:
        document = odfdo.Document(path)
        if document.mimetype != TEXT_MIMETYPE:
            raise LoadError(f"not an OpenDocument text: {document.mimetype or 'no mimetype'}")
        body = document.body
        reader = _Reader(pending_insertions(body))
        blocks = list(reader.blocks(body))
        meta_part = document.meta
        meta = {k: v for k, v in (("title", meta_part.title), ("author", meta_part.initial_creator)) if v}
    except (KeyError, ValueError, TypeError, AttributeError, LxmlError) as err:
        raise LoadError(f"not an OpenDocument text: {err}") from err
    return Document(kind=KIND, sections=heading_sections(blocks), meta=meta)
