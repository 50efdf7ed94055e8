"""Garbled lines inside good pages: a CJK title font without a usable Unicode map between correct
lines. The lines are dropped (or the page re-read), never indexed; real mixed-script text keeps
every character.

The PDFs are written by hand like tests/ingest/test_hard_pdfs.py's: good lines in a font pypdf
reads (a Type0 font under UniGB-UCS2-H, whose codes are Unicode), garbled lines in an Identity-H
font without ToUnicode, whose codes pypdf takes as code points.
"""

from __future__ import annotations

import io
import random
import unicodedata
from pathlib import Path

import pytest

from ingest.chunking import chunk_document
from ingest.loaders import LoadOptions, load
from ingest.loaders.linequality import _latin1_soup, check_lines, measure_line, page_scripts
from ingest.loaders.pdf import NOT_EMBEDDED
from ingest.loaders.textquality import REASON_CJK_IDENTITY
from tests.helpers import corpus
from tests.ingest.test_hard_pdfs import CJK_FONT, _descriptor, needs_cjk_font
from tests.ingest.test_loaders import REAL_TEXT

# The run the issue found between correct Chinese lines of an exam paper.
ISSUE_RUN = "̾Ɠ뻛ȗؘ뻜"
BODY = [
    "本页的暗号是白泽貔貅。向量数据库是一种专门用于存储和检索高维向量的数据库系统。",
    "在检索增强生成的应用中，文档首先被切分成较小的片段，然后通过嵌入模型转换为稠密向量。",
]
TITLES = [
    "2023年普通高等学校招生全国统一考试",
    "数学试卷（理科）",
    "高三期末考试语文试题",
    "第一部分 阅读理解",
]
MIXED_LINES = [
    "使用Qdrant向量数据库和Qwen3-Embedding模型，在GPU上运行llama.cpp推理。",
    "日本語のテキストです。カタカナとひらがなと漢字、ＧＰＵの設定。",
    "大韓民國은 民主共和國이다. 벡터 데이터베이스는 텍스트 임베딩을 저장합니다.",
    "设α∈(0,π/2)，sinα=3/5，求cos2α；f(x)=x²+2x，∑ᵢ λᵢ xᵢ ≤ ∫₀¹ g(t) dt。",
    "俄语的“谢谢”是спасибо，法语是merci；José说过他在Café见过Müller先生。",
    "def embed(text: str) -> list[float]:  # 返回向量",
    "拼音：北京（Běijīng），绿（lǜ），第三声ǎ、ě、ǐ。",
]
EXTRA_REAL = {
    "korean_rare_syllables": "똠방각하 햏자 이야기는 벡터 데이터베이스와 상관이 없습니다.",
    "japanese_nfd": "カ\u3099ギ（NFD）とｶﾞｷﾞ半角のカナ。",
    "emoji": "❤️ 1️⃣ 👍🏽 家族👨\u200d👩\u200d👧 ☕ 好的",
    "vietnamese_nfd": "Nguye\u0302\u0303n Thi\u0323 Minh Khai, Ha\u0300 No\u0323i",
    "cantonese": "佢哋去咗邊度㗎？冇問題，我哋聽日見。",
    "arabic_marks": "بِسْمِ اللَّهِ الرَّحْمَنِ الرَّحِيمِ و ٣ ٤",
    "hebrew_niqqud": "בְּרֵאשִׁית בָּרָא אֱלֹהִים",
    "math_vectors": "v⃗ = (1, 2), x̄ = 3, ŷ = ax + b, ∮ E·dl",
    "russian_short_words": "Я и ты в Москве, а он с ней у дома к вечеру о том",
    "english_with_russian": "The Russian word for and is и, for in is в.",
    "chinese_with_korean": "韩语“감사합니다”的意思是谢谢，“안녕하세요”是你好。",
}


def _wqy_glyph_ids(text: str) -> str:
    """What pypdf gives for ``text`` set in the installed CJK font by glyph id: the ids as code points."""
    from fontTools.ttLib import TTFont

    assert CJK_FONT is not None
    with TTFont(CJK_FONT[0], fontNumber=CJK_FONT[1], lazy=True) as font:
        order = {name: gid for gid, name in enumerate(font.getGlyphOrder())}
        cmap = font.getBestCmap()
        return "".join(chr(order[cmap[ord(ch)]]) for ch in text)


def _out_of_place(text: str) -> list[str]:
    """Characters a CJK font's glyph ids leave that real text of these pages never has."""
    page = page_scripts(text)
    bad = []
    for ch in text:
        cat = unicodedata.category(ch)
        script = unicodedata.name(ch, "?").split(" ")[0]
        junk = cat in ("Co", "Cn", "Cs") or (cat == "Cc" and ch not in "\n\t")
        stray = cat[0] == "M" and ch not in "\u3099\ufe0f\u0302\u0303\u0323\u0300"
        if junk or stray or (cat[0] == "L" and script in page.minor):
            bad.append(ch)
    return bad


# ----------------------------------------------------------------------------------------------
# the line check on text


def test_the_issues_run_is_dropped_from_a_chinese_page():
    text = "\n".join([ISSUE_RUN, *BODY])
    checked = check_lines(text)
    assert (checked.text, checked.dropped, checked.reason) == ("\n".join(BODY), 1, REASON_CJK_IDENTITY)


@needs_cjk_font
@pytest.mark.parametrize("title", TITLES)
def test_titles_in_glyph_ids_of_a_real_cjk_font_leave_nothing_out_of_place(title):
    garbage = _wqy_glyph_ids(title)
    checked = check_lines("\n".join([garbage, *BODY, f"2023年 {garbage}"]))
    assert checked.text == "\n".join(BODY), (garbage, checked)
    assert checked.dropped == 2


@pytest.mark.parametrize("name", sorted(REAL_TEXT) + sorted(EXTRA_REAL))
def test_real_text_in_any_script_keeps_every_line(name):
    text = {**REAL_TEXT, **EXTRA_REAL}[name]
    checked = check_lines(text)
    assert checked.dropped == 0
    if name != "symbol_font_bullets":
        assert checked.text == text.strip()


def test_a_legitimately_mixed_page_keeps_every_character():
    text = "\n".join(MIXED_LINES + BODY)
    assert check_lines(text).text == text


def test_stray_characters_of_kept_lines_are_taken_out():
    """Private-use bullets of a symbol font, a lone control or a stray mark are no text."""
    text = "\uf0b7 Fast search\n\uf0b7 Local models on one machine\n本页\x07的暗号是白泽貔貅。"
    assert check_lines(text).text == "Fast search\nLocal models on one machine\n本页的暗号是白泽貔貅。"
    assert check_lines(text).dropped == 0


def test_latin1_soup_lines_are_dropped_on_east_asian_pages_only():
    soup = "ÏòÁ¿Êý¾Ý"  # GBK bytes read as WinAnsi: too short for the page check
    assert check_lines("\n".join([soup, *BODY])).text == "\n".join(BODY)
    french = "Ça a été élu à Noël."
    assert check_lines("\n".join([soup, french, "The page is mostly English text, " * 4])).dropped == 0


def test_the_quick_paths_never_hide_a_garbled_line():
    """check_lines skips pages and lines that cannot hold a signal; measuring every line must agree."""
    rng = random.Random(11)
    pools = [
        "向量数据库检索高维 ",
        "abcdefXYZ 0123 ",
        "éüàÏòÁ¿",
        "α∈ℝ∑ᵢ",
        "спасибо ",
        "بِسْمِ",
        "\u0300\u0618\u20d7",
        "뻛뻜한국",
        "\ue000\x07",
        "ദᔕⶵ",
    ]
    for _ in range(1500):
        weights = [rng.random() ** 3 for _ in pools]
        lines = [
            "".join(rng.choice(rng.choices(pools, weights)[0]) for _ in range(rng.randint(0, 30)))
            for _ in range(rng.randint(1, 6))
        ]
        text = "\n".join(lines)
        page = page_scripts(text)
        kept = []
        for line in lines:
            if page.east_asian and _latin1_soup(line):
                continue
            measured = measure_line(line, page)
            if not measured.garbled:
                kept.append(measured.text)
        assert check_lines(text).text.strip() == "\n".join(kept).strip(), repr(text)


# ----------------------------------------------------------------------------------------------
# PDFs


def _ucs2(text: str) -> bytes:
    return b"<" + text.encode("utf-16-be").hex().upper().encode() + b">"


def _codes(text: str) -> bytes:
    return b"<" + "".join(f"{ord(ch):04X}" for ch in text).encode() + b">"


def _page(lines: list[tuple[str, bytes]], title_font: bytes | None = None) -> bytes:
    """One A4 page: ``(font, operand)`` lines, font "/F1" a Type0 font under UniGB-UCS2-H (pypdf
    and PDFium read it), "/F2" an Identity-H font without ToUnicode, not embedded unless
    ``title_font`` (a TrueType file keeping the original glyph ids) is given, "/F3" Helvetica."""
    pdf = corpus._RawPdf()
    pages = pdf.add(b"")
    good = pdf.add(
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UCS2-H /DescendantFonts [%d 0 R] >>"
        % pdf.add(
            b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light /CIDSystemInfo << /Registry (Adobe)"
            b" /Ordering (GB1) /Supplement 2 >> /FontDescriptor %d 0 R /DW 1000 >>"
            % _descriptor(pdf, b"STSong-Light", None)
        )
    )
    font_file = None
    if title_font is not None:
        font_file = pdf.add(
            b"<< /Length %d /Length1 %d >>\nstream\n" % (len(title_font), len(title_font))
            + title_font
            + b"\nendstream"
        )
    bad = pdf.add(
        b"<< /Type /Font /Subtype /Type0 /BaseFont /SimHei /Encoding /Identity-H /DescendantFonts [%d 0 R] >>"
        % pdf.add(
            b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SimHei /CIDSystemInfo << /Registry (Adobe)"
            b" /Ordering (Identity) /Supplement 0 >> /FontDescriptor %d 0 R /DW 1000 /CIDToGIDMap /Identity >>"
            % _descriptor(pdf, b"SimHei", font_file)
        )
    )
    helvetica = pdf.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    ops = [b"BT 14 TL 60 780 Td"] + [b"%s 12 Tf %s Tj T* T*" % (font, operand) for font, operand in lines]
    content = pdf.stream(b"\n".join([*ops, b"ET"]))
    page = pdf.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 %d 0 R /F2 %d 0 R"
        b" /F3 %d 0 R >> >> /Contents %d 0 R >>" % (pages, good, bad, helvetica, content)
    )
    pdf.set(pages, b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page)
    return pdf.render(pdf.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _indexed_text(doc) -> str:
    pieces = chunk_document(doc, lambda text: len(text.split()) + len(text) // 4, 60, 0, 60)
    return "\n".join(piece.text for piece in pieces)


def test_a_garbled_title_in_a_font_that_is_not_embedded_is_dropped_with_a_warning(tmp_path):
    lines = [(b"/F2", _codes(ISSUE_RUN)), *((b"/F1", _ucs2(line)) for line in BODY)]
    path = _write(tmp_path / "exam.pdf", _page(lines))
    doc = load(path)
    assert [s.page for s in doc.sections] == [1]
    assert _out_of_place(_indexed_text(doc)) == []
    assert doc.sections[0].text == "\n".join(BODY)  # PDFium reads the same garbage: the lines are dropped
    assert doc.warnings == [f"page 1: 1 unreadable line dropped ({REASON_CJK_IDENTITY}); {NOT_EMBEDDED}"]
    assert (doc.meta["pages_text"], doc.meta["pages_unreadable"]) == (1, [])


def test_a_legitimately_mixed_pdf_page_keeps_all_its_text(tmp_path):
    path = _write(tmp_path / "mixed.pdf", _page([(b"/F1", _ucs2(line)) for line in MIXED_LINES]))
    doc = load(path, LoadOptions(ocr="off"))
    assert doc.warnings == []
    assert [line for line in doc.sections[0].text.splitlines() if line.strip()] == MIXED_LINES


def _title_font(text: str) -> bytes:
    """The installed CJK font cut down to ``text``'s glyphs, keeping their original ids."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    assert CJK_FONT is not None
    options = subset.Options()
    options.layout_features, options.notdef_outline, options.retain_gids = [], True, True
    with TTFont(CJK_FONT[0], fontNumber=CJK_FONT[1]) as font:
        subsetter = subset.Subsetter(options)
        subsetter.populate(unicodes={ord(ch) for ch in text})
        subsetter.subset(font)
        del font["cmap"]
        out = io.BytesIO()
        font.save(out)
    return out.getvalue()


@pytest.mark.slow  # OCR's helper starts and reads a page: about 11 s on a 2-core CPU
@needs_cjk_font
def test_an_embedded_garbled_title_is_read_by_ocr_or_dropped_when_ocr_is_off(tmp_path):
    title = "期末考试麒麟卷"
    lines = [(b"/F2", _codes(_wqy_glyph_ids(title))), (b"/F3", b"(The canary is theta gecko.)")]
    path = _write(tmp_path / "title.pdf", _page(lines, _title_font(title)))

    doc = load(path, LoadOptions(ocr="off"))
    assert [s.text for s in doc.sections] == ["The canary is theta gecko."]
    assert doc.warnings == [f"page 1: 1 unreadable line dropped ({REASON_CJK_IDENTITY}); OCR off"]

    doc = load(path)
    assert doc.warnings == [] and doc.meta["pages_ocr"] == 1
    text = doc.sections[0].text
    assert "麒麟" in text and "theta gecko" in text, text
    assert _out_of_place(text) == []
