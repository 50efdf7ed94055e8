"""Lexical sparse vectors: tokens, CJK n-grams, stable indices, BM25 weights."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.sparse import (
    BM25_K1,
    SparseVector,
    identifier_parts,
    query_sparse_vector,
    sparse_vector,
    token_index,
    tokenize,
)

REPO = Path(__file__).resolve().parents[2]


def tokens(text: str) -> list[str]:
    return tokenize(text)[0]


def weight(vector: SparseVector, token: str) -> float:
    return dict(zip(vector.indices, vector.values))[token_index(token)]


def test_words_are_lowercased_with_digits_kept():
    assert tokens("Hello, World! Version 2 of ipv6") == [
        "hello",
        "world",
        "version",
        "2",
        "of",
        "ipv6",
        "ipv",
        "6",
    ]


def test_identifiers_give_the_whole_and_their_parts():
    assert tokens("parseHTTPResponse") == ["parsehttpresponse", "parse", "http", "response"]
    assert tokens("snake_case_name") == ["snake_case_name", "snake", "case", "name"]
    assert identifier_parts("XMLHttpRequest2") == ["XML", "Http", "Request", "2"]
    assert tokens("plain") == ["plain"]


def test_non_latin_words_and_compatibility_forms():
    assert tokens("Привет МИР") == ["привет", "мир"]
    # full-width Latin folds to ASCII (NFKC)
    assert tokens("ＡＢＣ") == ["abc"]


def test_cjk_runs_give_unigrams_and_bigrams():
    assert tokens("向量数据库") == ["向", "量", "数", "据", "库", "向量", "量数", "数据", "据库"]
    assert tokens("カタカナ") == ["カ", "タ", "カ", "ナ", "カタ", "タカ", "カナ"]
    assert tokens("한국어") == ["한", "국", "어", "한국", "국어"]


def test_bigrams_stop_at_run_boundaries():
    found = tokens("向量 数据 and 中文English混合")
    assert "量数" not in found
    assert "文e" not in found and "english" in found
    assert {"中文", "混合"} <= set(found)


def test_vectors_have_sorted_unique_indices_below_2_31():
    vec = sparse_vector("case snake_case Case CASE 数据 数据库 " * 3)
    assert list(vec.indices) == sorted(set(vec.indices))
    assert len(vec.indices) == len(vec.values)
    assert all(0 <= i < 2**31 for i in vec.indices)
    assert all(v > 0 for v in vec.values)


def test_index_is_the_blake2b_prefix_not_pythons_hash():
    # pinned: an index change would silently orphan every stored sparse vector
    assert token_index("hello") == 0xEA6706F7 & 0x7FFFFFFF
    assert token_index("向量") != token_index("向")


def test_indices_are_the_same_in_another_process_with_another_hash_seed():
    code = "from ingest.sparse import sparse_vector; print(sparse_vector('stable 稳定 hashing').indices)"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == str(sparse_vector("stable 稳定 hashing").indices)


def test_term_frequency_saturates():
    doc = "filler " * 20
    once, twice, many = (weight(sparse_vector(doc + "qdrant " * n), "qdrant") for n in (1, 2, 50))
    assert once < twice < many < BM25_K1 + 1
    assert twice - once > many / 50  # sublinear: the second occurrence adds more than the average


def test_longer_documents_weigh_a_term_less():
    short = weight(sparse_vector("qdrant engine"), "qdrant")
    long = weight(sparse_vector("qdrant engine " + "filler words " * 200), "qdrant")
    assert long < short


def test_query_vector_has_unit_weights_per_distinct_term():
    vec = query_sparse_vector("database database 数据库")
    assert set(vec.values) == {1.0}
    assert len(vec.indices) == len(set(tokens("database 数据库")))


@pytest.mark.parametrize("text", ["", "   ", "!!! ... ---", "\n\t"])
def test_texts_without_words_give_empty_vectors(text):
    assert sparse_vector(text) == SparseVector()
    assert query_sparse_vector(text).is_empty


def test_overlong_tokens_are_dropped():
    assert tokens("a" * 65 + " ok") == ["ok"]
