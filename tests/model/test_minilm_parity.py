"""A real BERT model through kb's engine: all-MiniLM-L6-v2 as GGUF equals sentence-transformers.

The GGUF is converted from the package's weights the way llama.cpp's converter does it (tests/minilm.py);
kb picks its recipe from the file (bare, mean pooling) and must reproduce the reference vectors,
the reference tokenization, and MiniLM's actual semantics.
"""

from __future__ import annotations

import numpy as np
import pytest

from ingest.model.embedder import make_embedder
from ingest.model.recipes import MEAN_BARE
from kb.settings import Settings
from tests.helpers.minilm import build_minilm_gguf, minilm_dir

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

MAX_TOKENS = 512  # the model's positions; sentence-transformers' own default cut is 256
F32_COS = 0.999
F16_COS = 0.999
# Packed vs one-at-a-time is not bit-identical on llama.cpp's CPU backend: another batch layout sums in
# another order (1 ulp), ggml's GELU goes through an FP16 lookup table that turns an ulp into an FP16 step,
# and flash attention (on by default) runs in F16. Measured: 1.2e-4 (2.5e-5 without flash attention),
# against 3.2e-4 between llama.cpp and torch themselves.
PACKED_ATOL = 2e-4
PACKED_COS = 1 - 1e-6

LONG_PARAGRAPH = (
    "The printing press, developed in the German city of Mainz around 1440 by Johannes Gutenberg, is often "
    "described as one of the most consequential inventions of the second millennium. Before it, books in "
    "Europe were copied by hand, usually by monks working in scriptoria, and a single Bible could take a "
    "skilled scribe more than a year to finish. Gutenberg combined several existing technologies in a new "
    "way: a screw press adapted from those used to make wine and olive oil, an oil-based ink that adhered "
    "well to metal, and, most importantly, a system of movable type cast from an alloy of lead, tin and "
    "antimony. Each letter was cast in a hand mould from a matrix, so that thousands of identical pieces "
    "could be produced quickly and arranged into lines, pages and whole books. Once a page had been "
    "printed, the type could be broken up and reused. The result was a dramatic fall in the cost of "
    "producing text. Within fifty years, presses were operating in more than two hundred and fifty cities, "
    "and historians estimate that some twenty million volumes had been printed by 1500. The consequences "
    "reached far beyond the book trade. Cheap pamphlets allowed Martin Luther's arguments to spread across "
    "the German lands in weeks rather than years, which helped turn a dispute among theologians into the "
    "Protestant Reformation. Scientists could share diagrams and tables without the errors that crept in "
    "with every hand copy, and standardised editions made it possible to build on the exact work of "
    "others. Vernacular languages gained fixed spellings as printers chose one form and reproduced it "
    "thousands of times. Governments issued printed laws and proclamations, merchants circulated price "
    "lists, and newspapers appeared in the early seventeenth century. Literacy rose slowly but steadily, "
    "since there was now far more to read and it cost far less to own. Not everyone welcomed the change: "
    "some scholars complained that the flood of books was confusing and that printers cared more about "
    "profit than accuracy, and authorities in many countries responded with licensing systems and "
    "censorship. Yet the basic design of Gutenberg's press remained in use, with only modest improvements, "
    "for roughly three hundred and fifty years, until steam power and rotary presses transformed printing "
    "once again during the industrial revolution of the nineteenth century."
)
CODE = '''def merge_sorted(a: list[int], b: list[int]) -> list[int]:
    """Merge two sorted lists in O(len(a) + len(b))."""
    i = j = 0
    out = []
    while i < len(a) and j < len(b):
        if a[i] <= b[j]:
            out.append(a[i]); i += 1
        else:
            out.append(b[j]); j += 1
    return out + a[i:] + b[j:]
'''
TEXTS = [
    "A",
    "The cat sat on the mat.",
    "What is the boiling point of water at sea level?",
    "Wait... really?! You paid $1,299.99 (plus 8.5% tax) for THAT -- on 2024-03-15, at 11:45pm?",
    "Invoice #A-1037: 3 x widgets @ 4.20 EUR = 12.60 EUR; due in 30 days; ref. PO-99812/B.",
    (
        "Mitochondria are membrane-bound organelles that generate most of the chemical energy needed to "
        "power the cell's biochemical reactions, storing it in adenosine triphosphate (ATP)."
    ),
    "  Leading and trailing whitespace,\ttabs\tand\nnewlines\n\nshould not matter much.  ",
    "Email me at jane.doe@example.com or visit https://example.org/docs?page=2&lang=en#setup.",
    CODE,
    LONG_PARAGRAPH,
]
# tokenization must equal the reference beyond plain English too
TOKEN_TEXTS = [
    *TEXTS,
    "Café naïve résumé Zürich façade coöperate",
    "ΕΛΛΗΝΙΚΆ Ελληνικά, Русский текст, العربية, ภาษาไทย",
    "日本語のテキストと漢字、中文文本。",
    "Full-width ＡＢＣ １２３ and emoji 🚀🦙 and symbols © ® ™ ° ± × ÷ € £ ¥",
    "“Curly quotes”, ‘single’, «guillemets», em—dash, en–dash, ellipsis…",
    "zero\u200bwidth space, soft\u00adhyphen, non\u00a0breaking",
    "Literal [SEP] and [MASK] are special tokens to both tokenizers; [cls] is not.",
]
# Where llama.cpp's WPM tokenizer (not the conversion) still differs from HF's BertTokenizer.
KNOWN_TOKENIZER_DIFFERENCES = {
    # HF maps a word of more than 100 characters to [UNK]; llama.cpp has no such limit
    "long word": "x" * 101,
    # llama.cpp strips every \p{M} mark; HF strips only Mn (nonspacing): the Devanagari vowel signs are Mc
    "spacing marks": "नमस्ते दुनिया",
    # llama.cpp's NFD keeps only the first code point: a Hangul syllable loses its vowel and final Jamo
    "hangul": "한국어 텍스트",
    # U+0085 (NEL) is whitespace to llama.cpp, a control character (deleted) to HF
    "next line": "veil\x85ed",
}
PAIRS = [
    (
        "How do plants turn sunlight into food?",
        (
            "Photosynthesis takes place in chloroplasts, where light energy is used to convert carbon dioxide "
            "and water into glucose and oxygen."
        ),
    ),
    (
        "Which programming language feature prevents null pointer errors?",
        (
            "Option types such as Rust's Option or Haskell's Maybe force the programmer to handle the absence "
            "of a value explicitly, so missing references are caught at compile time."
        ),
    ),
    (
        "What caused the fall of the Roman Empire in the west?",
        (
            "Historians cite economic decline, overreliance on mercenaries, political instability and invasions "
            "by Germanic tribes as reasons the western half of the empire collapsed in 476 AD."
        ),
    ),
    (
        "best way to store fresh basil",
        (
            "Trim the stems of the herb and keep them in a glass of water at room temperature, loosely covered, "
            "rather than in the refrigerator where the leaves turn black."
        ),
    ),
    (
        "symptoms of dehydration in adults",
        (
            "Thirst, dark yellow urine, dizziness, tiredness and a dry mouth are common signs that the body has "
            "lost more fluid than it has taken in."
        ),
    ),
]


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def report(name: str, cos: np.ndarray) -> None:
    print(f"\n{name}: n={len(cos)} min cosine {cos.min():.7f} median {np.median(cos):.7f}")


def _embedder(path, tmp_path_factory):
    settings = Settings(
        embed_model=str(path),
        n_ctx=MAX_TOKENS,
        n_batch=4096,
        n_ubatch=512,
        data_dir=tmp_path_factory.mktemp("data"),
        _env_file=None,
    )
    return make_embedder(settings)


@pytest.fixture(scope="module")
def minilm(tmp_path_factory):
    emb = _embedder(build_minilm_gguf("f32"), tmp_path_factory)
    yield emb
    emb.close()


@pytest.fixture(scope="module")
def reference():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(minilm_dir()), device="cpu")
    model.max_seq_length = MAX_TOKENS  # kb never truncates: compare whole texts
    return model


def reference_ids(reference, text: str) -> list[int]:
    return reference.tokenizer(text, truncation=False)["input_ids"]


def test_gguf_describes_a_mean_pooled_bert(minilm):
    assert (minilm.model.arch, minilm.model.causal, minilm.model.pooling) == ("bert", False, "mean")
    assert minilm.recipe == MEAN_BARE
    assert (minilm.dim, minilm.max_tokens, minilm.model.n_vocab) == (384, MAX_TOKENS, 30522)


def test_tokens_match_reference(minilm, reference):
    for text in TOKEN_TEXTS:
        assert minilm.tokens(text) == reference_ids(reference, text), repr(text)
    assert 256 < minilm.count_tokens(LONG_PARAGRAPH) <= MAX_TOKENS  # past sentence-transformers' default cut


XFAIL_REASON = "llama.cpp's WPM tokenizer differs here; if this passes, move the case"


@pytest.mark.xfail(strict=True, reason=XFAIL_REASON)
@pytest.mark.parametrize("text", KNOWN_TOKENIZER_DIFFERENCES.values(), ids=KNOWN_TOKENIZER_DIFFERENCES.keys())
def test_known_tokenizer_differences(minilm, reference, text):
    assert minilm.tokens(text) == reference_ids(reference, text)


def test_documents_match_sentence_transformers(minilm, reference):
    ref = reference.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True)
    ours = minilm.embed_documents(TEXTS)
    cos = cosines(ours, ref)
    report("minilm f32 vs sentence-transformers", cos)
    assert cos.min() >= F32_COS, dict(zip(TEXTS, cos))
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_packed_batch_equals_one_at_a_time(minilm):
    packed = minilm.embed_documents(TEXTS)
    single = np.vstack([minilm.embed_documents([t]) for t in TEXTS])
    print(f"\npacked vs single: max |diff| {np.abs(packed - single).max():.2e}")
    assert np.abs(packed - single).max() <= PACKED_ATOL
    assert cosines(packed, single).min() >= PACKED_COS


def test_f16_file_matches_sentence_transformers(reference, tmp_path_factory):
    emb = _embedder(build_minilm_gguf("f16"), tmp_path_factory)
    try:
        ours = emb.embed_documents(TEXTS)
    finally:
        emb.close()
    cos = cosines(ours, reference.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True))
    report("minilm f16 vs sentence-transformers", cos)
    assert cos.min() >= F16_COS


def test_each_query_finds_its_own_passage(minilm):
    queries = minilm.embed_queries([q for q, _ in PAIRS])
    passages = minilm.embed_documents([p for _, p in PAIRS])
    sims = queries @ passages.T
    print("\nquery x passage cosines:\n", np.round(sims, 3))
    assert list(sims.argmax(axis=1)) == list(range(len(PAIRS)))
