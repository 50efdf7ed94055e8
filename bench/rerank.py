"""Rerank latency against the candidate count: one query scored by ``ingest.model.reranker.Reranker`` against
N chunks of about 256 tokens, for the N a search might over-fetch.

The reranker scores one (query, chunk) prompt per decode, so the cost should grow with N; this
measures by how much on this machine. The model is the shape-exact random Qwen3-Reranker-0.6B (the
Qwen3-0.6B architecture with an LM head, Q8_0 like the registry's file, real vocabulary):
random weights change the scores, not the work. Medians of several runs after one warm-up.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

CANDIDATES = (10, 20, 40, 80)
CHUNK_TOKENS = 256  # the default chunk target
QUERY = "How does the service decide which passages to show first?"
WORDS = (
    "the",
    "a",
    "of",
    "to",
    "and",
    "in",
    "is",
    "for",
    "on",
    "with",
    "that",
    "by",
    "from",
    "as",
    "are",
    "this",
    "be",
    "it",
    "or",
    "at",
    "an",
    "which",
    "can",
    "each",
    "when",
    "not",
    "store",
    "query",
    "index",
    "chunk",
    "model",
    "search",
    "file",
    "page",
    "vector",
    "token",
    "score",
    "answer",
    "result",
    "service",
    "user",
    "read",
    "write",
    "build",
    "check",
    "return",
    "keep",
    "order",
    "first",
    "last",
    "long",
    "short",
    "new",
)


def chunk_texts(model, n: int, tokens: int = CHUNK_TOKENS, seed: int = 0) -> list[str]:
    """``n`` different texts of ``tokens`` tokens (at most; words are never cut) for ``model``."""
    rng = np.random.default_rng(seed)
    texts = []
    for _ in range(n):
        words = [str(w) for w in rng.choice(WORDS, size=2 * tokens)]
        lo, hi = 1, len(words)  # the most words that stay within the token budget
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if len(model.tokenize(" ".join(words[:mid]), add_special=False)) <= tokens:
                lo = mid
            else:
                hi = mid - 1
        texts.append(" ".join(words[:lo]) + ".")
    return texts


def rerank_latency(
    model_path: Path, candidates=CANDIDATES, reps: int = 3, tokens: int = CHUNK_TOKENS, n_threads: int = 0
) -> list[dict]:
    """Per candidate count: median seconds to score the query against that many chunks."""
    from ingest.model.engine import LlamaModel
    from ingest.model.reranker import DEFAULT_INSTRUCTION, Reranker, format_pair

    reranker = Reranker(LlamaModel(model_path), n_threads=n_threads)
    try:
        docs = chunk_texts(reranker.model, max(candidates), tokens)
        frame = len(reranker.prefix) + len(reranker.suffix)  # the judge prompt around each pair
        pairs = [format_pair(QUERY, d, DEFAULT_INSTRUCTION) for d in docs]
        prompt = [frame + len(reranker.model.tokenize(p, add_special=False)) for p in pairs]
        reranker.score(QUERY, docs[:2])  # warm-up
        rows = []
        for n in candidates:
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                reranker.score(QUERY, docs[:n])
                times.append(time.perf_counter() - t)
            median = statistics.median(times)
            rows.append(
                {
                    "candidates": n,
                    "prompt_tokens": sum(prompt[:n]),
                    "median_s": median,
                    "per_candidate_ms": 1000 * median / n,
                    "runs": times,
                }
            )
        return rows
    finally:
        reranker.close()


def render(rows: list[dict], hardware: str = "") -> str:
    out = [
        *([f"**{hardware}**", ""] if hardware else []),
        "| candidates | tokens decoded | median s | fastest s | per candidate ms (median) | runs |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['candidates']} | {r['prompt_tokens']:,} | {r['median_s']:.2f} | "
            f"{min(r['runs']):.2f} | {r['per_candidate_ms']:,.0f} | {len(r['runs'])} |"
        )
    return "\n".join(out)


def main() -> None:
    import argparse

    from bench.__main__ import hardware
    from tests.helpers import modelgen

    ap = argparse.ArgumentParser(prog="python -m bench.rerank", description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=3, help="runs per candidate count (median)")
    ap.add_argument("--candidates", type=int, nargs="+", default=list(CANDIDATES))
    ap.add_argument("--tiny", action="store_true", help="the 2-layer test model instead of the 0.6B shape")
    args = ap.parse_args()
    shape = modelgen.TINY if args.tiny else modelgen.QWEN3_0_6B
    path = modelgen.build(modelgen.ModelSpec(shape=shape, ftype="q8_0", kind="reranker"))
    rows = rerank_latency(path, tuple(args.candidates), reps=args.reps)
    label = "tiny test reranker" if args.tiny else "Qwen3-Reranker-0.6B shape, Q8_0"
    print(render(rows, f"{hardware()} — {label}, {CHUNK_TOKENS}-token chunks"))


if __name__ == "__main__":
    main()
