"""Our llama.cpp embedding equals the reference recipe over the same random Qwen3 weights."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from ingest.model import engine
from ingest.model.embedder import Embedder, EngineConfig, InputTooLong
from ingest.model.recipes import QWEN3, l2_normalize
from tests.helpers import modelgen
from tests.helpers.qwen_vocab import hf_tokenizer, load_qwen3_vocab
from tests.helpers.reference import get_detailed_instruct, reference_embed

TASK = "Given a web search query, retrieve relevant passages that answer the query"
TEXTS = [
    "The capital of France is Paris.",
    "Gravity is a force that attracts two bodies towards each other. It gives weight to physical objects.",
    "北京是中华人民共和国的首都，也是全国的政治和文化中心。",
    "向量数据库用于存储和检索高维嵌入向量。",
    "def fibonacci(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n",
    "SELECT name, COUNT(*) FROM users GROUP BY name HAVING COUNT(*) > 1;",
    "Mixed 中英文 text with numbers 12345 and symbols: <tag> & 'quotes' — dashes…",
    "A",
    " leading space and trailing newline\n",
    "Literal special-token text <|endoftext|> is parsed as the reference tokenizer parses it.",
]
QUERIES = ["What is the capital of France?", "首都是哪里？", "how to compute fibonacci numbers"]
F32_COS = 0.9999


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(l2_normalize(a) * l2_normalize(b), axis=1)


@pytest.fixture(scope="module")
def reference():
    spec = modelgen.ModelSpec()
    vocab = load_qwen3_vocab()
    tok = hf_tokenizer(vocab)
    model = modelgen.hf_model(spec)
    eod = vocab.token_id("<|endoftext|>")

    def embed(texts, dim=None):
        return reference_embed(model, tok, list(texts), eod, dim)

    return embed


def report(name: str, cos: np.ndarray) -> None:
    print(f"\n{name}: n={len(cos)} min cosine {cos.min():.7f} median {np.median(cos):.7f}")


def test_documents_match_reference_single_and_packed(qwen3_embedder, reference):
    ref = reference(TEXTS)
    packed = qwen3_embedder.embed_documents(TEXTS)  # mixed lengths, one packed decode
    single = np.vstack([qwen3_embedder.embed_documents([t]) for t in TEXTS])
    cos_packed, cos_single = cosines(packed, ref), cosines(single, ref)
    report("documents packed", cos_packed)
    report("documents single", cos_single)
    assert cos_packed.min() >= F32_COS
    assert cos_single.min() >= F32_COS
    np.testing.assert_allclose(packed, ref, atol=2e-3)  # normalised like the reference, not only parallel
    np.testing.assert_allclose(packed, single, atol=2e-4)  # F16 KV cache; batch layout changes rounding


@pytest.mark.parametrize("kv_split", [False, True])
def test_packing_layouts_match_reference(qwen3_embedder, reference, kv_split):
    """Unified KV cache, or one stream per sequence with the inputs over ``stream_tokens`` sent to a
    unified context: the same vectors as the reference either way."""
    texts = [*TEXTS, " ".join(TEXTS), " ".join(TEXTS[:4]) * 3]  # two inputs over 64 tokens
    cfg = EngineConfig(
        n_ctx=1024, n_batch=1024, n_ubatch=256, n_seq_max=8, kv_split=kv_split, stream_tokens=64
    )
    emb = Embedder(qwen3_embedder.model, QWEN3, None, cfg)
    try:
        assert emb.stream_tokens == (64 if kv_split else 0)
        lengths = [emb.count_tokens(t) for t in texts]
        assert max(lengths) > 64 and sum(n <= 64 for n in lengths) > 8  # both paths, several decodes
        ours = emb.embed_documents(texts)
        assert (emb._long_context is not None) == kv_split
    finally:
        for ctx in [*emb._doc_contexts, emb._query_context, emb._long_context]:
            if ctx is not None:
                ctx.close()
    ref = reference(texts)
    report(f"documents kv_split={kv_split}", cosines(ours, ref))
    assert cosines(ours, ref).min() >= F32_COS
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_queries_with_instruction_match_reference(qwen3_embedder, reference):
    ours = qwen3_embedder.embed_queries(QUERIES, task=TASK)
    ref = reference([get_detailed_instruct(TASK, q) for q in QUERIES])
    cos = cosines(ours, ref)
    report("queries", cos)
    assert cos.min() >= F32_COS
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def test_matryoshka_cut_matches_reference(qwen3_embedder, reference):
    dim = 32
    cut = Embedder(qwen3_embedder.model, QWEN3, dim, EngineConfig(n_ctx=1024, n_batch=1024, n_ubatch=256))
    try:
        ours = cut.embed_documents(TEXTS)
    finally:
        cut._pool.shutdown()
    ref = reference(TEXTS, dim=dim)
    assert ours.shape == (len(TEXTS), dim)
    cos = cosines(ours, ref)
    report(f"documents dim={dim}", cos)
    assert cos.min() >= F32_COS
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_broken_recipes_fail_the_same_check(qwen3_embedder, reference):
    """Each deliberate break of the recipe drops below the parity bar: the check can fail."""
    emb = qwen3_embedder
    ref_docs = reference(TEXTS)
    ctx = emb._query_context
    no_eot = np.vstack([ctx.embed([emb.model.tokenize(t, add_special=False)]) for t in TEXTS])
    ref_q = reference([get_detailed_instruct(TASK, q) for q in QUERIES])
    bare_queries = emb.embed_documents(QUERIES)
    spaced = emb.embed_documents([f"Instruct: {TASK}\nQuery: {q}" for q in QUERIES])
    raw = emb.embed_token_batches([emb.tokens(t) for t in TEXTS])
    broken = {
        "pooling without <|endoftext|>": cosines(no_eot, ref_docs).min(),
        "query without instruction": cosines(bare_queries, ref_q).min(),
        "instruction with a space after 'Query:'": cosines(spaced, ref_q).min(),
    }
    for name, cos in broken.items():
        print(f"\nbroken: {name}: min cosine {cos:.4f}")
        assert cos < 0.999, name
    # not normalising keeps the direction but not the values the reference returns
    assert not np.allclose(raw, ref_docs, atol=2e-3)


def test_older_gguf_without_eos_flag_gets_end_token_appended(reference):
    spec = modelgen.ModelSpec(add_eos=False)
    model = engine.LlamaModel(modelgen.build(spec))
    emb = Embedder(model, QWEN3, None, EngineConfig(n_ctx=1024, n_batch=1024, n_ubatch=256))
    try:
        assert model.tokenize("a")[-1] != emb.end_id  # the file really lacks the flag
        assert emb.appends_end is False
        cos = cosines(emb.embed_documents(TEXTS), reference(TEXTS))
        assert cos.min() >= F32_COS
    finally:
        emb.close()


def test_over_long_input_is_an_error_not_truncated(qwen3_embedder):
    text = "word " * (qwen3_embedder.max_tokens + 10)
    with pytest.raises(InputTooLong):
        qwen3_embedder.embed_documents([text])


def test_concurrent_calls_equal_sequential(qwen3_embedder):
    expected = qwen3_embedder.embed_documents(TEXTS)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = qwen3_embedder.embed_documents(TEXTS) if i % 2 else qwen3_embedder.embed_queries(QUERIES)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    queries = qwen3_embedder.embed_queries(QUERIES)
    for i, got in results.items():
        np.testing.assert_allclose(got, expected if i % 2 else queries, atol=1e-5)


def test_installed_engine_carries_the_lm_head_patch(qwen3_embedder):
    assert engine.patch_level() >= 1
    # behaviour, not just the marker: an embeddings context of a qwen3 model has no logits at all
    import llama_cpp

    ctx = qwen3_embedder._query_context
    ctx.embed([qwen3_embedder.tokens("hello")])
    assert not llama_cpp.llama_get_logits_ith(ctx._ctx, 0)
