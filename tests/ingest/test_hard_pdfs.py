"""PDFs pypdf cannot read: scanned pages, CJK fonts without ToUnicode. Each page is re-read by the
fallback extractor (PDFium) or OCR, keeps its physical page number, and garbage never gets indexed.

Every PDF is made here: scanned pages are images drawn with PIL, wrapped as image-only PDF pages;
font pages are written by hand (``corpus._RawPdf``) with subset fonts embedded by fontTools.
The Chinese pages need a CJK TrueType font on the machine (Debian: fonts-wqy-microhei); without
one they are left out and the tests about them skip, saying so.
"""

from __future__ import annotations

import io
import pickle
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont
from pypdf import PdfReader, PdfWriter

from app.render import document_rows
from ingest.chunking import chunk_document
from ingest.loaders import LoadError, LoadOptions, load
from ingest.loaders.ocr import Box, OcrError, reading_order, render_scale, shared_engine
from ingest.loaders.pdf import NOT_EMBEDDED, OCR_NO_TEXT, OCR_OFF
from ingest.loaders.pdf_fallback import extract_pages
from ingest.loaders.textquality import unreadable_reason
from ingest.pagesources import PageSources, page_ranges
from ingest.parsing.worker import parse
from kb.cli.main import _print_report
from kb.service.core import KbService
from kb.settings import Settings
from tests.helpers import corpus

SCAN_DPI = 150
JOB_TIMEOUT_S = 300  # an ingest that OCRs a page: the helper's start and one page, on a slow machine
CJK_FONT_PACKAGE = "fonts-wqy-microhei"
CJK_FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",
)
VERA = Path(__import__("reportlab").__file__).parent / "fonts" / "Vera.ttf"

TEXT_CANARY = "theta gecko"
SCAN_CANARY = "epsilon quokka 4821"
SCAN_CJK_CANARY = "玄武朱雀"
GLYPH_CANARY = "zeta pangolin 7305"
GLYPH_CJK_CANARY = "麒麟凤凰"
BIG5_TEXT = "本頁的暗號是鳳凰於飛。向量資料庫是一種專門用於儲存和檢索高維向量的資料庫系統。"
KOREAN_TEXT = "이 페이지의 암호는 푸른 고래입니다. 벡터 데이터베이스는 고차원 벡터를 저장합니다."


def _find_cjk_font() -> tuple[Path, int] | None:
    """(path, face index) of an installed CJK font with TrueType outlines, which the glyph pages embed."""
    paths = [Path(p) for p in CJK_FONT_CANDIDATES]
    if shutil.which("fc-list"):
        fc = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, check=False)
        listed = fc.stdout
        paths += [Path(line.split(":")[0].strip()) for line in listed.splitlines() if line.strip()]
    for path in paths:
        if path.is_file() and path.suffix.lower() in (".ttf", ".ttc") and _usable(path):
            return path, 0
    return None


def _usable(path: Path) -> bool:
    from fontTools.ttLib import TTFont

    try:
        with TTFont(path, fontNumber=0, lazy=True) as font:
            return "glyf" in font and ord("麒") in font.getBestCmap()
    except Exception:  # noqa: BLE001 - not a usable font
        return False


CJK_FONT = _find_cjk_font()
needs_cjk_font = pytest.mark.skipif(
    CJK_FONT is None, reason=f"no CJK TrueType font installed (Debian: apt-get install {CJK_FONT_PACKAGE})"
)


# ----------------------------------------------------------------------------------------------
# page writers: each returns the bytes of a one-page PDF


def _text_page(lines: list[str]) -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    c = canvas.Canvas(out, invariant=1)
    c.setFont("Helvetica", 12)
    for i, line in enumerate(lines):
        c.drawString(72, 760 - 20 * i, line)
    c.showPage()
    c.save()
    return out.getvalue()


def _scanned_page(lines: list[str], font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> bytes:
    """An A4 page at SCAN_DPI that is only an image of the lines (no text layer), like a scan."""
    width, height = round(8.27 * SCAN_DPI), round(11.69 * SCAN_DPI)
    image = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((150, 150 + 60 * i), line, fill=0, font=font)
    out = io.BytesIO()
    image.save(out, "PDF", resolution=SCAN_DPI)
    return out.getvalue()


def _raw_page(font_objects, lines: list[bytes], size: int = 14) -> bytes:
    """One page drawing ``lines`` (already encoded string operands) in the font ``font_objects`` adds."""
    pdf = corpus._RawPdf()
    pages = pdf.add(b"")
    font = font_objects(pdf)
    ops = [b"BT /F1 %d Tf %d TL 72 760 Td" % (size, size * 3 // 2)] + [line + b" Tj T*" for line in lines]
    content = pdf.stream(b"\n".join([*ops, b"ET"]))
    page = pdf.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 %d 0 R >> >>"
        b" /Contents %d 0 R >>" % (pages, font, content)
    )
    pdf.set(pages, b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page)
    return pdf.render(pdf.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages))


def _descriptor(pdf, name: bytes, font_file: int | None) -> int:
    embedded = b" /FontFile2 %d 0 R" % font_file if font_file else b""
    return pdf.add(
        b"<< /Type /FontDescriptor /FontName /%s /Flags 4 /FontBBox [0 -200 1000 900] /ItalicAngle 0"
        b" /Ascent 900 /Descent -200 /CapHeight 700 /StemV 80%s >>" % (name, embedded)
    )


def _glyph_id_page(lines: list[str], font_path: Path, font_number: int = 0) -> bytes:
    """Text as glyph ids of an embedded subset TrueType font (Identity-H, CIDToGIDMap Identity) with
    no ToUnicode map and no cmap left in the font: the PDF that only OCR can read."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    text = "".join(lines)
    options = subset.Options()
    options.layout_features, options.notdef_outline, options.glyph_names = [], True, False
    with TTFont(font_path, fontNumber=font_number) as font:
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes={ord(ch) for ch in text})
        subsetter.subset(font)
        order, cmap, upem = font.getGlyphOrder(), font.getBestCmap(), font["head"].unitsPerEm
        gid = {ch: order.index(cmap[ord(ch)]) for ch in set(text)}
        advance = {g: round(font["hmtx"][order[g]][0] * 1000 / upem) for g in set(gid.values())}
        del font["cmap"]  # a subset as many producers write it: glyphs only
        font["post"].formatType = 3.0  # and no glyph names either
        out = io.BytesIO()
        font.save(out)
    data = out.getvalue()
    widths = b" ".join(b"%d [%d]" % (g, w) for g, w in sorted(advance.items()))

    def objects(pdf) -> int:
        font_file = pdf.add(
            b"<< /Length %d /Length1 %d >>\nstream\n" % (len(data), len(data)) + data + b"\nendstream"
        )
        descriptor = _descriptor(pdf, b"ABCDEF+Embedded", font_file)
        cid = pdf.add(
            b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /ABCDEF+Embedded /CIDSystemInfo << /Registry (Adobe)"
            b" /Ordering (Identity) /Supplement 0 >> /FontDescriptor %d 0 R /W [%s] /CIDToGIDMap /Identity >>"
            % (descriptor, widths)
        )
        return pdf.add(
            b"<< /Type /Font /Subtype /Type0 /BaseFont /ABCDEF+Embedded /Encoding /Identity-H"
            b" /DescendantFonts [%d 0 R] >>" % cid
        )

    return _raw_page(
        objects, [b"<" + "".join(f"{gid[ch]:04X}" for ch in line).encode() + b">" for line in lines]
    )


def _predefined_cmap_page(text: str, cmap: bytes, ordering: bytes, codec: str) -> bytes:
    """CJK text in a predefined CMap (legacy multi-byte codes), font not embedded, no ToUnicode."""

    def objects(pdf) -> int:
        descriptor = _descriptor(pdf, b"MingLiU", None)
        cid = pdf.add(
            b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /MingLiU /CIDSystemInfo << /Registry (Adobe)"
            b" /Ordering (%s) /Supplement 2 >> /FontDescriptor %d 0 R /DW 1000 >>" % (ordering, descriptor)
        )
        return pdf.add(
            b"<< /Type /Font /Subtype /Type0 /BaseFont /MingLiU /Encoding /%s /DescendantFonts [%d 0 R] >>"
            % (cmap, cid)
        )

    return _raw_page(
        objects, [corpus._literal(text[i : i + 25].encode(codec)) for i in range(0, len(text), 25)]
    )


def _unembedded_glyph_id_page() -> bytes:
    """corpus.write_mojibake_pdf's page 2: glyph ids of a font that is not embedded (nothing can read it)."""
    ids = corpus._subset_glyph_ids(corpus.MOJIBAKE_SOURCE)

    def objects(pdf) -> int:
        descriptor = _descriptor(pdf, b"SimSun", None)
        cid = pdf.add(
            b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SimSun /CIDSystemInfo << /Registry (Adobe)"
            b" /Ordering (Identity) /Supplement 0 >> /FontDescriptor %d 0 R /DW 1000 >>" % descriptor
        )
        return pdf.add(
            b"<< /Type /Font /Subtype /Type0 /BaseFont /SimSun /Encoding /Identity-H /DescendantFonts [%d 0 R] >>"
            % cid
        )

    return _raw_page(
        objects,
        [b"<" + "".join(f"{i:04X}" for i in ids[k : k + 30]).encode() + b">" for k in range(0, len(ids), 30)],
    )


def _blank_page() -> bytes:
    from reportlab.pdfgen import canvas

    out = io.BytesIO()
    c = canvas.Canvas(out, invariant=1)
    c.showPage()
    c.save()
    return out.getvalue()


def _join(parts: list[bytes], path: Path) -> Path:
    writer = PdfWriter()
    for part in parts:
        writer.append(PdfReader(io.BytesIO(part)))
    with path.open("wb") as f:
        writer.write(f)
    return path


def _latin_font(size: int = 30) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=size)  # Pillow's own font: no system font needed


def _cjk_image_font(size: int = 34) -> ImageFont.FreeTypeFont:
    assert CJK_FONT is not None
    return ImageFont.truetype(str(CJK_FONT[0]), size, index=CJK_FONT[1])


# ----------------------------------------------------------------------------------------------
# the mixed document: every kind of page, each with what must become of it


@dataclass
class Mixed:
    path: Path
    sources: dict[int, str | None] = field(default_factory=dict)  # page -> "text" | "fallback" | "ocr" | None
    canaries: dict[str, int] = field(default_factory=dict)  # phrase -> page holding it
    exact: dict[int, str] = field(default_factory=dict)  # page -> text the fallback must give exactly


def write_mixed(directory: Path) -> Mixed:
    parts: list[tuple[bytes, str | None, str | None]] = [
        (
            _text_page(["A page with a real text layer.", f"The canary is {TEXT_CANARY}."]),
            "text",
            TEXT_CANARY,
        ),
        (
            _scanned_page(
                ["A scanned page has no text layer.", f"Its canary is {SCAN_CANARY}."], _latin_font()
            ),
            "ocr",
            SCAN_CANARY,
        ),
    ]
    if CJK_FONT is not None:
        lines = [f"扫描页面的暗号是{SCAN_CJK_CANARY}。", "OCR reads Chinese and English together."]
        parts.append((_scanned_page(lines, _cjk_image_font()), "ocr", SCAN_CJK_CANARY))
    parts.append(
        (
            _glyph_id_page(
                ["Glyph ids without any map to characters.", f"The canary is {GLYPH_CANARY}."], VERA
            ),
            "ocr",
            GLYPH_CANARY,
        )
    )
    if CJK_FONT is not None:
        lines = [
            f"本页的暗号是{GLYPH_CJK_CANARY}。",
            "向量数据库是一种专门用于存储和检索高维向量的数据库系统。",
        ]
        parts.append((_glyph_id_page(lines, *CJK_FONT), "ocr", GLYPH_CJK_CANARY))
    parts += [
        (_predefined_cmap_page(BIG5_TEXT, b"B5pc-H", b"CNS1", "big5"), "fallback", "鳳凰於飛"),
        (_predefined_cmap_page(KOREAN_TEXT, b"KSCms-UHC-H", b"Korea1", "cp949"), "fallback", "푸른 고래"),
        (_blank_page(), None, None),
        (_unembedded_glyph_id_page(), None, None),
    ]
    mixed = Mixed(_join([p for p, _, _ in parts], Path(directory) / "mixed.pdf"))
    for number, (_, source, canary) in enumerate(parts, 1):
        mixed.sources[number] = source
        if canary:
            mixed.canaries[canary] = number
    mixed.exact = {mixed.canaries["鳳凰於飛"]: BIG5_TEXT, mixed.canaries["푸른 고래"]: KOREAN_TEXT}
    return mixed


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Mixed:
    return write_mixed(tmp_path_factory.mktemp("hard"))


@pytest.fixture(scope="module")
def mixed_doc(mixed):
    return load(mixed.path)


def _pages(sources: dict[int, str | None], wanted: str | None) -> list[int]:
    return [page for page, source in sources.items() if source == wanted]


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


# ----------------------------------------------------------------------------------------------
# the mixed document, OCR on (the default)


def test_every_page_keeps_its_physical_number_and_counts_are_exact(mixed, mixed_doc):
    indexed = {page: source for page, source in mixed.sources.items() if source is not None}
    assert [s.page for s in mixed_doc.sections] == sorted(indexed)
    assert mixed_doc.meta["pages"] == len(mixed.sources)
    assert mixed_doc.meta["pages_text"] == len(_pages(mixed.sources, "text"))
    assert mixed_doc.meta["pages_fallback"] == len(_pages(mixed.sources, "fallback"))
    assert mixed_doc.meta["pages_ocr"] == len(_pages(mixed.sources, "ocr"))
    assert mixed_doc.meta["pages_unreadable"] == _pages(mixed.sources, None)


def test_each_canary_is_on_its_page(mixed, mixed_doc):
    by_page = {s.page: _squash(s.text) for s in mixed_doc.sections}
    for phrase, page in mixed.canaries.items():
        assert phrase in by_page[page], (phrase, by_page[page])
        assert [p for p, text in by_page.items() if phrase in text] == [page]


def test_ocr_keeps_the_spaces_between_english_words(mixed, mixed_doc):
    """Run-together words ("Itscanaryisepsilonquokka") would be lost to keyword search and blur
    the embedding: the page is rendered fine enough for the recogniser to see the gaps."""
    by_page = {s.page: " ".join(s.text.split()) for s in mixed_doc.sections}
    for phrase in (SCAN_CANARY, GLYPH_CANARY):
        text = by_page[mixed.canaries[phrase]]
        assert phrase in text, text
        words = text.split()
        assert sum(map(len, words)) / len(words) < 8, text  # English averages ~5 letters a word


def test_ocr_of_small_print_keeps_word_gaps(tmp_path):
    """10-point Helvetica, the common body size: at 150 dpi the recogniser ran these words together
    (~16 characters a "word"); the page is rendered at the dpi that keeps them apart."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    lines = [
        "Chunks are embedded in batches, and every batch is written to the store before the next.",
        "Scanned pages have no text layer, and their text is recognised from the rendered image.",
        "Incremental ingest skips files whose content hash has not changed since the previous run.",
    ]
    c = canvas.Canvas(str(tmp_path / "small.pdf"), pagesize=A4)
    text = c.beginText(72, A4[1] - 72)
    text.setFont("Helvetica", 10, leading=12)
    for line in lines:
        text.textLine(line)
    c.drawText(text)
    c.save()
    got = " ".join(shared_engine().page_text(tmp_path / "small.pdf", 1, 120).split())
    words = got.split()
    assert sum(map(len, words)) / len(words) < 7, got
    assert "every batch is written to the store" in got, got


def test_only_ocr_pages_are_marked_ocr(mixed, mixed_doc):
    for section in mixed_doc.sections:
        assert section.meta.get("ocr", False) is (mixed.sources[section.page] == "ocr"), section.page


def test_fallback_recovers_the_real_characters_exactly(mixed, mixed_doc):
    by_page = {s.page: s.text.replace("\n", "") for s in mixed_doc.sections}
    for page, text in mixed.exact.items():
        assert by_page[page] == text


def test_pypdf_mojibake_never_reaches_the_sections(mixed, mixed_doc):
    reader = PdfReader(mixed.path)
    garbage = {}
    for number, page in enumerate(reader.pages, 1):
        text = page.extract_text().strip()
        if mixed.sources[number] != "text" and text:
            garbage[number] = text
    pypdf_gave_text = set(_pages(mixed.sources, "fallback")) | {len(mixed.sources)}
    assert set(garbage) >= pypdf_gave_text
    for section in mixed_doc.sections:
        assert unreadable_reason(section.text) is None
        for text in garbage.values():
            for line in text.splitlines():
                if len(line.strip()) >= 6:
                    assert line.strip() not in section.text


def test_unreadable_pages_are_reported_with_their_reasons(mixed, mixed_doc):
    blank, unembedded = _pages(mixed.sources, None)
    assert mixed_doc.warnings == [
        f"page {blank}: no text layer; {OCR_NO_TEXT}",
        f"page {unembedded}: unreadable text (likely a CJK font without ToUnicode); {NOT_EMBEDDED}",
    ]


def test_ocr_pages_stay_apart_in_chunking(mixed, mixed_doc):
    pieces = chunk_document(mixed_doc, lambda text: len(text.split()) + len(text) // 4, 10_000, 0, 10_000)
    assert [(p.page, p.meta) for p in pieces] == [(s.page, s.meta) for s in mixed_doc.sections]


@needs_cjk_font
def test_chinese_scan_and_chinese_glyph_ids_are_read_by_ocr(mixed, mixed_doc):
    by_page = {s.page: s.text for s in mixed_doc.sections}
    assert SCAN_CJK_CANARY in by_page[mixed.canaries[SCAN_CJK_CANARY]]
    assert GLYPH_CJK_CANARY in by_page[mixed.canaries[GLYPH_CJK_CANARY]]


# ----------------------------------------------------------------------------------------------
# the ingest report, the document list and the CLI summary: one folder ingested by the service


@dataclass
class Library:
    sources: dict[int, str | None]  # scans.pdf: page -> "text" | "fallback" | "ocr" | None
    report: dict  # the finished job's report, as the service keeps it (JSON)
    documents: dict[str, dict]  # source -> the service's document record


@pytest.fixture(scope="module")
def library(qwen3_settings, tmp_path_factory) -> Library:
    """scans.pdf (a page from each source, one unreadable), plain.pdf (a text layer only), notes.md."""
    folder = tmp_path_factory.mktemp("library")
    parts = [
        (_text_page([f"The canary is {TEXT_CANARY}."]), "text"),
        (_scanned_page([f"Canary {SCAN_CANARY}."], _latin_font()), "ocr"),
        (_unembedded_glyph_id_page(), None),
        (_predefined_cmap_page(BIG5_TEXT, b"B5pc-H", b"CNS1", "big5"), "fallback"),
    ]
    _join([page for page, _ in parts], folder / "scans.pdf")
    (folder / "plain.pdf").write_bytes(_text_page(["Nothing but a good text layer."]))
    (folder / "notes.md").write_text("# Notes\n\nNo pages at all.\n", encoding="utf-8")
    data_dir = tmp_path_factory.mktemp("library-data")
    kb = KbService(qwen3_settings.model_copy(update={"data_dir": data_dir, "parse_workers": 1}))
    try:
        kb.start()
        job = kb.submit_folder(str(folder), rebuild=False, exclude=[], origin="api", name="lib")
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while (done := kb.queue.get(job.id)) is not None and done.state not in ("done", "failed"):
            assert time.monotonic() < deadline, f"job still {done.state}"
            time.sleep(0.2)
        assert done is not None and done.state == "done", done and done.error
        assert done.report is not None
        documents = {d["source"]: d for d in kb.documents()}
    finally:
        kb.close()
    return Library({n: source for n, (_, source) in enumerate(parts, 1)}, done.report, documents)


def test_report_says_per_pdf_where_its_pages_came_from(library):
    assert sorted(library.report["indexed"]) == ["lib/notes.md", "lib/plain.pdf", "lib/scans.pdf"]
    assert library.report["pages"] == {
        "lib/scans.pdf": {"pages": 4, "text": 1, "fallback": 1, "ocr": 1, "unreadable": [3]},
        "lib/plain.pdf": {"pages": 1, "text": 1, "fallback": 0, "ocr": 0, "unreadable": []},
    }
    counts = PageSources.from_dict(library.report["pages"]["lib/scans.pdf"])
    assert counts.text == len(_pages(library.sources, "text"))
    assert counts.fallback == len(_pages(library.sources, "fallback"))
    assert counts.ocr == len(_pages(library.sources, "ocr"))
    assert list(counts.unreadable) == _pages(library.sources, None)


def test_document_list_carries_the_page_sources_of_pdfs_only(library):
    docs = library.documents
    assert (
        docs["lib/scans.pdf"]["pages"] == library.report["pages"]["lib/scans.pdf"]
    )  # read back from the store
    assert docs["lib/plain.pdf"]["pages"] == library.report["pages"]["lib/plain.pdf"]
    assert docs["lib/notes.md"]["pages"] is None
    rows = {r["source"]: r for r in document_rows(list(docs.values()))}
    assert {
        k: rows["lib/scans.pdf"][k] for k in ("pages", "text layer", "fallback", "OCR", "unreadable")
    } == {
        "pages": 4,
        "text layer": 1,
        "fallback": 1,
        "OCR": 1,
        "unreadable": "3",
    }
    assert rows["lib/plain.pdf"]["unreadable"] == ""
    assert all(
        rows["lib/notes.md"][k] is None for k in ("pages", "text layer", "fallback", "OCR", "unreadable")
    )


def test_cli_summary_prints_a_line_per_pdf_that_needed_help(library, capsys):
    _print_report(library.report, as_json=False)
    lines = capsys.readouterr().out.splitlines()
    assert "  lib/scans.pdf: 4 pages — 1 text layer, 1 fallback, 1 OCR; unreadable: 3" in lines
    assert not any("lib/plain.pdf" in line for line in lines)
    assert page_ranges([9, 1, 2, 3, 7, 10, 2]) == "1-3, 7, 9-10"


# ----------------------------------------------------------------------------------------------
# the settings


def test_ocr_off_reports_the_pages_it_would_have_read(mixed):
    doc = parse(str(mixed.path), LoadOptions(ocr="off"))
    assert not isinstance(doc, LoadError)
    ocr_pages = _pages(mixed.sources, "ocr")
    assert doc.meta["pages_ocr"] == 0
    assert doc.meta["pages_unreadable"] == sorted([*ocr_pages, *_pages(mixed.sources, None)])
    assert [s.page for s in doc.sections] == sorted(
        _pages(mixed.sources, "text") + _pages(mixed.sources, "fallback")
    )
    for page in ocr_pages:
        assert any(w.startswith(f"page {page}: ") and w.endswith(f"; {OCR_OFF}") for w in doc.warnings), page


def test_ocr_page_limit(mixed):
    doc = load(mixed.path, LoadOptions(ocr_max_pages=0))
    assert doc.meta["pages_ocr"] == 0
    first = _pages(mixed.sources, "ocr")[0]
    assert f"page {first}: no text layer; not OCR'd: over the limit of 0 OCR pages per file" in doc.warnings


def test_ocr_always_reads_text_pages_too(tmp_path):
    path = tmp_path / "plain.pdf"
    path.write_bytes(_text_page(["Even a page with a good text layer.", f"The canary is {TEXT_CANARY}."]))
    doc = load(path, LoadOptions(ocr="always"))
    assert [(s.page, s.meta) for s in doc.sections] == [(1, {"ocr": True})]
    assert TEXT_CANARY in doc.sections[0].text
    assert (doc.meta["pages_text"], doc.meta["pages_ocr"]) == (0, 1)


def test_ocr_timeout_costs_the_page_not_the_document(tmp_path):
    path = _join(
        [
            _text_page([f"The canary is {TEXT_CANARY}."]),
            _scanned_page([f"Canary {SCAN_CANARY}."], _latin_font()),
        ],
        tmp_path / "slow.pdf",
    )
    doc = load(path, LoadOptions(ocr_page_timeout_s=0.001))
    assert [s.page for s in doc.sections] == [1]
    assert doc.warnings == ["page 2: no text layer; OCR timed out after 0.001 s"]
    assert doc.meta["pages_unreadable"] == [2]


def test_a_document_of_only_unreadable_pages_is_a_load_error_naming_them(tmp_path):
    path = _join([_blank_page(), _unembedded_glyph_id_page()], tmp_path / "nothing.pdf")
    with pytest.raises(LoadError) as err:
        load(path)
    assert str(err.value) == (
        f"no indexable text: page 1: no text layer; {OCR_NO_TEXT}; "
        f"page 2: unreadable text (likely a CJK font without ToUnicode); {NOT_EMBEDDED}"
    )


def test_ocr_failure_is_reported_and_the_helper_goes_on(tmp_path):
    engine = shared_engine()
    with pytest.raises(OcrError, match=r"^OCR failed: FileNotFoundError: "):
        engine.page_text(tmp_path / "gone.pdf", 1, 60)
    blank = tmp_path / "blank.pdf"
    blank.write_bytes(_blank_page())
    assert engine.page_text(blank, 1, 60) == ""


def test_kb_ocr_settings_become_load_options(monkeypatch):
    monkeypatch.setenv("KB_OCR", "off")
    monkeypatch.setenv("KB_OCR_PAGE_TIMEOUT_S", "12.5")
    monkeypatch.setenv("KB_OCR_MAX_PAGES", "7")
    assert LoadOptions.from_settings(Settings()) == LoadOptions(
        ocr="off", ocr_page_timeout_s=12.5, ocr_max_pages=7
    )


def test_load_options_cross_process_boundaries():
    options = LoadOptions(ocr="always", ocr_page_timeout_s=5, ocr_max_pages=3)
    assert pickle.loads(pickle.dumps(options)) == options


# ----------------------------------------------------------------------------------------------
# the pieces


def test_pdfium_reads_what_pypdf_garbles(tmp_path):
    path = tmp_path / "big5.pdf"
    path.write_bytes(_predefined_cmap_page(BIG5_TEXT, b"B5pc-H", b"CNS1", "big5"))
    assert unreadable_reason(PdfReader(path).pages[0].extract_text()) is not None
    assert extract_pages(path, [1, 7]).keys() == {1}
    assert extract_pages(path, [1])[1].replace("\r\n", "") == BIG5_TEXT


def test_reading_order_is_lines_top_to_bottom_then_left_to_right():
    boxes = [
        Box(300, 102, 500, 128, "world"),
        Box(10, 200, 200, 224, "third line"),
        Box(10, 100, 250, 126, "hello"),
        Box(10, 150, 400, 175, "second line"),
        Box(420, 151, 600, 176, "continues"),
    ]
    assert reading_order(boxes) == "hello world\nsecond line continues\nthird line"
    assert reading_order([]) == ""


def test_render_scale_keeps_the_dpi_and_caps_huge_pages():
    assert render_scale(595, 842) == pytest.approx(220 / 72)  # A4 at 220 dpi: 1819 × 2573 px
    assert max(5000, 7000) * render_scale(5000, 7000) == pytest.approx(3000)
