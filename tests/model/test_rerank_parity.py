"""Our Qwen3-Reranker scoring equals the model card's transformers recipe over the same random weights."""

from __future__ import annotations

import numpy as np
import pytest

from ingest.model.engine import LlamaModel
from ingest.model.reranker import Reranker
from tests.helpers import modelgen
from tests.helpers.qwen_vocab import hf_tokenizer, load_qwen3_vocab
from tests.helpers.reference import reference_rerank

PAIRS = [
    ("What is the capital of China?", "The capital of China is Beijing."),
    ("What is the capital of China?", "Gravity gives weight to physical objects."),
    ("向量数据库是什么？", "向量数据库用于存储和检索高维嵌入向量。"),
    ("how to reverse a list in python", "def rev(xs):\n    return xs[::-1]\n"),
    ("x", "y"),
    (
        "A longer question about the behaviour of llama.cpp when packing sequences into one decode?",
        "Each sequence gets its own id; the KV cache is unified; pooled vectors are read per sequence. " * 5,
    ),
]
SPEC = modelgen.ModelSpec(kind="reranker", seed=1)


@pytest.fixture(scope="module")
def reranker():
    r = Reranker(LlamaModel(modelgen.build(SPEC)), n_ctx=1024)
    yield r
    r.close()


@pytest.fixture(scope="module")
def reference_scores():
    model = modelgen.hf_model(SPEC)
    tok = hf_tokenizer(load_qwen3_vocab())
    return reference_rerank(model, tok, PAIRS)


def test_scores_match_reference(reranker, reference_scores):
    ours = [reranker.score(q, [d])[0].score for q, d in PAIRS]
    delta = np.abs(np.array(ours) - np.array(reference_scores))
    print(
        f"\nrerank |dp| max {delta.max():.5f} over {len(PAIRS)} pairs; p range {min(ours):.3f}..{max(ours):.3f}"
    )
    assert delta.max() <= 0.01
    log_odds = np.log(np.array(reference_scores)) - np.log1p(-np.array(reference_scores))
    assert np.ptp(log_odds) > 1.0  # the pairs really score differently: not a comparison of constants


def test_broken_prompt_is_detected(reranker, reference_scores):
    """Dropping the assistant suffix (a plausible mistake) moves the scores past the bar."""
    broken = []
    for q, d in PAIRS:
        seq = reranker.prefix + reranker.model.tokenize(
            f"<Instruct>: x\n<Query>: {q}\n<Document>: {d}", add_special=False
        )
        no, yes = reranker.ctx.last_logits([seq], [reranker.no, reranker.yes])[0]
        broken.append(1 / (1 + np.exp(no - yes)))
    assert np.abs(np.array(broken) - np.array(reference_scores)).max() > 0.01


def test_long_document_is_windowed_and_any_query_length_works(reranker):
    long_doc = "filler sentence about nothing in particular. " * 400 + "The answer is 42."
    scores = reranker.score("what is the answer?", [long_doc, "short"])
    assert scores[0].windowed and not scores[1].windowed
    for q in ["", "a", "q" * 5000]:
        s = reranker.score(q, ["some passage"])[0].score
        assert 0.0 <= s <= 1.0
