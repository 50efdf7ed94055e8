"""Measure one engine build's embedding throughput; runs under the venv whose llama_cpp is measured.

Prints one JSON object. Kept free of kb's heavier modules so the stock baseline venv needs only
llama-cpp-python and numpy.
"""

from __future__ import annotations

import json
import statistics
import sys
import time

import numpy as np

from ingest.model.engine import ContextConfig, LlamaModel, patch_level


def main() -> None:
    args = json.loads(sys.argv[1])
    model = LlamaModel(args["model"], gpu=args.get("gpu", True))
    rng = np.random.default_rng(0)
    eot = model.token_id("<|endoftext|>")
    results = []
    for length, n_seqs, reps, n_batch in args["cases"]:
        cfg = ContextConfig(
            n_ctx=max(n_batch, length),
            n_batch=max(n_batch, length),
            n_ubatch=args["n_ubatch"],
            n_seq_max=max(1, n_seqs),
            n_threads=args.get("threads", 0),
            pooling="last",
        )
        ctx = model.context(cfg)
        seqs = [list(rng.integers(0, 151000, length - 1)) + [eot] for _ in range(n_seqs)]
        ctx.embed(seqs)  # warm-up
        times = []
        for _ in range(reps):
            t = time.perf_counter()
            ctx.embed(seqs)
            times.append(time.perf_counter() - t)
        ctx.close()
        med = statistics.median(times)
        results.append(
            {
                "length": length,
                "seqs": n_seqs,
                "tokens": length * n_seqs,
                "median_s": med,
                "tok_s": length * n_seqs / med,
                "reps": reps,
            }
        )
    print(json.dumps({"patch_level": patch_level(), "offloaded": model.offloaded, "results": results}))


if __name__ == "__main__":
    main()
