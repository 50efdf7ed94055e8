"""KV layout for packed short inputs: one unified cache vs one stream per sequence, same run.

With a unified cache every token of a packed decode attends over every cell the decode fills
(masked), so attention grows with the square of the decode's tokens; with one stream per sequence
it grows with each sequence's own length. Same model, same token sequences, same vectors.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np


def packing_run(
    model_path: Path, cases=((256, 32), (128, 64)), reps: int = 3, n_batch: int = 8192
) -> list[dict]:
    from ingest.model.embedder import Embedder, EngineConfig
    from ingest.model.engine import LlamaModel
    from ingest.model.recipes import QWEN3

    model = LlamaModel(model_path)
    eot = model.token_id("<|endoftext|>")
    rng = np.random.default_rng(3)
    rows = []
    for length, n in cases:
        seqs = [[*rng.integers(0, 151000, length - 1).tolist(), eot] for _ in range(n)]
        times: dict[bool, list[float]] = {False: [], True: []}
        vectors = {}
        embedders = {
            split: Embedder(
                model, QWEN3, None, EngineConfig(n_ctx=32768, n_batch=n_batch, n_ubatch=2048, kv_split=split)
            )
            for split in (False, True)
        }
        for split, emb in embedders.items():
            vectors[split] = emb.embed_token_batches(seqs)  # warm-up
        for _ in range(reps):  # interleaved, so that load on the machine hits both alike
            for split, emb in embedders.items():
                t = time.perf_counter()
                emb.embed_token_batches(seqs)
                times[split].append(time.perf_counter() - t)
        for emb in embedders.values():
            emb._pool.shutdown()
            for ctx in [*emb._doc_contexts, emb._query_context, emb._long_context]:
                if ctx is not None:
                    ctx.close()
        unified, split = (length * n / statistics.median(times[k]) for k in (False, True))
        rows.append(
            {
                "length": length,
                "seqs": n,
                "unified_tok_s": unified,
                "split_tok_s": split,
                "ratio": split / unified,
                "max_abs_diff": float(np.abs(vectors[True] - vectors[False]).max()),
            }
        )
    model.close()
    return rows


def render(rows: list[dict]) -> str:
    out = [
        "| input tokens × inputs | unified KV tok/s | stream per input tok/s | ratio | max abs diff |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['length']} × {r['seqs']} | {r['unified_tok_s']:,.0f} | {r['split_tok_s']:,.0f} | "
            f"{r['ratio']:.2f}× | {r['max_abs_diff']:.1e} |"
        )
    return "\n".join(out)


if __name__ == "__main__":
    import sys

    from tests.helpers import modelgen

    shape = modelgen.QWEN3_0_6B if "--full" in sys.argv else modelgen.TINY
    path = modelgen.build(modelgen.ModelSpec(shape=shape, ftype="f16"))
    reps = 1 if "--full" in sys.argv else 3
    cases = ((256, 32),) if "--full" in sys.argv else ((256, 32), (128, 64))
    print(render(packing_run(path, cases, reps=reps)))
