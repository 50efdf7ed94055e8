"""Embedding throughput on the GPU, kb's engine against every peer, with the VRAM each configuration holds.

Two tables per model. **Ingest path**: ``Embedder.embed_token_batches`` (what ingest runs) over
inputs of the default chunk size, with kb's default engine settings, for 1 and K contexts and a
unified or a per-input KV layout; each configuration in a process of its own, so that its VRAM (the
weights, every context's KV cache and compute buffers) is read alone, and the unpatched engine (the
same build with the LM-head switch off) beside it. **Peers**: one packed decode of the same token
sequences through kb's engine (``bench.engine_worker``), the unpatched engine, llama.cpp's
``llama-server`` from the same build (``bench.peer_llama_server``) and transformers in bfloat16
(``bench.__main__.transformers_run``). Each ingest row also times the host's share: planning the
decodes and filling the batches without decoding, the part a faster GPU cannot shrink.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

import numpy as np

from bench.gpu.common import SWITCH_ENV, Recorder, run_child

VOCAB_DRAWN = 151000  # random ids are drawn below this, as in bench.engine_worker


def ingest_config(args: dict, rec: Recorder) -> None:
    """One configuration, in this process: tok/s, VRAM, host-side share. Run by ``ingest_run``."""
    from ingest.model.embedder import Embedder, EngineConfig
    from ingest.model.engine import LlamaModel, patch_level
    from ingest.model.gpuinfo import query_vram
    from ingest.model.packing import plan_batches
    from ingest.model.recipes import QWEN3

    model = LlamaModel(Path(args["model"]))
    eot = model.token_id("<|endoftext|>")
    rng = np.random.default_rng(5)
    length, n = args["length"], args["inputs"]
    seqs = [[*rng.integers(0, VOCAB_DRAWN, length - 1).tolist(), eot] for _ in range(n)]
    cfg = EngineConfig(n_contexts=args["contexts"], kv_split=args["kv_split"], **args.get("engine", {}))
    emb = Embedder(model, QWEN3, None, cfg)
    try:
        emb.embed_token_batches(seqs)  # warm-up: every buffer allocated
        times = []
        for _ in range(args["reps"]):
            t = time.perf_counter()
            emb.embed_token_batches(seqs)
            times.append(time.perf_counter() - t)
        vram = query_vram()
        ctx = emb._doc_contexts[0]
        t = time.perf_counter()
        for idx in plan_batches([len(s) for s in seqs], ctx.config.n_batch, ctx.config.n_seq_max):
            ctx._fill([seqs[i] for i in idx], logits_last_only=False)
        host_s = time.perf_counter() - t
        median = statistics.median(times)
        rec.set(
            "row",
            {
                "contexts": args["contexts"],
                "kv_split": args["kv_split"],
                "inputs": n,
                "length": length,
                "tok_s": n * length / median,
                "median_s": median,
                "reps": len(times),
                "host_fill_s": host_s,
                "host_share": host_s / median,
                "patch_level": patch_level(),
                "offloaded": model.offloaded,
                "vram_mb": (vram or {}).get("this_process_mb"),
                "gpu_used_mb": (vram or {}).get("used_mb"),
                "gpu_total_mb": (vram or {}).get("total_mb"),
            },
        )
    finally:
        emb.close()


def throughput_section(args: dict, rec: Recorder) -> None:
    from bench.__main__ import engine_run, transformers_run
    from bench.gpu.parity import spec_from_json
    from bench.peer_llama_server import llama_server_run
    from tests.helpers import modelgen

    rec.set("settings", {k: args[k] for k in ("ingest", "peer_cases")})
    unpatched = {SWITCH_ENV: "0"}
    for name, spec_json in args["models"].items():
        spec = spec_from_json(spec_json)
        path = modelgen.build(spec)
        ing = args["ingest"]
        base = {
            "model": str(path),
            "length": ing["length"],
            "reps": ing["reps"],
            "engine": ing.get("engine", {}),
        }
        for k, split in ing["configs"]:
            cfg = {**base, "contexts": k, "kv_split": split, "inputs": ing["inputs"]}
            rec.append("ingest", {"model": name, "engine": "kb", **run_child("ingest_config", cfg)["row"]})
        if not args.get("peers", True):
            continue
        for split in ing["unpatched_splits"]:  # the unpatched engine copies 151k logits a token: fewer inputs
            cfg = {**base, "contexts": 1, "kv_split": split, "inputs": ing["unpatched_inputs"], "reps": 2}
            row = run_child("ingest_config", cfg, unpatched)
            rec.append("ingest", {"model": name, "engine": "unpatched", **row["row"]})
        cases = [tuple(c) for c in args["peer_cases"]]
        for label, env in (("kb", None), ("unpatched", unpatched)):
            try:
                res = engine_run(Path(sys.executable), path, cases, env=env)
                rec.append(
                    "peers",
                    {
                        "model": name,
                        "engine": label,
                        "patch_level": res["patch_level"],
                        "rows": res["results"],
                    },
                )
            except Exception as err:  # noqa: BLE001 - one peer failing leaves the others
                rec.append("errors", f"{name} {label}: {err}")
        server = args.get("llama_server")
        if server and Path(server).is_file():
            for unified in (True, False):
                try:
                    rows = llama_server_run(
                        Path(server),
                        path,
                        cases,
                        kv_unified=unified,
                        extra_args=tuple(args.get("server_args", ())),
                    )
                    label = "llama-server" + ("" if unified else " (KV per input)")
                    rec.append("peers", {"model": name, "engine": label, "rows": rows})
                except Exception as err:  # noqa: BLE001
                    rec.append("errors", f"{name} llama-server: {str(err)[-800:]}")
        else:
            rec.append("skipped", f"{name}: llama-server: no binary from this build")
        if spec.ftype == "f16" and args.get("transformers"):
            try:
                import torch

                device = "cuda" if torch.cuda.is_available() else "cpu"
                rows = transformers_run(spec, cases, device=device, dtype=torch.bfloat16)
                rec.append("peers", {"model": name, "engine": f"transformers bf16 ({device})", "rows": rows})
            except Exception as err:  # noqa: BLE001
                rec.append("errors", f"{name} transformers: {str(err)[-800:]}")


def render(r: dict) -> list[str]:
    s = r.get("settings", {}).get("ingest", {})
    lines = [
        (
            f"Ingest path (`Embedder.embed_token_batches`, {s.get('inputs')} inputs of {s.get('length')} "
            "tokens, kb's default engine settings; VRAM as nvidia-smi lists this process; host = planning "
            "and filling the batches without decoding):"
        ),
        "",
        "| model | engine | contexts | KV | tok/s | host share | VRAM MiB | patch level |",
        "|---|---|---:|---|---:|---:|---:|---:|",
    ]
    for x in r.get("ingest", []):
        lines.append(
            f"| {x['model']} | {x['engine']} | {x['contexts']} | {'per input' if x['kv_split'] else 'unified'} | "
            f"{x['tok_s']:,.0f} | {100 * x['host_share']:.0f}% | {x['vram_mb'] if x['vram_mb'] else '–'} | "
            f"{x['patch_level']} |"
        )
    peers = r.get("peers", [])
    if peers:
        lines += ["", "Peers, one packed request of the same token sequences (tok/s, median):", ""]
        cases = [f"{c['length']} × {c['seqs']}" for c in peers[0]["rows"]]
        lines += ["| model | engine | " + " | ".join(cases) + " |", "|---|---|" + "---:|" * len(cases)]
        for p in peers:
            lines.append(
                f"| {p['model']} | {p['engine']} | "
                + " | ".join(f"{c['tok_s']:,.0f}" for c in p["rows"])
                + " |"
            )
    lines += [f"- skipped: {x}" for x in r.get("skipped", [])]
    lines += [f"- error: {x}" for x in r.get("errors", [])]
    return lines
