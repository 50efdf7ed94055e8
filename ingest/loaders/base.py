"""What every loader returns or raises, and the byte-to-text decoding the text formats share."""

from __future__ import annotations

import codecs
import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from charset_normalizer import from_bytes

from ingest.records import Section
from kb.settings import DEFAULTS, Settings

# Byte-order marks, longest first (the UTF-32-LE mark starts with the UTF-16-LE one).
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# When detection finds several legacy encodings about equally plausible, the first of these that is
# among them wins. charset-normalizer cannot tell single-byte Latin code pages apart (it ranks
# cp1257 above cp1252 on French and would turn "crème" into "crčme"), and Windows-1252 is by far
# the most common of them. The price: a Turkish or Baltic legacy file may decode as Windows-1252.
PREFERRED_LEGACY_ENCODINGS = ("cp1252", "latin_1", "cp1250", "cp1251")
# How much worse (chaos, 0..1) than the best guess a preferred encoding may be and still win.
CHAOS_TIE = 0.05
# Control characters (other than whitespace and ESC, which logs with colours carry) a real text
# file may hold, as a share of its characters.
MAX_CONTROL_SHARE = 0.05
CONTROL_SAMPLE_CHARS = 1 << 16  # measured on the file's start: enough to tell, cheap on huge files
_ALLOWED_CONTROLS = frozenset("\t\n\r\x0b\x0c\x1b")


OcrMode = Literal["auto", "off", "always"]


@dataclass(frozen=True, slots=True)
class LoadOptions:
    """How hard a loader may work on a file; small and picklable, it travels to the parse workers.

    ``ocr``: "auto" OCRs PDF pages that have no text layer or whose text is unreadable and no other
    extractor recovers, "always" OCRs every page (its text replaces the text layer's when readable),
    "off" never OCRs. At most ``ocr_max_pages`` pages of a file are OCR'd, each within
    ``ocr_page_timeout_s`` seconds. A spreadsheet (or CSV) is read for at most ``sheet_max_rows``
    rows per sheet, empty ones included; the rest is reported as not indexed.
    """

    ocr: OcrMode = DEFAULTS.ocr
    ocr_page_timeout_s: float = DEFAULTS.ocr_page_timeout_s
    ocr_max_pages: int = DEFAULTS.ocr_max_pages
    sheet_max_rows: int = DEFAULTS.sheet_max_rows

    @classmethod
    def from_settings(cls, settings: Settings) -> LoadOptions:
        return cls(settings.ocr, settings.ocr_page_timeout_s, settings.ocr_max_pages, settings.sheet_max_rows)


class LoadError(Exception):
    """A file that cannot be indexed, with a reason a person can act on (``str(err)``)."""

    @property
    def reason(self) -> str:
        return str(self.args[0]) if self.args else "unknown error"


@dataclass(slots=True)
class Document:
    """One parsed file: its sections in reading order, plus what a person should know about it.

    ``meta`` is small and JSON-safe (it is copied into every chunk's payload); ``warnings`` are parts
    that were not indexed, each with its reason ("page 3: no text layer; OCR found no text").
    """

    kind: str  # "pdf" | "markdown" | "code" | "text"
    sections: list[Section]
    meta: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    language: str | None = None  # code only: "python", "ts", "rust", …


def read_bytes(path: Path) -> bytes:
    """The file's bytes; an empty file is a LoadError."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise LoadError(f"cannot read: {err.strerror or err}") from err
    if not data:
        raise LoadError("empty file")
    return data


def decode_text(data: bytes) -> tuple[str, str]:
    """(text with '\\n' newlines, encoding) of a text file's bytes; binary data is a LoadError.

    Order: a byte-order mark; NUL bytes mean binary; strict UTF-8; then detection by
    charset-normalizer (a Latin-1 or GBK file is decoded, not dropped).
    """
    if not data:
        raise LoadError("empty file")
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return _normalize(data.decode(encoding)), encoding
            except UnicodeDecodeError as err:
                raise LoadError("binary file") from err
    if b"\x00" in data:
        raise LoadError("binary file")
    try:
        text, encoding = data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        text, encoding = _detect(data)
    if _control_share(text) > MAX_CONTROL_SHARE:
        raise LoadError("binary file")
    return _normalize(text), encoding


def _detect(data: bytes) -> tuple[str, str]:
    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        raise LoadError("binary file")
    tied = [m for m in matches if m.chaos <= best.chaos + CHAOS_TIE]
    for encoding in PREFERRED_LEGACY_ENCODINGS:
        for match in tied:
            if encoding == match.encoding or encoding in match.could_be_from_charset:
                try:
                    return data.decode(encoding), encoding
                except UnicodeDecodeError:
                    break
    return str(best), best.encoding


def _control_share(text: str) -> float:
    sample = text[:CONTROL_SAMPLE_CHARS]
    if not sample:
        return 0.0
    controls = sum(1 for ch in sample if ch < " " and ch not in _ALLOWED_CONTROLS)
    return controls / len(sample)


def _normalize(text: str) -> str:
    return text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")


def read_text(path: Path) -> tuple[str, str]:
    """(text, encoding) of a text file; empty and binary files are LoadErrors."""
    return decode_text(read_bytes(path))


def trimmed_lines(lines: list[str], first: int, stop: int) -> tuple[int, int] | None:
    """The 0-based [start, stop) range of ``lines[first:stop]`` without blank lines at either end."""
    while first < stop and not lines[first].strip():
        first += 1
    while stop > first and not lines[stop - 1].strip():
        stop -= 1
    return (first, stop) if first < stop else None


def line_section(lines: list[str], first: int, stop: int, **fields: Any) -> Section | None:
    """A Section over ``lines[first:stop]`` (0-based), blank edge lines dropped, 1-based line numbers."""
    span = trimmed_lines(lines, first, stop)
    if span is None:
        return None
    start, end = span
    return Section(text="\n".join(lines[start:end]), line_start=start + 1, line_end=end, **fields)


def heading_sections(blocks: Iterable[tuple[int | None, str]]) -> list[Section]:
    """Sections of a word-processing document's blocks in order, each (heading level or None, text):
    a heading opens a section under the headings above it (a lower level), and its text starts it."""
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    lines: list[str] = []

    def close() -> None:
        text = "\n".join(lines).strip()
        if text:
            sections.append(Section(text=text, heading_path=tuple(t for _, t in stack)))
        lines.clear()

    for level, raw in blocks:
        text = raw.strip()
        if level is not None and text:
            close()
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, " ".join(text.split())))
            lines.append(text)
        elif text:
            lines.append(text)
    close()
    return sections


def json_safe(value: Any) -> Any:
    """``value`` made of JSON types only (dates become ISO strings, anything else its str)."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [json_safe(v) for v in value]
    return str(value)
