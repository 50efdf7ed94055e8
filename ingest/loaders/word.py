"""Word documents (.docx) with python-docx: headings give the heading path, tables are kept as rows.

Body paragraphs and tables are read in document order. A paragraph styled "Title" or "Heading N"
opens a section under the headings above it; a table becomes one line per row, its cells joined by
" | " (a merged cell counted once). Comments live in their own part and are never read; pending
tracked changes are left out, both insertions and deletions, so the text is the last accepted
version of the document. Headers, footers and text boxes are not indexed.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from ingest.loaders.base import Document, LoadError
from ingest.loaders.zipguard import check_zip
from ingest.records import Section

if TYPE_CHECKING:  # the library is imported on first use: parse workers start with the registry only
    from docx.table import Table
    from docx.text.paragraph import Paragraph

KIND = "word"
CELL_SEPARATOR = " | "
_HEADING_STYLE = re.compile(r"^(?:Heading\s*(\d)|Title)$", re.IGNORECASE)


def heading_level(paragraph: Paragraph) -> int | None:
    """1-9 for "Heading N", 0 for "Title", None for body text."""
    style = paragraph.style
    match = _HEADING_STYLE.match(style.name or "") if style is not None else None
    if match is None:
        return None
    return int(match.group(1)) if match.group(1) else 0


def table_rows(table: Table) -> list[str]:
    rows = []
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:  # a merged cell appears once per grid column it spans
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        if any(cells):
            rows.append(CELL_SEPARATOR.join(cells))
    return rows


def load_word(path: Path) -> Document:
    import docx
    from docx.table import Table

    check_zip(path)
    try:
        document = docx.Document(str(path))
    except (KeyError, ValueError) as err:
        raise LoadError(f"not a Word document: {err}") from err
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []

    def close() -> None:
        text = "\n".join(lines).strip()
        if text:
            sections.append(Section(text=text, heading_path=tuple(t for _, t in stack)))
        lines.clear()

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            lines.extend(table_rows(block))
            continue
        text = block.text.strip()
        level = heading_level(block)
        if level is not None and text:
            close()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, " ".join(text.split())))
            lines.append(text)
        elif text:
            lines.append(text)
    close()
    core = document.core_properties
    meta = {k: v for k, v in (("title", core.title), ("author", core.author)) if v}
    return Document(kind=KIND, sections=sections, meta=meta)
