"""Relevance and metrics: pure functions of judged hits (no model, no store)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from kb.contract import EVAL_LABELS, EVAL_LATENCY, EVAL_QUALITY, SearchHit
from kb.contract import RERANK_DEPTHS as RERANK_DEPTHS  # noqa: PLC0414 (re-exported)
from kb.tools.evaluate.testset import Reference

QUALITY = EVAL_QUALITY  # metric names, in table order (kb.contract: the app shows them too)
LATENCY = EVAL_LATENCY
LABELS = EVAL_LABELS
TOP_KS = (1, 3, 5)
CUTOFF = 10  # hits fetched per query: recall, MRR and nDCG are "@10"
DEPTH = tuple(f"first_recall{n}" for n in RERANK_DEPTHS)


# --- relevance and metrics (pure) ----------------------------------------------------------------

Matched = Sequence[frozenset[int]]  # per ranked hit: indices of the references it matches


def normalize_space(text: str) -> str:
    return " ".join(text.split())


def matches(hit: SearchHit, ref: Reference) -> bool:
    """Whether a hit lies where the reference says the answer is."""
    if hit.path != ref.source:  # a reference names a path inside the corpus
        return False
    if ref.page is not None and hit.page != ref.page:
        return False
    if ref.lines is not None:
        start, end = hit.line_start, hit.line_end
        if start is None or end is None or end < ref.lines[0] or start > ref.lines[1]:
            return False
    return ref.snippet is None or normalize_space(ref.snippet) in normalize_space(hit.text or "")


def judge(hits: Sequence[SearchHit], refs: Sequence[Reference]) -> list[frozenset[int]]:
    return [frozenset(i for i, r in enumerate(refs) if matches(h, r)) for h in hits]


def gains(matched: Matched) -> list[int]:
    """Binary gains: 1 for a hit matching a reference that no higher hit matched."""
    seen: set[int] = set()
    out = []
    for m in matched:
        out.append(1 if m - seen else 0)
        seen |= m
    return out


def top_k(matched: Matched, k: int) -> float:
    return 1.0 if any(matched[:k]) else 0.0


def recall_at(matched: Matched, n_refs: int, k: int = CUTOFF) -> float:
    return len(frozenset().union(*matched[:k])) / n_refs


def mrr_at(matched: Matched, k: int = CUTOFF) -> float:
    return next((1.0 / rank for rank, m in enumerate(matched[:k], 1) if m), 0.0)


def ndcg_at(matched: Matched, n_refs: int, k: int = CUTOFF) -> float:
    dcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(gains(matched[:k]), 1))
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(n_refs, k) + 1))
    return dcg / ideal


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def query_scores(matched: Matched, n_refs: int) -> dict[str, float]:
    return {
        **{f"top{k}": top_k(matched, k) for k in TOP_KS},
        "recall10": recall_at(matched, n_refs),
        "mrr10": mrr_at(matched),
        "ndcg10": ndcg_at(matched, n_refs),
    }


def first_stage_scores(matched_at_depth: Mapping[int, Matched], n_refs: int) -> dict[str, float]:
    """``first_recallN``: recall of the N hits a search for N candidates returned, per depth N
    (each depth is its own list: with hybrid fusion the top 20 of 80 candidates need not be the 20)."""
    return {
        f"first_recall{n}": recall_at(matched, n_refs, n) for n, matched in sorted(matched_at_depth.items())
    }


def summarize(scores: Sequence[dict[str, float]], latencies_ms: Sequence[float]) -> dict[str, float]:
    """Mean of each quality metric over the queries (the first-stage recalls too, when every query has
    them), latency percentiles, and the query count."""
    n = len(scores)
    depth = [m for m in DEPTH if n and all(m in s for s in scores)]
    out = {m: sum(s[m] for s in scores) / n if n else math.nan for m in (*QUALITY, *depth)}
    return {**out, "p50_ms": percentile(latencies_ms, 50), "p99_ms": percentile(latencies_ms, 99), "n": n}
