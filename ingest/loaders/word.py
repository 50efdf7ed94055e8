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

from ingest.loaders.base import Document, LoadError, heading_sections
from ingest.loaders.zipguard import check_zip

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
    blocks: list[tuple[int | None, str]] = []
    for block in document.iter_inner_content():
        if isinstance(block, Table):
            blocks.extend((None, row) for row in table_rows(block))
        else:
            blocks.append((heading_level(block), block.text))
    sections = heading_sections(blocks)
    core = document.core_properties
    meta = {k: v for k, v in (("title", core.title), ("author", core.author)) if v}
    return Document(kind=KIND, sections=sections, meta=meta)
