"""PDF: one Section per page that has readable text, ``page`` = physical 1-based page number.

A page's text comes from the first of these that gives readable text (``textquality`` judges the
page as a whole, ``linequality`` each line, so that a garbled title between good lines counts):

1. pypdf's text layer;
2. PDFium's (``pdf_fallback``), for pages where 1 failed and for pages whose CJK fonts lack a
   ToUnicode map but name a character collection, which PDFium maps and pypdf mostly cannot;
3. OCR of the rendered page (``ocr``), as ``LoadOptions.ocr`` says: "auto" for pages still without
   text, "always" for every page (OCR's text then wins when readable), "off" never. A page whose
   unreadable text is set in fonts that are not embedded is not OCR'd: its rendering shows
   substitute glyphs, and OCR would read the same garbage.

Garbage never reaches the index: a page none of them reads is reported in ``warnings`` with each
reason and listed in ``meta["pages_unreadable"]``. A page whose text layer is readable but for some
lines, and which neither PDFium nor OCR reads in full, keeps its readable lines; the dropped lines
are reported in ``warnings`` with the page. ``meta`` also counts where the indexed pages came
from (``pages_text``, ``pages_fallback``, ``pages_ocr``), and an OCR'd page's Section carries
``meta["ocr"] = True``.

pypdf's own resource limits (its ``Configuration`` defaults) apply; what they refuse, like any
other pypdf failure on the whole file, becomes a LoadError with a reason. A page that fails alone
costs only itself, and so does an OCR failure or timeout.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

from ingest.loaders.base import Document, LoadError, LoadOptions, read_bytes
from ingest.loaders.linequality import check_lines
from ingest.loaders.ocr import OcrError, OcrUnavailable, shared_engine
from ingest.loaders.pdf_fallback import FontFacts, extract_pages, font_facts
from ingest.loaders.textquality import unreadable_reason
from ingest.records import Section

KIND = "pdf"
NO_TEXT = "no text layer"
OCR_OFF = "OCR off"
OCR_NO_TEXT = "OCR found no text"
NOT_EMBEDDED = "fonts not embedded, so OCR of the rendered page cannot read it either"
# Only this much of a failing page's error message goes into its warning.
MAX_ERROR_CHARS = 200


def _why(err: BaseException) -> str:
    message = str(err).strip() or type(err).__name__
    return message[:MAX_ERROR_CHARS]


def _open(data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise LoadError("encrypted (user password)")
        len(reader.pages)  # resolves the page tree now, so that its damage is reported here
    except LoadError:
        raise
    except FileNotDecryptedError as err:
        raise LoadError("encrypted (user password)") from err
    except DependencyError as err:
        raise LoadError(f"encrypted with an algorithm pypdf cannot decrypt here: {_why(err)}") from err
    except LimitReachedError as err:
        raise LoadError(f"exceeds pypdf's safety limits: {_why(err)}") from err
    except Exception as err:  # pypdf raises many kinds on damaged files (PdfReadError, KeyError, …)
        hint = "" if b"%%EOF" in data[-2048:] else " (no %EOF marker)"
        raise LoadError(f"truncated or damaged PDF{hint}: {_why(err)}") from err
    return reader


def _clean(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _page_labels(reader: PdfReader) -> list[str]:
    try:
        return list(reader.page_labels)
    except Exception:  # noqa: BLE001 - labels are a nicety: a broken label tree must not cost the document
        return []


def _doc_meta(reader: PdfReader, n_pages: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"pages": n_pages}
    try:
        info = reader.metadata
        title, author = (info.title, info.author) if info is not None else (None, None)
    except Exception:  # noqa: BLE001 - so are title and author
        title = author = None
    if isinstance(title, str) and title.strip():
        meta["title"] = title.strip()
    if isinstance(author, str) and author.strip():
        meta["author"] = author.strip()
    return meta


@dataclass
class _Page:
    number: int
    facts: FontFacts
    text: str = ""
    source: str | None = None  # "text" | "fallback" | "ocr"; None while nothing readable was found
    problems: list[str] = field(default_factory=list)
    garbled: bool = False  # the text layer has text, but unreadable
    # the text layer without its garbled lines, indexed when no other extractor reads the page
    salvage: str = ""


def _text_layer(reader: PdfReader, number: int) -> _Page:
    try:
        page = reader.pages[number - 1]
        result = _Page(number, font_facts(page))
        text = _clean(page.extract_text())
    except Exception as err:  # noqa: BLE001 - one bad page (broken stream, limit) costs only itself
        problem = f"text extraction failed ({type(err).__name__}: {_why(err)})"
        return _Page(number, FontFacts(), problems=[problem])
    if not text:
        result.problems.append(NO_TEXT)
        return result
    reason = unreadable_reason(text)
    lines = check_lines(text) if reason is None else None
    if lines is None:
        result.problems.append(f"unreadable text ({reason})")
        result.garbled = True
    elif not lines.clean:
        result.problems.append(_dropped(lines.dropped, lines.reason))
        result.garbled = True
        result.salvage = lines.text
    else:
        result.text, result.source = lines.text, "text"
    return result


def _dropped(lines: int, reason: str | None) -> str:
    return f"{lines} unreadable line{'s' if lines != 1 else ''} dropped ({reason})"


def _readable(text: str) -> str | None:
    """``text`` when it reads as real text, line by line too (stray characters taken out); else None."""
    if not text or unreadable_reason(text) is not None:
        return None
    lines = check_lines(text)
    return lines.text if lines.clean and lines.text else None


def _fallback(path: Path, pages: list[_Page]) -> None:
    """PDFium's text replaces what pypdf could not read, and pypdf's text of collection-coded CJK fonts."""
    todo = [p for p in pages if p.source is None or p.facts.cid_collection]
    if not todo:
        return
    texts = extract_pages(path, [p.number for p in todo])
    for page in todo:
        text = _readable(_clean(texts.get(page.number, "")))
        if text is not None:
            page.text, page.source = text, "fallback"


def _ocr(path: Path, pages: list[_Page], options: LoadOptions) -> None:
    if options.ocr == "off":
        for page in pages:
            if page.source is None:
                page.problems.append(OCR_OFF)
        return
    budget = options.ocr_max_pages
    unavailable: str | None = None
    for page in pages:
        if options.ocr == "auto" and page.source is not None:
            continue
        if page.source is None and page.garbled and not page.facts.renders_real_glyphs:
            page.problems.append(NOT_EMBEDDED)
            continue
        if unavailable is not None:
            page.problems.append(unavailable)
            continue
        if budget <= 0:
            page.problems.append(f"not OCR'd: over the limit of {options.ocr_max_pages} OCR pages per file")
            continue
        budget -= 1
        try:
            text = _clean(shared_engine().page_text(path, page.number, options.ocr_page_timeout_s))
        except OcrUnavailable as err:
            unavailable = str(err)
            page.problems.append(unavailable)
            continue
        except OcrError as err:
            page.problems.append(str(err))
            continue
        readable = _readable(text)
        if not text:
            page.problems.append(OCR_NO_TEXT)
        elif readable is None:
            page.problems.append(f"OCR text unreadable ({unreadable_reason(text) or 'garbled lines'})")
        else:
            page.text, page.source = readable, "ocr"


def load_pdf(path: Path, options: LoadOptions | None = None) -> Document:
    options = options or LoadOptions()
    reader = _open(read_bytes(path))
    n_pages = len(reader.pages)
    labels = _page_labels(reader)
    pages = [_text_layer(reader, number) for number in range(1, n_pages + 1)]
    _fallback(path, pages)
    _ocr(path, pages, options)

    sections: list[Section] = []
    warnings: list[str] = []
    for page in pages:
        salvaged = page.source is None and bool(page.salvage)
        if page.source is None or salvaged:
            warnings.append(f"page {page.number}: " + "; ".join(page.problems))
        if salvaged:  # no extractor read it in full: the text layer's readable lines are indexed
            page.text, page.source = page.salvage, "text"
        if page.source is None:
            continue
        label = labels[page.number - 1] if len(labels) == n_pages else str(page.number)
        meta: dict[str, Any] = {"page_label": label} if label != str(page.number) else {}
        if page.source == "ocr":
            meta["ocr"] = True
        sections.append(Section(text=page.text, page=page.number, meta=meta))
    meta = _doc_meta(reader, n_pages)
    for source in ("text", "fallback", "ocr"):
        meta[f"pages_{source}"] = sum(1 for p in pages if p.source == source)
    meta["pages_unreadable"] = [p.number for p in pages if p.source is None]
    return Document(kind=KIND, sections=sections, meta=meta, warnings=warnings)
