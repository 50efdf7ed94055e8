"""Spreadsheets (.xlsx, .xlsm with openpyxl) and delimited text (.csv, .tsv with the csv module).

Every non-empty row is a section located by its sheet and 1-based row number (the chunker merges
neighbouring rows and widens the range: "Sheet 'Q3', rows 120–180"); a sheet's first non-empty row
is its header, repeated at the top of every chunk so that a chunk of rows still says what its
columns mean. Cells are joined by " | "; formulas give the value Excel cached when it last saved
(a file never opened in Excel has none: such cells are empty). Workbooks are streamed (openpyxl's
read-only mode), and at most ``LoadOptions.sheet_max_rows`` rows of a sheet are read, empty ones
included: a sheet of a million styled empty rows costs a bounded time and is reported. A CSV row is a
record (one with a quoted line break is still one row).
"""

from __future__ import annotations

import csv
import datetime as _dt
import io
from collections.abc import Iterable
from pathlib import Path

from ingest.loaders.base import Document, LoadError, LoadOptions, decode_text, read_bytes
from ingest.loaders.zipguard import check_zip
from ingest.records import Section

KIND = "sheet"
CELL_SEPARATOR = " | "
MAX_HEADER_CHARS = 400  # a longer header row is cut: it is repeated in every chunk
MAX_CELL_CHARS = 2000
DELIMITERS = {".csv": ",", ".tsv": "\t"}
CSV_FIELD_LIMIT = 1 << 20


def cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, (_dt.datetime, _dt.date, _dt.time)):
        value = value.isoformat()
    return " ".join(str(value).split())[:MAX_CELL_CHARS]


def row_sections(
    rows: Iterable[tuple[int, Iterable[object]]], place: dict, max_rows: int
) -> tuple[list[Section], bool]:
    """(sections of the non-empty rows after the header, whether rows were left unread) of one sheet;
    ``rows`` yields (1-based row number, cell values)."""
    header = ""
    sections: list[Section] = []
    read = 0
    for number, values in rows:
        read += 1
        if read > max_rows:
            return sections, True
        cells = [cell_text(v) for v in values]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            continue
        text = CELL_SEPARATOR.join(cells)
        if not header:
            header = text[:MAX_HEADER_CHARS]
            continue
        sections.append(Section(text=text, header=header, locator={**place, "rows": [number, number]}))
    if header and not sections:  # a one-row sheet: the row is its content
        sections.append(Section(text=header, locator={**place, "rows": [1, 1]}))
    return sections, False


def load_sheet(path: Path, options: LoadOptions | None = None) -> Document:
    options = options or LoadOptions()
    if path.suffix.lower() in DELIMITERS:
        return _load_delimited(path, options)
    return _load_workbook(path, options)


def _load_workbook(path: Path, options: LoadOptions) -> Document:
    from openpyxl import load_workbook
    from openpyxl.utils.exceptions import InvalidFileException

    check_zip(path)
    try:
        book = load_workbook(str(path), read_only=True, data_only=True)
    except (InvalidFileException, KeyError, ValueError) as err:
        raise LoadError(f"not an Excel workbook: {err}") from err
    sections: list[Section] = []
    warnings: list[str] = []
    try:
        for sheet in book.worksheets:
            sheet.reset_dimensions()  # the stored size may be stale: rows past it would be lost
            rows = enumerate(sheet.iter_rows(values_only=True), 1)
            found, cut = row_sections(rows, {"sheet": sheet.title}, options.sheet_max_rows)
            sections.extend(found)
            if cut:
                warnings.append(f"sheet {sheet.title!r}: rows after {options.sheet_max_rows} not indexed")
    finally:
        book.close()
    return Document(kind=KIND, sections=sections, meta={"sheets": len(book.sheetnames)}, warnings=warnings)


def _load_delimited(path: Path, options: LoadOptions) -> Document:
    text, encoding = decode_text(read_bytes(path))
    csv.field_size_limit(CSV_FIELD_LIMIT)
    reader = csv.reader(io.StringIO(text), delimiter=DELIMITERS[path.suffix.lower()])
    try:
        sections, cut = row_sections(enumerate(reader, 1), {}, options.sheet_max_rows)
    except csv.Error as err:
        raise LoadError(f"malformed {path.suffix.lower()[1:].upper()}: {err}") from err
    warnings = [f"rows after {options.sheet_max_rows} not indexed"] if cut else []
    return Document(kind=KIND, sections=sections, meta={"encoding": encoding}, warnings=warnings)
