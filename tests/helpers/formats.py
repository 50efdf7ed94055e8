"""Files of every office, web, e-book, image and notebook format kb reads, each made with the format's
own library, each holding a canary word (a made-up word no other file has) at a known place.

Every writer returns a :class:`Made`: the file's name and, per canary, the locator (or page, or
heading path) the hit holding it must carry. ``write_all`` lays one file of each format out.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# made-up words: found only where they were put (the lexical index finds them exactly)
WORD_CANARY = "quillowisp"
WORD_TABLE_CANARY = "tablurine"
WORD_COMMENT = "commentorbax"  # in a comment: must not be indexed
WORD_DELETED = "deletrovix"  # a tracked deletion: must not be indexed
ODT_CANARY = "odtrellisk"
ODT_TABLE_CANARY = "opencellvo"
ODT_COMMENT = "annotarbex"  # in an annotation (comment): must not be indexed
ODT_FOOTNOTE = "footmerril"  # in a footnote: not indexed (as in a .docx)
ODT_DELETED = "struckolind"  # a tracked deletion: must not be indexed
ODT_INSERTED = "insertavim"  # a pending tracked insertion: must not be indexed
SLIDE_CANARY = "slidermoth"
NOTES_CANARY = "notulwhisk"
SHEET_CANARY = "cellumbrax"
SHEET_FORMULA_VALUE = 4242  # the cached value of a formula cell
CSV_CANARY = "commavrill"
HTML_CANARY = "hypertarn"
HTML_LINK_CANARY = "linkelmow"
HTML_BOILERPLATE = "navigorph"  # in the navigation and the footer: must not be indexed
EPUB_CANARY = "chapterlune"
NOTEBOOK_MD_CANARY = "markdomire"
NOTEBOOK_CODE_CANARY = "codequasp"
NOTEBOOK_OUTPUT = "outputzarn"  # in a cell's output: must not be indexed
IMAGE_WORDS = ("WOMBAT", "KESTREL")  # a few large words OCR reads in seconds

SHEET_ROWS = 300
SHEET_CANARY_ROW = 151  # 1-based row of the sheet (row 1 is the header)
SHEET_NAME = "Q3"


@dataclass(frozen=True)
class Made:
    name: str
    kind: str
    # word -> what the hit holding it must show: "location", "heading_path" (a prefix: merged neighbours
    # keep the headings they share), "page"; "row" or "cell" within the hit's range, "sheet"
    canaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # words that must not be indexed


def write_docx(d: Path, name: str = "report.docx") -> Made:
    import docx
    from docx.oxml.ns import qn
    from lxml import etree

    document = docx.Document()
    document.core_properties.title = "Otter report"
    document.add_heading("Otter Habitats", level=1)
    document.add_paragraph("Otters live near water all year round.")
    document.add_heading("Rivers", level=2)
    para = document.add_paragraph(f"The {WORD_CANARY} otter prefers slow rivers.")
    comment_run = para.add_run(" Reviewed.")
    document.add_comment(comment_run, text=f"Please check {WORD_COMMENT}.", author="kb", initials="kb")
    deleted = etree.SubElement(para._p, qn("w:del"), {qn("w:id"): "90", qn("w:author"): "kb"})
    run = etree.SubElement(deleted, qn("w:r"))
    etree.SubElement(run, qn("w:delText")).text = f" {WORD_DELETED} was removed."
    table = document.add_table(rows=3, cols=2)
    for row, (a, b) in zip(table.rows, [("river", "otters"), ("Thames", "12"), (WORD_TABLE_CANARY, "7")]):
        row.cells[0].text, row.cells[1].text = a, b
    document.add_heading("Lakes", level=2)
    document.add_paragraph("Lakes hold fewer otters than rivers.")
    document.save(d / name)
    path = ("Otter Habitats", "Rivers")
    return Made(
        name,
        "word",
        {WORD_CANARY: {"heading_path": list(path)}, WORD_TABLE_CANARY: {"heading_path": list(path)}},
        absent=(WORD_COMMENT, WORD_DELETED),
    )


def write_odt(d: Path, name: str = "field-notes.odt") -> Made:
    """Headings two levels deep, a table, an annotation, a footnote, a tracked deletion and a pending
    tracked insertion (its text in the body between change marks), made with odfdo."""
    from odfdo import (
        Document,
        Header,
        Paragraph,
        Table,
        TextChange,
        TextChangedRegion,
        TextChangeEnd,
        TextChangeStart,
        TextDeletion,
        TextInsertion,
        TrackedChanges,
    )

    document = Document("text")
    document.meta.title = "Field notes"
    body = document.body
    body.clear()
    tracked = TrackedChanges()
    body.append(tracked)
    body.append(Header(1, "Beaver Dams"))
    body.append(Paragraph("Beavers build dams on streams."))
    body.append(Header(2, "Streams"))
    para = Paragraph(f"The {ODT_CANARY} beaver prefers  small streams.")
    body.append(para)
    para.insert_annotation(after="small", body=f"Please check {ODT_COMMENT}.", creator="kb")
    para.insert_note(after="beaver", note_id="n1", citation="1", body=f"See {ODT_FOOTNOTE}.")
    deletion, insertion = TextChangedRegion(), TextChangedRegion()
    deletion.set_id("ct1")
    insertion.set_id("ct2")
    deleted = TextDeletion()
    deleted.set_change_info(creator="kb")
    deleted.set_deleted(Paragraph(f"{ODT_DELETED} was removed."))
    deletion.append(deleted)
    inserted = TextInsertion()
    inserted.set_change_info(creator="kb")
    insertion.append(inserted)
    tracked.append(deletion)
    tracked.append(insertion)
    mark, start, end = TextChange(), TextChangeStart(), TextChangeEnd()
    mark.set_id("ct1")
    start.set_id("ct2")
    end.set_id("ct2")
    para.append(mark)
    para.append(start)
    start.tail = f" {ODT_INSERTED} was added"
    para.append(end)
    end.tail = " Dams slow the water."
    table = Table("Counts", width=2, height=3)
    table.set_values([["stream", "dams"], ["Kennet", "4"], [ODT_TABLE_CANARY, "9"]])
    body.append(table)
    body.append(Header(2, "Ponds"))
    body.append(Paragraph("Ponds form behind the dams."))
    document.save(d / name)
    path = ["Beaver Dams", "Streams"]
    return Made(
        name,
        "word",
        {ODT_CANARY: {"heading_path": path}, ODT_TABLE_CANARY: {"heading_path": path}},
        absent=(ODT_COMMENT, ODT_FOOTNOTE, ODT_DELETED, ODT_INSERTED),
    )


def write_pptx(d: Path, name: str = "deck.pptx") -> Made:
    from pptx import Presentation

    deck = Presentation()
    for number in range(1, 5):
        slide = deck.slides.add_slide(deck.slide_layouts[1])
        slide.shapes.title.text = f"Slide title {number}"
        body = f"Point {number} of the talk" + (f" about the {SLIDE_CANARY}" if number == 3 else "")
        slide.placeholders[1].text_frame.text = body
        if number == 4:
            slide.notes_slide.notes_text_frame.text = f"Say {NOTES_CANARY} here."
    deck.save(d / name)
    return Made(
        name, "slides", {SLIDE_CANARY: {"location": {"slide": 3}}, NOTES_CANARY: {"location": {"slide": 4}}}
    )


def write_xlsx(d: Path, name: str = "figures.xlsx") -> Made:
    """Two sheets; ``Q3`` has a header and SHEET_ROWS rows, the canary in row SHEET_CANARY_ROW and a
    formula with its cached value (xlsxwriter writes one; openpyxl cannot)."""
    import xlsxwriter

    book = xlsxwriter.Workbook(str(d / name))
    first = book.add_worksheet("Summary")
    first.write_row(0, 0, ["metric", "value"])
    first.write_row(1, 0, ["total", 1])
    sheet = book.add_worksheet(SHEET_NAME)
    sheet.write_row(0, 0, ["region", "species", "count"])
    for row in range(1, SHEET_ROWS):
        species = SHEET_CANARY if row + 1 == SHEET_CANARY_ROW else f"species{row}"
        sheet.write_row(row, 0, [f"region{row}", species, row])
    sheet.write_formula(SHEET_ROWS, 0, "=40*100+242", None, SHEET_FORMULA_VALUE)
    book.close()
    return Made(name, "sheet", {SHEET_CANARY: {"sheet": SHEET_NAME, "row": SHEET_CANARY_ROW}})


def write_csv(d: Path, name: str = "birds.csv") -> Made:
    with (d / name).open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["bird", "wingspan", "note"])
        for i in range(2, 200):
            writer.writerow([f"bird{i}", i, CSV_CANARY if i == 120 else "seen, twice"])
    return Made(name, "sheet", {CSV_CANARY: {"row": 120}})


HTML_PAGE = """<!doctype html><html><head><title>Otter page</title></head><body>
<div id="top">Acme {boiler} banner</div>
<nav><ul>{menu}</ul></nav>
<main><article>
<h1>Otters</h1><p>Otters are semi-aquatic mammals that eat fish and crayfish in many rivers.</p>
<h2>Diet</h2><p>The {canary} otter eats crabs, which is surprising for an otter of rivers.
Read <a href="https://example.org/x">the {link} study</a> for the long version of this story.</p>
<p>More paragraphs make the article look like an article to a content extractor, with words.</p>
</article></main>
<footer>Copyright Acme, {boiler} footer, privacy, terms</footer>
</body></html>"""


def write_html(d: Path, name: str = "otters.html") -> Made:
    menu = "".join(f"<li><a href='/p{i}'>{HTML_BOILERPLATE} item {i}</a></li>" for i in range(12))
    page = HTML_PAGE.format(boiler=HTML_BOILERPLATE, menu=menu, canary=HTML_CANARY, link=HTML_LINK_CANARY)
    (d / name).write_text(page, encoding="utf-8")
    path = ["Otters", "Diet"]
    return Made(
        name,
        "html",
        {HTML_CANARY: {"heading_path": path}, HTML_LINK_CANARY: {"heading_path": path}},
        absent=(HTML_BOILERPLATE,),
    )


def write_epub(d: Path, name: str = "book.epub") -> Made:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("kb-test-book")
    book.set_title("The Otter Book")
    book.set_language("en")
    chapters = []
    for number in range(1, 4):
        body = f"Chapter {number} tells of otters." + (f" The {EPUB_CANARY} appears." if number == 2 else "")
        chapter = epub.EpubHtml(title=f"Chapter {number}", file_name=f"ch{number}.xhtml", lang="en")
        chapter.content = f"<h1>Chapter {number}</h1><h2>Part A</h2><p>{body}</p>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(d / name), book)
    return Made(
        name, "epub", {EPUB_CANARY: {"location": {"chapter": 2}, "heading_path": ["Chapter 2", "Part A"]}}
    )


def write_notebook(d: Path, name: str = "analysis.ipynb") -> Made:
    import nbformat
    from nbformat import v4

    notebook = v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    code = v4.new_code_cell(f"{NOTEBOOK_CODE_CANARY} = 42\nprint({NOTEBOOK_CODE_CANARY})")
    code.outputs = [v4.new_output("stream", name="stdout", text=f"{NOTEBOOK_OUTPUT}\n")]
    notebook.cells = [
        v4.new_markdown_cell("# Analysis\n\nWe study otters."),
        v4.new_code_cell("import math"),
        v4.new_markdown_cell(f"## Counting\n\nThe {NOTEBOOK_MD_CANARY} count follows."),
        code,
    ]
    nbformat.write(notebook, str(d / name))
    return Made(
        name,
        "notebook",
        {NOTEBOOK_MD_CANARY: {"heading_path": ["Analysis", "Counting"]}, NOTEBOOK_CODE_CANARY: {"cell": 4}},
        absent=(NOTEBOOK_OUTPUT,),
    )


def write_image(d: Path, name: str = "whiteboard.png", pages: int = 1) -> Made:
    """Black words on white, large (OCR reads them in seconds); ``pages`` > 1 writes a multi-page TIFF
    whose page N holds the N-th word."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default(size=72)
    words = IMAGE_WORDS if pages == 1 else IMAGE_WORDS[:pages]
    frames = []
    for lines in [words] if pages == 1 else [(w,) for w in words]:
        image = Image.new("RGB", (480, 40 + 120 * len(lines)), "white")
        for i, text in enumerate(lines):
            ImageDraw.Draw(image).text((30, 30 + 120 * i), text, fill="black", font=font)
        frames.append(image)
    frames[0].save(d / name, save_all=len(frames) > 1, append_images=frames[1:])
    if pages == 1:
        return Made(name, "image", {w.lower(): {"page": None} for w in words})
    return Made(name, "image", {w.lower(): {"page": i} for i, w in enumerate(words, 1)})


def write_all(d: Path, with_image: bool = True) -> list[Made]:
    d.mkdir(parents=True, exist_ok=True)
    made = [
        write_docx(d),
        write_odt(d),
        write_pptx(d),
        write_xlsx(d),
        write_csv(d),
        write_html(d),
        write_epub(d),
        write_notebook(d),
    ]
    if with_image:
        made.append(write_image(d))
    return made


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))
