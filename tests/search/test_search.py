"""Search core and CLI over a real store: dense, sparse (CJK), hybrid, rerank, filters, odd queries."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from ingest.model.engine import LlamaModel
from ingest.model.reranker import Reranker
from ingest.pipeline import ChunkSettings, ingest_folder
from ingest.store import SearchFilter, make_store
from kb.contract import SearchHit
from kb.search.query import SearchRequest, search
from tests.helpers import modelgen

PASSAGES = {
    "zh/db.md": "# 数据库\n\n向量数据库用于存储和检索高维嵌入向量，支持近似最近邻搜索。\n",
    "zh/food.md": "# 美食\n\n北京烤鸭是一道著名的中国菜，外皮酥脆。\n",
    "en/space.md": "# Space\n\nThe Apollo program landed astronauts on the Moon in 1969.\n",
    "en/garden.txt": "Tomatoes need full sun and regular watering during summer.\n",
    "code/util.py": "def parse_config(path):\n    with open(path) as f:\n        return f.read()\n",
}


@pytest.fixture(scope="module")
def corpus(qwen3_settings, qwen3_embedder, tmp_path_factory):
    root = tmp_path_factory.mktemp("search")
    docs = root / "docs"
    for rel, text in PASSAGES.items():
        (docs / rel).parent.mkdir(parents=True, exist_ok=True)
        (docs / rel).write_text(text, encoding="utf-8")
    settings = qwen3_settings.model_copy(update={"data_dir": root / "data"})
    store = make_store(settings)
    ingest_folder(docs, qwen3_embedder, store, ChunkSettings(256, 16), source="docs", workers=1)
    yield settings, store, qwen3_embedder
    store.close()


@pytest.fixture(scope="module")
def reranker():
    r = Reranker(LlamaModel(modelgen.build(modelgen.ModelSpec(kind="reranker", seed=1))), n_ctx=2048)
    yield r
    r.close()


def test_chinese_keyword_found_by_sparse_signal_alone(corpus):
    _, store, emb = corpus
    hits = search(SearchRequest("向量数据库", k=3, dense=False), emb, store).hits
    assert hits and hits[0].path == "zh/db.md"
    hits = search(SearchRequest("烤鸭", k=3, dense=False), emb, store).hits
    assert hits and hits[0].path == "zh/food.md"


def test_query_without_lexical_overlap_still_returns_dense_hits(corpus):
    _, store, emb = corpus
    assert search(SearchRequest("zzqx", k=3, dense=False), emb, store).hits == []
    hybrid = search(SearchRequest("zzqx", k=3, hybrid=True), emb, store).hits
    assert len(hybrid) == 3


@pytest.mark.parametrize("query", ["", "a", "q" * 5000, "中" * 5000])
@pytest.mark.parametrize("mode", ["dense", "hybrid", "rerank"])
def test_odd_queries_never_crash(corpus, reranker, query, mode):
    _, store, emb = corpus
    req = SearchRequest(query, k=3, hybrid=mode == "hybrid", rerank=mode == "rerank", candidates=5)
    hits = search(req, emb, store, reranker).hits
    assert hits == [] if not query.strip() else len(hits) == 3
    if mode == "rerank" and hits:
        assert all(0.0 <= h.rerank_score <= 1.0 and h.retrieval_score is not None for h in hits)
        assert [h.rerank_score for h in hits] == sorted((h.rerank_score for h in hits), reverse=True)


def test_filters(corpus):
    _, store, emb = corpus
    hits = search(
        SearchRequest("anything", k=10, filter=SearchFilter(source_prefix="docs/zh")), emb, store
    ).hits
    assert {h.path for h in hits} == {"zh/db.md", "zh/food.md"}
    hits = search(SearchRequest("anything", k=10, filter=SearchFilter(kinds=("code",))), emb, store).hits
    assert [h.path for h in hits] == ["code/util.py"] and hits[0].line_start == 1
    hits = search(SearchRequest("anything", k=10, filter=SearchFilter(source_glob="*.txt")), emb, store).hits
    assert [h.path for h in hits] == ["en/garden.txt"]


def test_cli_json_equals_search_core(corpus):
    settings, store, emb = corpus
    core = search(SearchRequest("Moon landing", k=4, hybrid=True), emb, store).hits
    store.close()  # the embedded store has one owner at a time: hand it to the CLI process
    env = {
        **os.environ,
        "KB_EMBED_MODEL": settings.embed_model,
        "KB_N_CTX": str(settings.n_ctx),
        "KB_N_BATCH": str(settings.n_batch),
        "KB_DATA_DIR": str(settings.data_dir),
    }
    out = subprocess.run(
        [sys.executable, "-m", "kb.cli.main", "search", "Moon landing", "--k", "4", "--hybrid", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    cli = json.loads(out.stdout)
    assert [(h["id"], h["source"]) for h in cli] == [(h.id, h.source) for h in core]
    assert [h["score"] for h in cli] == pytest.approx([h.score for h in core], abs=1e-4)
    assert [SearchHit.from_json(h).to_json() == h for h in cli] == [True] * len(cli)  # one JSON shape
