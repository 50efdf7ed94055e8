"""PDF pages on the CPU: what the text-layer quality check costs, and how fast OCR reads a page.

Text PDFs of ``PAGES`` A4 pages of prose are written with reportlab, twice: plain ASCII English
(``unreadable_reason`` returns at once on ASCII text) and prose with curly quotes, dashes and
accented letters (the usual case in real documents, measured in full). Each repetition reads a
PDF whole: pypdf's text extraction of every page, then ``unreadable_reason`` on each page's text
(the check every text-layer page pays; the issue's target: under 5% of extraction), then
``load_pdf`` itself (extraction, font facts, the check, cleaning: all a text-layer page costs in
the loader). Medians of ``REPS``.

OCR reads the first page of the second PDF through the loader's own helper (PDFium renders at
150 dpi, RapidOCR on one thread): the first read includes starting the helper and loading the
models; the reads after it are timed alone (median of ``OCR_REPS``).
"""

from __future__ import annotations

import io
import random
import statistics
import tempfile
import textwrap
import time
from pathlib import Path

PAGES = 50
REPS = 5
OCR_REPS = 3
LINES_PER_PAGE = 58  # 10 pt Helvetica on 12 pt leading fills an A4 page between 1-inch margins
LINE_CHARS = 95
OCR_TIMEOUT_S = 600.0
ASCII_SENTENCES = [
    "The knowledge base indexes documents on one machine and answers questions by meaning.",
    "Each page of a PDF keeps its physical number, so a result links to the page it came from.",
    "Scanned pages have no text layer, and their text is recognised from the rendered image.",
    "A font without a character map turns its glyphs into letters that belong to no language.",
    "The quality check measures control characters, private-use characters and script changes.",
    "Chunks are embedded in batches, and every batch is written to the store before the next.",
    "Hybrid search fuses the dense ranking with a lexical one, and a reranker may reorder both.",
    "Incremental ingest skips files whose content hash has not changed since the previous run.",
]
# what real documents hold besides ASCII, all in WinAnsi (the standard fonts' encoding)
TYPOGRAPHIC_SENTENCES = [
    "The “hybrid” ranking – dense and lexical – is fused by reciprocal rank, as Qdrant’s own.",
    "Les résumés sont indexés page par page ; la requête « où est-ce ? » trouve la bonne.",
    "Die Größe der Blöcke hängt vom Modell ab, und jeder Block behält seine Seitenzahl.",
]
VARIANTS = {"ascii": ASCII_SENTENCES, "typographic": ASCII_SENTENCES + TYPOGRAPHIC_SENTENCES}


def write_text_pdf(
    path: Path, sentences: list[str], pages: int = PAGES, seed: int = 7, lines: int = LINES_PER_PAGE
) -> Path:
    """``pages`` A4 pages of ``lines`` lines of wrapped prose drawn from ``sentences`` in Helvetica, with a
    real text layer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    rng = random.Random(seed)
    out = io.BytesIO()
    c = canvas.Canvas(out, pagesize=A4, invariant=1)
    _, height = A4
    for number in range(1, pages + 1):
        prose = " ".join(rng.choice(sentences) for _ in range(lines))
        page_lines = [f"Page {number}", *textwrap.wrap(prose, LINE_CHARS)][:lines]
        text = c.beginText(72, height - 72)
        text.setFont("Helvetica", 10, leading=12)
        for line in page_lines:
            text.textLine(line)
        c.drawText(text)
        c.showPage()
    c.save()
    path.write_bytes(out.getvalue())
    return path


def text_layer_run(path: Path, reps: int = REPS) -> dict:
    """Per-page milliseconds of pypdf extraction, the quality check and the whole loader (medians)."""
    from pypdf import PdfReader

    from ingest.loaders import LoadOptions
    from ingest.loaders.pdf import load_pdf
    from ingest.loaders.textquality import unreadable_reason

    extract, check, load = [], [], []
    texts: list[str] = []
    for _ in range(reps):
        started = time.perf_counter()
        texts = [page.extract_text() for page in PdfReader(path).pages]
        extract.append(time.perf_counter() - started)
        started = time.perf_counter()
        reasons = [unreadable_reason(text) for text in texts]
        check.append(time.perf_counter() - started)
        started = time.perf_counter()
        doc = load_pdf(path, LoadOptions(ocr="off"))
        load.append(time.perf_counter() - started)
        assert not any(reasons) and doc.meta["pages_text"] == len(texts), "the text was judged unreadable"
    pages = len(texts)
    extract_s, check_s, load_s = (statistics.median(x) for x in (extract, check, load))
    return {
        "pages": pages,
        "chars_per_page": round(sum(map(len, texts)) / pages),
        "ascii": all(text.isascii() for text in texts),
        "reps": reps,
        "extract_ms_per_page": 1000 * extract_s / pages,
        "check_ms_per_page": 1000 * check_s / pages,
        "check_pct": 100 * check_s / extract_s,
        "load_ms_per_page": 1000 * load_s / pages,
        "load_overhead_pct": 100 * (load_s - extract_s) / extract_s,
    }


def ocr_page_run(path: Path, reps: int = OCR_REPS) -> dict:
    """Seconds to OCR page 1 of ``path`` through the loader's helper: first read, then the median read."""
    from ingest.loaders.ocr import DPI, OCR_THREADS, OcrEngine

    engine = OcrEngine()
    seconds: list[float] = []
    try:
        for _ in range(1 + reps):
            started = time.perf_counter()
            text = engine.page_text(path, 1, OCR_TIMEOUT_S)
            seconds.append(time.perf_counter() - started)
    finally:
        engine.close()
    page_s = statistics.median(seconds[1:])
    return {
        "dpi": DPI,
        "threads": OCR_THREADS,
        "reps": reps,
        "chars": len(text),
        "first_page_s": seconds[0],
        "page_s": page_s,
        "pages_per_s": 1 / page_s,
    }


def ocr_run(pages: int = PAGES, reps: int = REPS, ocr_reps: int = OCR_REPS) -> dict:
    """The bench's ``ocr`` section: the text-layer rows of both variants and the OCR row."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = {name: write_text_pdf(Path(tmp) / f"{name}.pdf", s, pages) for name, s in VARIANTS.items()}
        rows = {name: text_layer_run(path, reps) for name, path in paths.items()}
        return {"text_layer": rows, "ocr": ocr_page_run(paths["typographic"], ocr_reps)}


def render(r: dict) -> list[str]:
    """Markdown lines of the section."""
    header = (
        "| text-layer PDF, A4 pages | chars/page | pypdf extraction ms/page | quality check ms/page "
        "| check / extraction | `load_pdf` ms/page (over extraction) |"
    )
    lines = ["", header, "|---|---|---|---|---|---|"]
    for name, x in r["text_layer"].items():
        lines.append(
            f"| {x['pages']} pages, {name} | {x['chars_per_page']:,} | {x['extract_ms_per_page']:.2f} | "
            f"{x['check_ms_per_page']:.3f} | {x['check_pct']:.1f}% | "
            f"{x['load_ms_per_page']:.2f} (+{x['load_overhead_pct']:.1f}%) |"
        )
    o = r["ocr"]
    lines += [
        "",
        f"| OCR, one A4 text page at {o['dpi']} dpi, {o['threads']} thread | s/page | pages/s |",
        "|---|---|---|",
        f"| first page (helper start, models loaded) | {o['first_page_s']:.1f} | – |",
        f"| each page after (median of {o['reps']}) | {o['page_s']:.1f} | {o['pages_per_s']:.3f} |",
    ]
    return lines


if __name__ == "__main__":
    import json

    result = ocr_run()
    print(json.dumps(result, indent=1))
    print("\n".join(render(result)))
