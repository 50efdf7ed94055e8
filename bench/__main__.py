"""`make bench`: embedding throughput (patched vs stock llama.cpp vs transformers), contexts, query latency,
PDF text-layer check and OCR speed (``bench/ocr.py``), the answer path and the grounding check
(``bench/answer.py``).

Everything is measured in one run on this machine, on a shape-exact random Qwen3-Embedding-0.6B
(F16 GGUF, real vocabulary); medians of several repetitions; ratios within the run. Writes a
Markdown table and a JSON file under data/bench/ and prints the table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import answer, latency, ocr, packing, peer_llama_server, rerank
from tests.helpers import modelgen

CASES = [(128, 16, 3, 2048), (512, 4, 3, 2048), (2048, 1, 3, 2048)]  # length, seqs, reps, n_batch
STOCK_PYTHON = ROOT / ".venv-stock" / "bin" / "python"
SECTIONS = (
    "patched",
    "stock",
    "llama-server",
    "transformers",
    "contexts",
    "packing",
    "latency",
    "rerank",
    "ocr",
    "answer",
)


def hardware() -> str:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = ""
    try:
        gpu = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            check=False,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return f"{cpu} × {os.cpu_count()} threads" + (f", GPU: {gpu}" if gpu else ", no GPU")


def engine_run(python: Path, model: Path, cases, n_ubatch: int = 2048, env: dict | None = None) -> dict:
    """bench.engine_worker under ``python``; ``env``: variables added to this process's environment."""
    arg = json.dumps({"model": str(model), "cases": cases, "n_ubatch": n_ubatch})
    out = subprocess.run(
        [str(python), "-m", "bench.engine_worker", arg],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=3600,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def transformers_run(spec: modelgen.ModelSpec, cases, device: str = "cpu", dtype=None) -> list[dict]:
    """transformers' Qwen3 over the same weights: float32 eager attention on the CPU by default; on a
    GPU (``device="cuda"``, e.g. ``dtype=torch.bfloat16``) with PyTorch's fused attention."""
    import torch

    model = modelgen.hf_model(spec)
    torch.set_num_threads(os.cpu_count() or 1)
    if device != "cpu" or dtype is not None:
        model = model.to(device=device, dtype=dtype)
        model.set_attn_implementation("sdpa")
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    rng = np.random.default_rng(0)
    rows = []
    for length, n_seqs, reps, _ in cases:
        ids = torch.tensor(rng.integers(0, 151000, (n_seqs, length)), device=device)
        mask = torch.ones_like(ids)
        with torch.inference_mode():
            model(input_ids=ids, attention_mask=mask)
            sync()
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                model(input_ids=ids, attention_mask=mask)
                sync()
                times.append(time.perf_counter() - t)
        med = statistics.median(times)
        rows.append({"length": length, "seqs": n_seqs, "tok_s": length * n_seqs / med, "median_s": med})
    return rows


def contexts_run(model_path: Path, k_values=(1, 2)) -> list[dict]:
    from ingest.model.embedder import Embedder, EngineConfig
    from ingest.model.engine import LlamaModel
    from ingest.model.recipes import QWEN3

    model = LlamaModel(model_path)
    rng = np.random.default_rng(1)
    seqs = [list(rng.integers(0, 151000, 127)) + [151643] for _ in range(64)]
    rows = []
    for k in k_values:
        threads = max(1, (os.cpu_count() or 1) // k)
        emb = Embedder(
            model,
            QWEN3,
            None,
            EngineConfig(
                n_ctx=2048, n_batch=1024, n_ubatch=1024, n_seq_max=16, n_contexts=k, n_threads=threads
            ),
        )
        emb.embed_token_batches(seqs[:8])
        times = []
        for _ in range(3):
            t = time.perf_counter()
            emb.embed_token_batches(seqs)
            times.append(time.perf_counter() - t)
        emb._pool.shutdown()
        for c in [*emb._doc_contexts, emb._query_context]:
            c.close()
        rows.append(
            {"contexts": k, "threads_each": threads, "tok_s": 128 * len(seqs) / statistics.median(times)}
        )
    model.close()
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(prog="make bench")
    ap.add_argument("--quick", action="store_true", help="fewer cases (CI smoke)")
    ap.add_argument("--skip", action="append", default=[], choices=SECTIONS)
    ap.add_argument(
        "--only", action="append", default=[], choices=SECTIONS, help="run this section (repeatable)"
    )
    args = ap.parse_args()
    run = {s for s in (args.only or SECTIONS) if s not in args.skip}
    cases = CASES[:1] if args.quick else CASES
    spec = modelgen.ModelSpec(shape=modelgen.QWEN3_0_6B, ftype="f16")
    print("building the shape-exact Qwen3-Embedding-0.6B (F16, random weights) …", flush=True)
    model_path = modelgen.build(spec)
    hw = hardware()
    report: dict = {
        "date": time.strftime("%Y-%m-%d"),
        "hardware": hw,
        "model": "Qwen3-0.6B shape, F16, random",
    }
    if "patched" in run:
        report["patched"] = engine_run(Path(sys.executable), model_path, cases)
    if "stock" in run and STOCK_PYTHON.exists():
        report["stock"] = engine_run(STOCK_PYTHON, model_path, cases)
    server = os.environ.get("KB_LLAMA_SERVER")  # `make bench` builds it (scripts/build_llama_server.sh)
    if "llama-server" in run and server and Path(server).is_file():
        report["llama_server"] = peer_llama_server.llama_server_run(Path(server), model_path, cases)
    if "transformers" in run:
        report["transformers_fp32"] = transformers_run(spec, cases)
    if "contexts" in run:
        report["contexts"] = contexts_run(model_path)
    if "packing" in run:
        report["packing"] = packing.packing_run(
            model_path, ((256, 32),) if args.quick else ((256, 32), (128, 64)), reps=1 if args.quick else 2
        )
    if "latency" in run:
        report["latency"] = latency.latency_run(
            model_path, sizes=latency.SIZES[:1] if args.quick else latency.SIZES
        )
    if "rerank" in run:
        reranker = modelgen.build(
            modelgen.ModelSpec(shape=modelgen.QWEN3_0_6B, ftype="q8_0", kind="reranker")
        )
        report["rerank"] = rerank.rerank_latency(
            reranker, (10,) if args.quick else (10, 20, 40), reps=1 if args.quick else 2
        )
    if "ocr" in run:
        report["ocr"] = ocr.ocr_run(ocr_reps=1 if args.quick else ocr.OCR_REPS)
    if "answer" in run:
        from tests.helpers.answers import smollm2_gguf

        report["answer"] = {
            "generation": answer.generation(
                smollm2_gguf(), (3,) if args.quick else (3, 8), 1 if args.quick else 3
            ),
            "grounding": answer.grounding_rates(),
        }
    md = render(report)
    out = ROOT / "data" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (out / f"bench-{stamp}.json").write_text(json.dumps(report, indent=1))
    (out / f"bench-{stamp}.md").write_text(md)
    print(md)


def _num(x: float | None) -> str:
    return f"{x:,.0f}" if x else "–"


def _ratio(a: float, b: float | None) -> str:
    return f"{a / b:.2f}×" if b else "–"


def render(r: dict) -> str:
    lines = [f"**{r['date']} — {r['hardware']}** — {r['model']}"]
    if r.get("patched"):
        lines += [
            "",
            (
                "| tokens × seqs | patched tok/s | stock tok/s | patched/stock | transformers fp32 tok/s "
                "| patched/transformers |"
            ),
            "|---|---|---|---|---|---|",
        ]
    for i, row in enumerate(r["patched"]["results"] if r.get("patched") else []):
        ours = row["tok_s"]
        stock = (r.get("stock", {}).get("results") or [{}] * (i + 1))[i].get("tok_s")
        tf = (r.get("transformers_fp32") or [{}] * (i + 1))[i].get("tok_s")
        cells = [
            f"{row['length']} × {row['seqs']}",
            f"{ours:,.0f}",
            _num(stock),
            _ratio(ours, stock),
            _num(tf),
            _ratio(ours, tf),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if r.get("llama_server") and r.get("patched"):
        lines += [
            "",
            "| tokens × seqs | ours tok/s | llama-server tok/s | ours/llama-server | cosine |",
            "|---|---|---|---|---|",
        ]
        for ours, peer in zip(r["patched"]["results"], r["llama_server"], strict=False):
            cos = peer.get("cosine_vs_ours")
            lines.append(
                f"| {ours['length']} × {ours['seqs']} | {ours['tok_s']:,.0f} | {peer['tok_s']:,.0f} | "
                f"{_ratio(ours['tok_s'], peer['tok_s'])} | {'' if cos is None else f'{cos:.6f}'} |"
            )
    if r.get("contexts"):
        lines += ["", "| contexts | threads each | tok/s (64 × 128 tokens) |", "|---|---|---|"]
        lines += [f"| {c['contexts']} | {c['threads_each']} | {c['tok_s']:,.0f} |" for c in r["contexts"]]
    if r.get("packing"):
        lines += ["", packing.render(r["packing"])]
    if r.get("latency"):
        lines += latency.render(r["latency"])
    if r.get("rerank"):
        lines += [
            "",
            "Rerank (Qwen3-Reranker-0.6B shape, Q8_0, one query against N chunks):",
            "",
            rerank.render(r["rerank"]),
        ]
    if r.get("ocr"):
        lines += ocr.render(r["ocr"])
    if r.get("answer"):
        lines += ["", answer.render(r["answer"])]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
