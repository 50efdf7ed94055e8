"""The search core (no UI): format the query by the model's recipe, embed, query the store,
optionally fuse a lexical sparse signal and rerank. The CLI, the service and the app call this."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ingest.model.protocols import PassageReranker, TextEmbedder
from ingest.records import Hit
from ingest.sparse import query_sparse_vector
from ingest.store.base import SearchFilter, Store
from kb.contract import MAX_K, SearchHit

RERANK_CANDIDATES = 20  # over-fetch for the reranker, then cut to k (chosen in README: Choosing the defaults)


@dataclass(frozen=True)
class SearchRequest:
    query: str
    k: int = 10
    rerank: bool = False
    hybrid: bool = False
    dense: bool = True
    filter: SearchFilter | None = None
    task: str | None = None  # instruction for the query (None: the configured default)
    candidates: int = RERANK_CANDIDATES


@dataclass
class SearchResult:
    hits: list[SearchHit] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "hits": [h.to_json() for h in self.hits],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }


def hit_record(hit: Hit, rank: int, score: float | None = None, **scores: float | bool | None) -> SearchHit:
    """A store's hit as the typed record every caller gets (``SearchHit.to_json`` is its JSON)."""
    return SearchHit.from_payload(hit.id, rank, hit.score if score is None else score, hit.payload, **scores)


def search(
    req: SearchRequest, embedder: TextEmbedder, store: Store, reranker: PassageReranker | None = None
) -> SearchResult:
    timings: dict[str, float] = {}
    query = req.query.strip()
    k = max(1, min(req.k, MAX_K))
    if not query:
        return SearchResult([], timings)
    t0 = time.perf_counter()
    dense = embedder.embed_query(query, req.task) if req.dense else None
    sparse = query_sparse_vector(query) if (req.hybrid or not req.dense) else None
    if sparse is not None and sparse.is_empty and dense is None:
        return SearchResult([], timings)
    timings["embed"] = (time.perf_counter() - t0) * 1000
    fetch = max(k, req.candidates) if (req.rerank and reranker) else k
    t1 = time.perf_counter()
    hits = store.search(
        dense=dense,
        sparse=sparse if sparse is not None and not sparse.is_empty else None,
        k=fetch,
        flt=req.filter,
    )
    timings["store"] = (time.perf_counter() - t1) * 1000
    hits.sort(key=lambda h: (-h.score, h.id))  # fused scores tie: a stable order for every caller
    if not (req.rerank and reranker) or not hits:
        return SearchResult([hit_record(h, i + 1) for i, h in enumerate(hits[:k])], timings)
    t2 = time.perf_counter()
    scores = reranker.score(query, [h.text for h in hits], req.task or _default_task(embedder))
    timings["rerank"] = (time.perf_counter() - t2) * 1000
    order = sorted(range(len(hits)), key=lambda i: -scores[i].score)[:k]
    return SearchResult(
        [
            hit_record(
                hits[i],
                r + 1,
                scores[i].score,
                retrieval_score=float(hits[i].score),
                rerank_score=scores[i].score,
                reranked_window=scores[i].windowed or None,
            )
            for r, i in enumerate(order)
        ],
        timings,
    )


def _default_task(embedder: TextEmbedder) -> str:
    from ingest.model.reranker import DEFAULT_INSTRUCTION

    return getattr(embedder, "query_task", "") or DEFAULT_INSTRUCTION
