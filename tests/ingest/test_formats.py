"""Office, web, e-book, image and notebook files made with each format's own library: loaded with
the right structure, ingested, and each canary found by search with its locator right."""

from __future__ import annotations

import itertools

import pytest

from ingest.chunking import chunk_document
from ingest.loaders import LoadError, LoadOptions, kind_for, load
from ingest.pipeline import ChunkSettings, ingest_folder
from ingest.store import make_store
from kb.contract import SearchHit, locator_label
from kb.search.query import SearchRequest, search
from tests.helpers import formats, hostile


def _words(text: str) -> int:
    return len(text.split())


# ----------------------------------------------------------------------------------------------
# loaders


def test_docx_heading_path_table_rows_and_no_comments_or_deletions(tmp_path):
    made = formats.write_docx(tmp_path)
    doc = load(tmp_path / made.name)
    assert [s.heading_path for s in doc.sections] == [
        ("Otter Habitats",),
        ("Otter Habitats", "Rivers"),
        ("Otter Habitats", "Lakes"),
    ]
    rivers = doc.sections[1].text.split("\n")
    assert rivers[-3:] == ["river | otters", "Thames | 12", f"{formats.WORD_TABLE_CANARY} | 7"]
    text = "\n".join(s.text for s in doc.sections)
    assert formats.WORD_COMMENT not in text and formats.WORD_DELETED not in text
    assert doc.meta["title"] == "Otter report"


def test_odt_heading_path_table_rows_and_no_annotations_notes_or_tracked_changes(tmp_path):
    made = formats.write_odt(tmp_path)
    doc = load(tmp_path / made.name)
    assert doc.kind == "word" and doc.meta["title"] == "Field notes"
    assert [s.heading_path for s in doc.sections] == [
        ("Beaver Dams",),
        ("Beaver Dams", "Streams"),
        ("Beaver Dams", "Ponds"),
    ]
    assert doc.sections[1].text.split("\n") == [
        "Streams",
        f"The {formats.ODT_CANARY} beaver prefers  small streams. Dams slow the water.",
        "stream | dams",
        "Kennet | 4",
        f"{formats.ODT_TABLE_CANARY} | 9",
    ]
    text = "\n".join(s.text for s in doc.sections)
    for word in made.absent:
        assert word not in text, word


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (hostile.write_entity_bomb_odt, "XML entity declarations in 'content.xml'"),
        (hostile.write_encrypted_odt, "password-protected OpenDocument file"),
    ],
)
def test_hostile_odt_is_refused_with_its_reason(tmp_path, write, reason):
    name = write(tmp_path)
    with pytest.raises(LoadError, match=reason):
        load(tmp_path / name)


def test_pptx_one_section_per_slide_with_marked_notes(tmp_path):
    made = formats.write_pptx(tmp_path)
    doc = load(tmp_path / made.name)
    assert [s.locator for s in doc.sections] == [{"slide": n} for n in range(1, 5)]
    assert doc.sections[2].heading_path == ("Slide title 3",)
    assert doc.sections[3].text.split("\n")[-2:] == ["Speaker notes:", f"Say {formats.NOTES_CANARY} here."]
    assert "Speaker notes:" not in doc.sections[2].text


def test_xlsx_rows_with_sheet_locator_header_and_cached_formula_values(tmp_path):
    made = formats.write_xlsx(tmp_path)
    doc = load(tmp_path / made.name)
    q3 = [s for s in doc.sections if s.locator.get("sheet") == formats.SHEET_NAME]
    assert len(q3) == formats.SHEET_ROWS  # rows 2..SHEET_ROWS and the formula row
    assert all(s.header == "region | species | count" for s in q3)
    holder = next(s for s in q3 if formats.SHEET_CANARY in s.text)
    assert holder.locator == {"sheet": "Q3", "rows": [formats.SHEET_CANARY_ROW] * 2}
    assert q3[-1].text == str(formats.SHEET_FORMULA_VALUE)


def test_sheet_chunks_repeat_the_header_and_tile_the_rows(tmp_path):
    made = formats.write_xlsx(tmp_path)
    doc = load(tmp_path / made.name)
    chunks = [c for c in chunk_document(doc, _words, 40, 8, 80) if c.locator.get("sheet") == "Q3"]
    assert len(chunks) > 10
    assert all(c.text.startswith("region | species | count\n") and _words(c.text) <= 40 for c in chunks)
    ranges = [c.locator["rows"] for c in chunks]
    assert ranges[0][0] == 2 and ranges[-1][1] == formats.SHEET_ROWS + 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(ranges))
    for c in chunks:  # the rows a chunk names are the rows it holds
        first, last = c.locator["rows"]
        body = c.text.split("\n")[1:]
        assert len(body) == last - first + 1
        assert body[0].startswith(f"region{first - 1} |") or first == formats.SHEET_ROWS + 1


def test_csv_and_tsv_are_rows_not_text(tmp_path):
    made = formats.write_csv(tmp_path)
    doc = load(tmp_path / made.name)
    assert doc.kind == "sheet" and kind_for(tmp_path / "x.tsv") == "sheet"
    holder = next(s for s in doc.sections if formats.CSV_CANARY in s.text)
    assert holder.locator == {"rows": [120, 120]} and holder.header == "bird | wingspan | note"
    assert holder.text == f"bird120 | 120 | {formats.CSV_CANARY}"
    (tmp_path / "t.tsv").write_text("a\tb\n1\t2\n", encoding="utf-8")
    assert load(tmp_path / "t.tsv").sections[0].text == "1 | 2"


def test_sheet_row_cap_bounds_a_long_file_and_says_so(tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("n,v\n" + "".join(f"{i},x\n" for i in range(1000)), encoding="utf-8")
    doc = load(path, LoadOptions(sheet_max_rows=100))
    assert len(doc.sections) == 99 and doc.sections[-1].locator == {"rows": [100, 100]}
    assert doc.warnings == ["rows after 100 not indexed"]


def test_html_main_content_headings_and_link_text_without_boilerplate(tmp_path):
    made = formats.write_html(tmp_path)
    doc = load(tmp_path / made.name)
    assert doc.kind == "html" and doc.meta["title"] == "Otter page"
    text = "\n".join(s.text for s in doc.sections)
    assert formats.HTML_BOILERPLATE not in text and "https://example.org" not in text
    diet = next(s for s in doc.sections if formats.HTML_CANARY in s.text)
    assert diet.heading_path == ("Otters", "Diet") and f"the {formats.HTML_LINK_CANARY} study" in diet.text
    assert diet.line_start is None


def test_html_fragment_too_small_for_extraction_keeps_its_text(tmp_path):
    (tmp_path / "tiny.htm").write_text("<p>only a <b>kestrel</b> here</p>", encoding="utf-8")
    assert [s.text for s in load(tmp_path / "tiny.htm").sections] == ["only a kestrel here"]


def test_epub_chapters_in_spine_order_with_heading_paths(tmp_path):
    made = formats.write_epub(tmp_path)
    doc = load(tmp_path / made.name)
    assert [s.locator["chapter"] for s in doc.sections] == [1, 1, 2, 2, 3, 3]
    holder = next(s for s in doc.sections if formats.EPUB_CANARY in s.text)
    assert holder.heading_path == ("Chapter 2", "Part A") and holder.locator == {"chapter": 2}


def test_notebook_cells_numbered_outputs_dropped(tmp_path):
    made = formats.write_notebook(tmp_path)
    doc = load(tmp_path / made.name)
    assert [s.locator["cells"] for s in doc.sections] == [[n, n] for n in range(1, 5)]
    code = doc.sections[3]
    assert code.text.startswith("```python\n") and formats.NOTEBOOK_CODE_CANARY in code.text
    assert code.heading_path == ("Analysis", "Counting")
    assert all(formats.NOTEBOOK_OUTPUT not in s.text for s in doc.sections) and doc.warnings == []


def test_multipage_tiff_pages_are_ocr_pages(tmp_path):
    made = formats.write_image(tmp_path, "scan.tiff", pages=2)
    doc = load(tmp_path / made.name, LoadOptions(ocr="auto", ocr_page_timeout_s=120))
    assert [(s.page, s.text) for s in doc.sections] == [(1, "WOMBAT"), (2, "KESTREL")]
    assert all(s.meta == {"ocr": True} for s in doc.sections)
    with pytest.raises(LoadError, match="OCR is off"):
        load(tmp_path / made.name, LoadOptions(ocr="off"))


@pytest.mark.parametrize(
    ("locator", "label"),
    [
        ({"slide": 7}, "slide 7"),
        ({"sheet": "Q3", "rows": [120, 180]}, "Sheet 'Q3', rows 120–180"),
        ({"rows": [5, 5]}, "row 5"),
        ({"chapter": 3}, "chapter 3"),
        ({"cells": [4, 6]}, "cells 4–6"),
        (None, ""),
    ],
)
def test_locator_labels(locator, label):
    assert locator_label(locator) == label
    hit = SearchHit.from_payload(
        "id", 1, 0.5, {"source": "a", "kind": "sheet", "text": "t", "locator": locator}
    )
    assert hit.to_json()["location"] == (locator or None)
    assert SearchHit.from_json(hit.to_json()) == hit
    if locator:
        assert hit.locator == label


# ----------------------------------------------------------------------------------------------
# ingest and search


@pytest.fixture()
def store(qwen3_settings, tmp_path):
    store = make_store(qwen3_settings.model_copy(update={"data_dir": tmp_path / "data"}))
    yield store
    store.close()


def test_every_format_ingested_and_each_canary_found_with_its_locator(qwen3_embedder, store, tmp_path):
    docs = tmp_path / "docs"
    made = formats.write_all(docs)
    report = ingest_folder(
        docs,
        qwen3_embedder,
        store,
        ChunkSettings(64, 8),
        source="docs",
        workers=1,
        load_options=LoadOptions(ocr="auto"),
    )
    assert sorted(report.indexed) == sorted(f"docs/{m.name}" for m in made) and not report.skipped
    assert report.warnings == []
    for m in made:
        for word, want in m.canaries.items():
            hits = search(SearchRequest(word, k=3, dense=False), qwen3_embedder, store).hits
            assert hits, f"{word} ({m.name}) not found"
            top = hits[0].to_json()
            assert (
                top["source"] == f"docs/{m.name}"
                and top["path"] == m.name
                and top["kind"] == m.kind
                and word in top["text"].lower()
            ), word
            if "location" in want:
                assert top["location"] == want["location"], word
            if "heading_path" in want:  # merged neighbours keep the deepest heading they share
                path = top["heading_path"]
                assert path and want["heading_path"][: len(path)] == path, word
            if "page" in want:
                assert top["page"] == want["page"] and top["ocr"], word
            if "row" in want:
                first, last = top["location"]["rows"]
                assert first <= want["row"] <= last and top["location"].get("sheet") == want.get("sheet")
                assert top["text"].count("\n") == last - first + 1  # the header, then the rows named
            if "cell" in want:
                first, last = top["location"]["cells"]
                assert first <= want["cell"] <= last, word
        for word in m.absent:
            assert search(SearchRequest(word, k=3, dense=False), qwen3_embedder, store).hits == [], word
