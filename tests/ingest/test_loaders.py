"""Loaders on real files: exact pages, heading paths and line ranges; every bad file has its reason."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from pypdf import PdfReader

from ingest.loaders import LOADERS, Document, LoadError, kind_for, load
from ingest.loaders.code import CODE_LANGUAGES
from ingest.loaders.pdf import NOT_EMBEDDED
from ingest.loaders.textquality import (
    REASON_CJK_IDENTITY,
    REASON_LEGACY_BYTES,
    REASON_PRIVATE_USE,
    assess,
    unreadable_reason,
)
from ingest.records import Section
from tests.helpers import corpus


def _file_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def assert_section_is_file_lines(section: Section, lines: list[str]) -> None:
    """A section's text is exactly the file's lines line_start..line_end."""
    assert section.line_start is not None and section.line_end is not None
    assert "\n".join(lines[section.line_start - 1 : section.line_end]) == section.text


# ----------------------------------------------------------------------------------------------
# PDF


def test_pdf_one_section_per_page_with_physical_page_numbers(tmp_path):
    facts = corpus.write_pdf(tmp_path)
    doc = load(facts.path)

    assert doc.kind == "pdf"
    assert [s.page for s in doc.sections] == [1, 2, 3, 5]
    for phrase, page in facts.canaries.items():
        holders = [s.page for s in doc.sections if phrase in s.text]
        assert holders == [page], phrase
    assert doc.warnings == ["page 4: no text layer; OCR found no text"]
    assert doc.meta == {
        "pages": 5,
        "title": corpus.PDF_TITLE,
        "author": "kb tests",
        "pages_text": 4,
        "pages_fallback": 0,
        "pages_ocr": 0,
        "pages_unreadable": [4],
    }


def test_pdf_chinese_page_from_reportlab_cid_font_is_extracted_exactly(tmp_path):
    facts = corpus.write_pdf(tmp_path)
    page = next(s for s in load(facts.path).sections if s.page == corpus.CHINESE_PAGE)
    assert page.text.split("\n") == corpus.CHINESE_LINES
    assert unreadable_reason(page.text) is None


def test_owner_password_only_pdf_opens(tmp_path):
    facts = corpus.write_owner_only_pdf(tmp_path)
    assert PdfReader(facts.path).is_encrypted
    doc = load(facts.path)
    assert [s.page for s in doc.sections] == [1, 2, 3, 5]
    assert all(any(p in s.text for s in doc.sections if s.page == pg) for p, pg in facts.canaries.items())


def test_user_password_pdf_is_refused(tmp_path):
    path = corpus.write_encrypted_pdf(tmp_path)
    with pytest.raises(LoadError) as err:
        load(path)
    assert str(err.value) == "encrypted (user password)"
    assert err.value.reason == "encrypted (user password)"


@pytest.mark.parametrize("keep", [0.2, 0.6, 0.9])
def test_truncated_pdf_is_refused_with_reason(tmp_path, keep):
    path = corpus.write_truncated_pdf(tmp_path, keep=keep)
    with pytest.raises(LoadError) as err:
        load(path)
    assert str(err.value).startswith("truncated or damaged PDF (no %EOF marker): ")


def test_garbage_text_pages_are_reported_not_indexed(tmp_path):
    facts = corpus.write_mojibake_pdf(tmp_path)
    doc = load(facts.path)
    assert [s.page for s in doc.sections] == [1]
    assert corpus.MOJIBAKE_CANARY in doc.sections[0].text
    # the fonts are not embedded: a rendering shows substitute glyphs, so OCR is not even tried
    assert doc.warnings == [
        f"page 2: unreadable text ({REASON_CJK_IDENTITY}); {NOT_EMBEDDED}",
        f"page 3: unreadable text ({REASON_LEGACY_BYTES}); {NOT_EMBEDDED}",
        f"page 4: unreadable text ({REASON_CJK_IDENTITY}); {NOT_EMBEDDED}",
    ]
    assert doc.meta["pages_unreadable"] == [2, 3, 4]


def test_pdf_without_any_text_is_a_load_error_naming_the_pages(tmp_path):
    path = corpus.write_scanned_pdf(tmp_path, pages=2)
    with pytest.raises(LoadError) as err:
        load(path)
    assert str(err.value) == (
        "no indexable text: page 1: no text layer; OCR found no text; page 2: no text layer; OCR found no text"
    )


def test_not_a_pdf_under_pdf_suffix(tmp_path):
    path = tmp_path / "fake.pdf"
    path.write_text("just some text, no PDF header\n")
    with pytest.raises(LoadError, match=r"^truncated or damaged PDF"):
        load(path)


# ----------------------------------------------------------------------------------------------
# Markdown


def test_markdown_sections_heading_paths_and_lines(tmp_path):
    facts = corpus.write_markdown(tmp_path)
    doc = load(facts.path)
    lines = _file_lines(facts.path)

    assert doc.kind == "markdown"
    assert [(s.heading_path, s.line_start, s.line_end) for s in doc.sections] == facts.sections
    for section in doc.sections:
        assert_section_is_file_lines(section, lines)
    for phrase, path in facts.canaries.items():
        assert [s.heading_path for s in doc.sections if phrase in s.text] == [path], phrase


def test_markdown_front_matter_is_meta_not_text(tmp_path):
    facts = corpus.write_markdown(tmp_path)
    doc = load(facts.path)
    assert doc.meta["front_matter"] == facts.front_matter
    assert doc.meta["title"] == "Knowledge Base Guide"
    assert not any("tags:" in s.text or "title:" in s.text for s in doc.sections)
    assert doc.sections[0].line_start == 6  # the line after the closing ---


def test_markdown_hash_line_in_fence_is_not_a_heading(tmp_path):
    facts = corpus.write_markdown(tmp_path)
    doc = load(facts.path)
    gpu = next(s for s in doc.sections if s.heading_path == ("Guide", "Install", "GPU"))
    first, last = facts.fence_lines
    assert gpu.line_start < first and gpu.line_end == last
    assert "# this comment is not a heading" in gpu.text
    assert not any("this comment" in t for s in doc.sections for t in s.heading_path)


def test_markdown_thematic_break_at_top_is_not_front_matter(tmp_path):
    path = corpus.write_text(tmp_path, "rule.md", "---\n\nText after a rule.\n\n# Title\n\nBody.\n")
    doc = load(path)
    assert doc.meta == {"encoding": "utf-8"}
    assert [(s.heading_path, s.line_start, s.line_end) for s in doc.sections] == [
        ((), 1, 3),
        (("Title",), 5, 7),
    ]


def test_markdown_invalid_front_matter_is_a_warning_and_still_not_indexed(tmp_path):
    path = corpus.write_text(tmp_path, "bad.md", "---\ntitle: [unclosed\n---\n# Head\n\nBody text.\n")
    doc = load(path)
    assert "front_matter" not in doc.meta
    assert len(doc.warnings) == 1 and doc.warnings[0].startswith("front matter: invalid YAML")
    assert [(s.heading_path, s.line_start, s.text) for s in doc.sections] == [
        (("Head",), 4, "# Head\n\nBody text.")
    ]


def test_markdown_heading_text_is_plain_and_levels_may_skip(tmp_path):
    text = "# The *kb* `tool`\n\n### [Deep](http://x) link\n\ntext\n\n## Back up\n\nmore\n"
    doc = load(corpus.write_text(tmp_path, "h.md", text))
    assert [s.heading_path for s in doc.sections] == [
        ("The kb tool",),
        ("The kb tool", "Deep link"),
        ("The kb tool", "Back up"),
    ]


def test_markdown_front_matter_only_is_a_load_error(tmp_path):
    path = corpus.write_text(tmp_path, "fm.md", "---\ntitle: Only\n---\n\n")
    with pytest.raises(LoadError, match=r"^no text \(front matter only\)$"):
        load(path)


# ----------------------------------------------------------------------------------------------
# Code and text


@pytest.mark.parametrize("suffix", [".py", ".ts", ".go", ".rs", ".java"])
def test_code_file_is_one_section_with_its_language(tmp_path, suffix):
    facts = corpus.write_code(tmp_path, suffix)
    doc = load(facts.path)
    assert (doc.kind, doc.language) == ("code", facts.language)
    [section] = doc.sections
    assert (section.line_start, section.line_end) == (1, facts.n_lines)
    assert_section_is_file_lines(section, _file_lines(facts.path))
    lines = _file_lines(facts.path)
    for name, (first, last) in facts.functions.items():
        assert name in lines[first - 1] and lines[last - 1].strip() in ("}", "return total", "total")


def test_registry_covers_at_least_fifteen_languages_and_the_usual_suffixes():
    from langchain_text_splitters import Language

    required = ["py", "js", "jsx", "ts", "tsx", "go", "rs", "java", "kt", "c", "h", "cpp", "hpp", "cs", "rb"]
    required += ["php", "scala", "swift", "lua", "sh"]
    assert all(LOADERS[f".{s}"].kind == "code" for s in required)
    assert LOADERS[".html"].kind == "html" and CODE_LANGUAGES[".html"] == "html"  # a page; a fence language
    languages = set(CODE_LANGUAGES.values())
    with_splitter = {name for name in languages if name in {lang.value for lang in Language}}
    assert len(with_splitter) >= 15
    assert ".md" not in CODE_LANGUAGES


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("a.pdf", "pdf"),
        ("a.PDF", "pdf"),
        ("a.md", "markdown"),
        ("a.py", "code"),
        ("a.tsx", "code"),
        ("a.txt", "text"),
        ("a.json", "text"),
        ("a.log", "text"),
        ("Makefile", "text"),
        ("a.weird", "text"),
        ("a.png", "image"),
        ("a.zip", None),
        ("a.docx", "word"),
        ("a.odt", "word"),
        ("a.ods", None),
        ("a.doc", None),
        ("a.csv", "sheet"),
        ("a.ipynb", "notebook"),
        ("a.htm", "html"),
    ],
)
def test_kind_for(name, kind):
    assert kind_for(Path(name)) == kind


def test_latin1_text_is_decoded_not_dropped(tmp_path):
    path, text = corpus.write_latin1_text(tmp_path)
    doc = load(path)
    assert doc.kind == "text"
    assert doc.meta["encoding"] in ("cp1252", "latin_1")
    [section] = doc.sections
    assert section.text == text.strip()
    assert (section.line_start, section.line_end) == (1, text.count("\n"))


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        ("gbk", "向量数据库把文本嵌入存储为稠密向量。检索时计算查询与文档之间的相似度。\n" * 3),
        ("shift_jis", "日本語のテキストです。これは検索システムのテスト文章です。\n" * 3),
        ("utf-16", "UTF-16 with a byte-order mark: naïve café, 中文.\n"),
        ("utf-8-sig", "UTF-8 with a byte-order mark.\n"),
    ],
)
def test_other_encodings_are_detected(tmp_path, encoding, text):
    path = tmp_path / "enc.txt"
    path.write_bytes(text.encode(encoding))
    assert load(path).sections[0].text == text.strip()


def test_unknown_suffix_falls_back_to_text_with_line_ranges(tmp_path):
    path = corpus.write_text(tmp_path, "notes.weird", "\n\nfirst line\r\nsecond line\r\n\r\n")
    doc = load(path)
    assert doc.kind == "text"
    assert [(s.text, s.line_start, s.line_end) for s in doc.sections] == [("first line\nsecond line", 3, 4)]


def test_binary_renamed_md_is_refused(tmp_path):
    with pytest.raises(LoadError, match=r"^binary file$"):
        load(corpus.write_binary_as_markdown(tmp_path))


def test_binary_without_nul_bytes_is_refused(tmp_path):
    path = tmp_path / "blob.dat"
    path.write_bytes(bytes(range(1, 256)) * 16)
    with pytest.raises(LoadError, match=r"^binary file$"):
        load(path)


@pytest.mark.parametrize("name", ["empty.txt", "empty.md", "empty.pdf", "empty.py"])
def test_empty_file_is_refused(tmp_path, name):
    with pytest.raises(LoadError, match=r"^empty file$"):
        load(corpus.write_empty(tmp_path, name))


def test_whitespace_only_file_is_refused(tmp_path):
    with pytest.raises(LoadError, match=r"^no text \(whitespace only\)$"):
        load(corpus.write_text(tmp_path, "blank.txt", "\n   \n\t\n"))


def test_unsupported_suffix_is_refused_unread(tmp_path):
    path = tmp_path / "photo.gif"  # never created: the suffix alone decides
    with pytest.raises(LoadError, match=r"^unsupported file type \(\.gif\)$"):
        load(path)


def test_missing_file_is_a_load_error(tmp_path):
    with pytest.raises(LoadError, match=r"^cannot read: "):
        load(tmp_path / "gone.txt")


def test_documents_and_errors_cross_process_boundaries(tmp_path):
    doc = load(corpus.write_markdown(tmp_path).path)
    assert isinstance(pickle.loads(pickle.dumps(doc)), Document)
    assert pickle.loads(pickle.dumps(doc)) == doc
    err = pickle.loads(pickle.dumps(LoadError("binary file")))
    assert isinstance(err, LoadError) and err.reason == "binary file"


def test_corpus_bad_files_all_fail_with_their_reasons(tmp_path):
    c = corpus.write_corpus(tmp_path)
    for rel, reason in c.bad.items():
        with pytest.raises(LoadError) as err:
            load(c.root / rel)
        assert reason in str(err.value), rel
    for path in [c.pdf.path, c.markdown.path, c.latin1[0], *(f.path for f in c.code.values())]:
        assert load(path).sections


# ----------------------------------------------------------------------------------------------
# Text quality: garbage from fonts without ToUnicode vs real text in many scripts

REAL_TEXT = {
    "english": "The quick brown fox jumps over the lazy dog. Retrieval-augmented generation stores dense "
    "vectors “of chunks” — and retrieves them… © 2024 ACME™",
    "chinese": corpus.MOJIBAKE_SOURCE,
    "chinese_english": "使用Qdrant向量数据库和Qwen3-Embedding模型，在GPU上运行llama.cpp推理。支持PDF、Markdown和Python代码。",
    "japanese": "日本語のテキストです。これは検索システムのテスト文章で、PythonとAPIを使ってＡＰＩサーバーに"
    "リクエストを送ります。カタカナとひらがなと漢字。",
    "japanese_fullwidth": "第３章　ＧＰＵの設定（ｎｖｉｄｉａ－ｓｍｉ）と　CUDA 12.4 のインストール手順",
    "korean": "벡터 데이터베이스는 텍스트 임베딩을 저장합니다. Qdrant와 Python을 사용하여 검색 시스템을 만듭니다.",
    "russian": "Съешь же ещё этих мягких французских булок, да выпей чаю. Используйте API-запрос к серверу.",
    "greek": "Ξεσκεπάζω την ψυχοφθόρα βδελυγμία. Η συνάρτηση σ(x) = 1/(1+e^−x) και το μm.",
    "french": "Ça coûte cher: l’été dernier, à Noël, j’ai mangé une crème brûlée près de la forêt où naïve "
    "Zoë s’était égarée. Où êtes-vous?",
    "german": "Grüße aus Köln! Die Straße ist schön, die Bäume sind grün, und Übermorgen fahren wir nach München.",
    "portuguese": "Ação, coração, não, mãos, órgãos: a informação está à disposição da população. Português é ótimo.",
    "icelandic": "Þjóðin á þúsundir ára sögu. Ég hlakka til að sjá þig á Íslandi í sumar, þá verður gaman.",
    "czech": "Příliš žluťoučký kůň úpěl ďábelské ódy. Čeština je krásný jazyk se spoustou háčků a čárek.",
    "polish": "Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig. Źdźbło trawy.",
    "romanian": "Bucureștiul este capitala României. Țara are munți frumoși și o istorie îndelungată.",
    "vietnamese": "Người dân ở đây rất thân thiện, họ thường uống cà phê sữa đá vào buổi sáng.",
    "hungarian": "Árvíztűrő tükörfúrógép. Öt szép szűz lány őrült írót nyúz. Ütött-kopott.",
    "arabic": "مرحبا بكم في قاعدة المعرفة. هذا نص عربي للاختبار مع كلمة Python في الوسط.",
    "hebrew": "שלום עולם, זהו טקסט בעברית לבדיקה עם המילה Qdrant באמצע.",
    "hindi": "यह हिन्दी में लिखा गया एक परीक्षण वाक्य है। खोज प्रणाली वेक्टर का उपयोग करती है।",
    "thai": "ภาษาไทยเป็นภาษาที่ไม่มีการเว้นวรรคระหว่างคำ ระบบค้นหาใช้เวกเตอร์",
    "serbian_both_scripts": "Srpski se piše ćirilicom i latinicom: Београд / Beograd, Ниш / Niš, Нови Сад / Novi Sad.",
    "ipa": "English /ˈɪŋɡlɪʃ/ is pronounced [ðə kwɪk braʊn fɒks] in received pronunciation.",
    "math": "Let α, β ∈ ℝ and f: ℝⁿ → ℝ with ∇f(x) = 0. Then ∑ᵢ λᵢ xᵢ ≤ ∫₀¹ g(t) dt ≈ π²/6 for µm-scale Ωs.",
    "python": 'def compute_checksum(data: bytes) -> str:\n    """Return the SHA-256 of data."""\n'
    "    return hashlib.sha256(data).hexdigest()  # é ü 中文\n",
    "javascript": "const f = (a, b) => { return a?.b ?? [1,2,3].map((x) => x * 2); }; // ✓ done",
    "table": "Year Revenue Cost\n2021 1,234.56 789.01\n2022 2,345.67 890.12\n£5 £10 €20 ¥30 ±0.5 ×2 ÷3 25°C",
    "symbol_font_bullets": "\uf0b7 Fast search\n\uf0b7 Local models\n\uf0b7 Private by default\n\uf0a7 No cloud",
    "emoji": "Great job 🎉🎉 thanks 🙏 see you 👋 at the café ☕ tomorrow 😀",
    "hash_and_url": "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 https://example.com/a?b=c",
    "names": "Åsa Öberg, Željko Đorđević, Søren Kierkegaard, Nguyễn Thị Minh Khai, François Müller, José Núñez",
}

# What pypdf 7.1.0 extracted from CJK text set in fonts without ToUnicode (see corpus.write_mojibake_pdf).
PYPDF_MOJIBAKE = {
    # GBK bytes shown through a WinAnsi TrueType font
    "gbk_as_winansi": "ÏòÁ¿Êý¾Ý¿â°ÑÎÄ±¾Ç¶Èë´æ´¢Îª³íÃÜÏòÁ¿£¬¼ìË÷Ê±¼ÆËã²éÑ¯",
    # the same font with no /Encoding (StandardEncoding)
    "gbk_as_standard": "ˇò`¿˚ý¾Ý¿â°Ñ˛˜–¾˙¶¨º·æ·¢˛“‡íˆÜˇò`¿£‹…ì¸÷˚–…˘¸ª†ØÑﬂ",
    "big5_as_winansi": "¨Ï¥ÎªÌ´£¥X°ÝÃD®É¡A¨t²Î¥ý§â°ÝÃD½s½X¦¨¦P¤@ªÅ¶¡¤¤ªº¦V¶q¡C",
    "shift_jis_as_winansi": "“ú–{Œê‚ÌƒeƒLƒXƒg‚Å‚·\x81B‚±‚ê‚ÍŒŸ\x8dõƒVƒXƒeƒ€‚ÌƒeƒXƒg‚Ì",
    "euc_kr_as_winansi": "º¤ÅÍ µ¥ÀÌÅÍº£ÀÌ½º´Â ÅØ½ºÆ® ÀÓº£µùÀ» ÀúÀåÇÕ´Ï´Ù.",
    # Identity-H glyph ids taken as code points
    "identity_small_ids": "ĖҐ\x84ȍôϹΛϊԹ̌ưÃϪ=̡\u0379ӟ\x07ΓȤǗҽÔʍA07Եї\x15\n̏ƾͣ>лǉ\u0383ϺѯǠˆǛխǃΰɔ/͗ѶԦÏſԋɢúʬЄͣВ՟",
    "identity_subset_ids": "\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x01\x02\x14"
    "\x03\x04\x05\x15\x16\x17\x18\x10\x11\x19\x1a\x1b\x1c\x14\x1d\x0b\x1e\x1f !\"#$%&\x1c'(\x14)*\x1f+,-./01234567",
    "identity_gb1_ids": "ไࢻႊᢼճعḯᔍ۫ྛᚎ׃ᐤ\u0ac6ԛڨᇈᅉؤ\u0b9bۏᖊᅽ\u05ccṝᘀߞଌ᠖\u17fbᚏעᙟᚤ႙վૻեᖸࠪബᅑࢅᔵެᘬ\u0dc7ᗕḅᦺ",
    "identity_japan1_ids": "ᙲ․⟑\u1f58\u197cᖇሾ㔯ෙ⼔㑀ᇷޕ✛ᖏ⏴∇㩚ᡓㄇἑᓅ⥑܇০⌛ᴚ೦㋌ᠼఒ↣ᵕӚⴜݏ㍆☏✄㓘㩟㚷ᙬ\u181c⻗ᣁ⡢∡❵㕘",
    "symbol_font_only": "\uf06c\uf06d\uf06e\uf06f\uf070\uf071\uf072\uf073\uf074\uf075\uf076\uf077\uf078",
}


@pytest.mark.parametrize("name", sorted(REAL_TEXT))
def test_real_text_is_readable(name):
    quality = assess(REAL_TEXT[name])
    assert quality.reason is None, quality


@pytest.mark.parametrize("name", sorted(PYPDF_MOJIBAKE))
def test_pypdf_mojibake_is_unreadable(name):
    assert unreadable_reason(PYPDF_MOJIBAKE[name]) is not None, assess(PYPDF_MOJIBAKE[name])


def test_mojibake_reasons_name_the_cause():
    assert unreadable_reason(PYPDF_MOJIBAKE["gbk_as_winansi"]) == REASON_LEGACY_BYTES
    assert unreadable_reason(PYPDF_MOJIBAKE["identity_gb1_ids"]) == REASON_CJK_IDENTITY
    assert unreadable_reason(PYPDF_MOJIBAKE["identity_subset_ids"]) == REASON_CJK_IDENTITY
    assert unreadable_reason(PYPDF_MOJIBAKE["symbol_font_only"]) == REASON_PRIVATE_USE


def test_live_pypdf_extraction_of_fonts_without_tounicode_is_unreadable(tmp_path):
    facts = corpus.write_mojibake_pdf(tmp_path)
    reader = PdfReader(facts.path)
    texts = [page.extract_text() for page in reader.pages]
    assert unreadable_reason(texts[0]) is None
    for page in facts.unreadable_pages:
        assert texts[page - 1].strip() and unreadable_reason(texts[page - 1]) is not None, texts[page - 1]


def test_unreadable_reason_agrees_with_assess():
    # unreadable_reason skips measuring printable ASCII; control characters still go to assess
    samples = [
        *REAL_TEXT.values(),
        *PYPDF_MOJIBAKE.values(),
        "\x01\x02\x03\x04\x05\x06 and a few words",
        "a\x1cb" * 9,
    ]
    for text in samples:
        assert unreadable_reason(text) == assess(text).reason, text
    assert unreadable_reason("\x01\x02\x03\x04\x05\x06\x07\x08\x0e\x0f\x10\x11\x12") == REASON_CJK_IDENTITY


def test_the_quick_readable_proof_never_hides_a_verdict():
    """unreadable_reason's shortcut (ASCII letters, harmless punctuation, a few Latin letters) must
    return what the full measurement returns, on texts drawn near every threshold."""
    import random

    rng = random.Random(7)
    pools = [
        "abcdefghij KLMNOP ",
        "“”‘’—–…•€™ ",
        "éèàçöüßñÉÀ",
        "ÏòÁ¿Êý¾Ýâ",
        "ĖҐȍôϹΛϊԹ",
        "\ue000\ue001",
        "\x01\x02\ufffd",
        "中文数据库 ",
    ]
    shortcut = 0
    for _ in range(3000):
        weights = [rng.random() ** 3 for _ in pools]
        text = "".join(rng.choice(rng.choices(pools, weights)[0]) for _ in range(rng.randint(0, 300)))
        assert unreadable_reason(text) == assess(text).reason, repr(text)
        shortcut += assess(text).reason is None
    assert shortcut > 300  # the draw reaches both verdicts


def test_too_little_text_is_never_judged():
    assert unreadable_reason("ÏòÁ¿Êý") is None  # 6 characters: no evidence either way
    assert unreadable_reason("") is None
    assert unreadable_reason("Ação é Ótima") is None


def test_each_signal_on_its_own():
    assert assess("\x01\x02\x03 normal words here and there, quite a lot of them").junk_share > 0
    assert (
        assess("abc \ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd\ufffd def").reason == REASON_CJK_IDENTITY
    )
    soup = "ÏòÁ¿Êý¾Ý¿â°ÑÎÄ±¾"
    assert assess(soup * 2).reason == REASON_LEGACY_BYTES
    assert assess(soup + " plain english words are here and they are many words").reason is None
    assert assess("ΑбΓдΕжΖиΗкΘлΙмΚн").script_switch_share == 1.0
    assert assess("ΑбΓдΕжΖиΗкΘлΙмΚн").reason == REASON_CJK_IDENTITY
