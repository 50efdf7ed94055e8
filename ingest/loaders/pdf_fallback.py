"""The second text extractor for PDF pages pypdf reads wrong (PDFium, via pypdfium2), and the font
facts that say when to use it and when OCR of the rendered page could help.

Measured on hand-made PDFs whose CJK fonts have no ToUnicode map (tests/test_hard_pdfs.py):

* fonts whose codes name a character collection (Adobe-GB1, -CNS1, -Japan1, -Korea1), through a
  predefined CMap (B5pc-H, KSCms-UHC-H, GBK-EUC-H, 90ms-RKSJ-H …) or as CIDs under Identity-H:
  PDFium maps them to Unicode through its built-in tables and recovers every character, where pypdf
  gives garbage for Identity-H CIDs and Big5, and Hangul-looking garbage for KSCms-UHC-H that the
  quality check cannot see (hence :attr:`FontFacts.cid_collection`);
* fonts with Identity ordering (glyph ids, embedded subsets included) and legacy bytes in a WinAnsi
  font: no extractor recovers anything (poppler's pdftotext, also measured, recovers exactly the
  same pages as PDFium, so it is not used). Only OCR of the rendered page reads them, and only when
  the page draws its real glyphs: a font that is not embedded is drawn with substitute glyphs, and
  OCR then reads the same garbage (:attr:`FontFacts.renders_real_glyphs`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pypdf import PageObject
from pypdf.generic import DictionaryObject, NameObject

# PDFium is not thread-safe: one call at a time per process.
_PDFIUM_LOCK = threading.Lock()
# Form XObjects nested deeper than this are not searched for fonts.
MAX_FORM_DEPTH = 3
# Fonts every viewer has without embedding them.
STANDARD_14 = frozenset(
    {
        "Courier",
        "Courier-Bold",
        "Courier-BoldOblique",
        "Courier-Oblique",
        "Helvetica",
        "Helvetica-Bold",
        "Helvetica-BoldOblique",
        "Helvetica-Oblique",
        "Times-Roman",
        "Times-Bold",
        "Times-BoldItalic",
        "Times-Italic",
        "Symbol",
        "ZapfDingbats",
    }
)
_FONT_FILES = ("/FontFile", "/FontFile2", "/FontFile3")
_IDENTITY_ENCODINGS = frozenset({"/Identity-H", "/Identity-V"})
# Predefined CMaps whose codes are Unicode itself (UniGB-UCS2-H, UniJIS-UTF16-H …): pypdf reads them.
_UNICODE_CMAP_MARKS = ("UCS2", "UTF16", "UTF8", "UTF32")


def extract_pages(path: Path, numbers: Iterable[int]) -> dict[int, str]:
    """PDFium's text of the given pages (1-based); a page it fails on is left out, and so is
    every page when it cannot open the file."""
    import pypdfium2 as pdfium

    texts: dict[int, str] = {}
    with _PDFIUM_LOCK:
        try:
            pdf = pdfium.PdfDocument(str(path))
        except Exception:  # noqa: BLE001 - pypdf opened it; the pages then go on to OCR or stay unreadable
            return texts
        try:
            n_pages = len(pdf)
            for number in sorted(set(numbers)):
                text = _page_text(pdf, number) if 1 <= number <= n_pages else None
                if text is not None:
                    texts[number] = text
        finally:
            pdf.close()
    return texts


def _page_text(pdf: Any, number: int) -> str | None:
    try:
        page = pdf[number - 1]
        textpage = page.get_textpage()
        text = textpage.get_text_range()
        textpage.close()
        page.close()
    except Exception:  # noqa: BLE001 - this page only
        return None
    return text


@dataclass(frozen=True, slots=True)
class FontFacts:
    """What a page's fonts (and form XObjects) say about extracting and rendering it."""

    fonts: int = 0  # fonts other than the standard 14
    embedded: int = 0  # of those, embedded ones (Type 3 fonts count: their glyphs are in the PDF)
    images: bool = False  # the page draws image XObjects
    # a font without ToUnicode whose codes need a character collection's tables to become Unicode
    cid_collection: bool = False

    @property
    def renders_real_glyphs(self) -> bool:
        """Whether a rendering shows the text's real glyphs, so that OCR can read what extraction cannot.

        False only for a page whose fonts are all substitutes (none embedded) and which has no image.
        """
        return self.images or self.fonts == 0 or self.embedded > 0


def _name(value: Any) -> str:
    return str(value) if isinstance(value, (NameObject, str)) else ""


def _needs_collection(font: DictionaryObject, descendant: DictionaryObject) -> bool:
    if "/ToUnicode" in font:
        return False
    encoding = _name(font.get("/Encoding"))
    if any(mark in encoding for mark in _UNICODE_CMAP_MARKS):
        return False
    info = descendant.get("/CIDSystemInfo")
    ordering = str(info.get_object().get("/Ordering", "")) if info is not None else ""
    return (encoding != "" and encoding not in _IDENTITY_ENCODINGS) or ordering not in ("", "Identity")


def _walk(resources: Any, depth: int, seen: set[int], counts: dict[str, int]) -> None:
    resources = resources.get_object() if resources is not None else None
    if not isinstance(resources, DictionaryObject):
        return
    fonts = resources.get("/Font")
    fonts = fonts.get_object() if fonts is not None else None
    for ref in fonts.values() if isinstance(fonts, DictionaryObject) else ():
        font = ref.get_object()
        if not isinstance(font, DictionaryObject) or id(font) in seen:
            continue
        seen.add(id(font))
        subtype = _name(font.get("/Subtype"))
        descendant = font
        if subtype == "/Type0":
            kids = font.get("/DescendantFonts")
            kids = kids.get_object() if kids is not None else None
            descendant = kids[0].get_object() if kids else font
            if not isinstance(descendant, DictionaryObject):
                descendant = font
            if _needs_collection(font, descendant):
                counts["cid_collection"] += 1
        if _name(font.get("/BaseFont")).lstrip("/").split("+")[-1] in STANDARD_14:
            continue
        counts["fonts"] += 1
        descriptor = descendant.get("/FontDescriptor")
        descriptor = descriptor.get_object() if descriptor is not None else None
        if subtype == "/Type3" or (
            isinstance(descriptor, DictionaryObject) and any(k in descriptor for k in _FONT_FILES)
        ):
            counts["embedded"] += 1
    xobjects = resources.get("/XObject")
    xobjects = xobjects.get_object() if xobjects is not None else None
    for ref in xobjects.values() if isinstance(xobjects, DictionaryObject) else ():
        xobject = ref.get_object()
        if not isinstance(xobject, DictionaryObject) or id(xobject) in seen:
            continue
        seen.add(id(xobject))
        subtype = _name(xobject.get("/Subtype"))
        if subtype == "/Image":
            counts["images"] += 1
        elif subtype == "/Form" and depth < MAX_FORM_DEPTH:
            _walk(xobject.get("/Resources"), depth + 1, seen, counts)


def font_facts(page: PageObject) -> FontFacts:
    """The page's :class:`FontFacts`; a damaged resource tree gives the facts of an unremarkable page."""
    counts = {"fonts": 0, "embedded": 0, "images": 0, "cid_collection": 0}
    try:
        _walk(page.get("/Resources"), 0, set(), counts)
    except Exception:  # noqa: BLE001 - facts are hints: a broken font dictionary must not cost the page
        return FontFacts()
    return FontFacts(counts["fonts"], counts["embedded"], counts["images"] > 0, counts["cid_collection"] > 0)
