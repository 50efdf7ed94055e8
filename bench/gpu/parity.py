"""Parity on the GPU: kb's vectors there against reference vectors computed on this machine's CPU.

The references (``references``, run by ``make gpu-check-prepare`` and by the dry run) hold, for the
parity test's texts and queries, transformers' float32 vectors over the tiny F32 model and kb's own
CPU vectors for every model, each case embedded as the GPU will embed it: all documents in one
packed call, one at a time, packed with one KV stream per input, queries with the instruction. The
GGUF files are rebuilt on the GPU machine from the same seed; their SHA-256 must equal the
references' or the row says the numbers are not comparable. ``switch_probe`` checks the bench's
LM-head switch: with it off, an embeddings context has logits again and the same vectors.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from bench.gpu.common import PARITY_COS, SWITCH_ENV, Recorder, run_child

CASES = ("packed", "single", "kv_split", "queries")
STREAM_TOKENS = 64  # the parity test's: the longer texts go to the unified context


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def _embedder(path: Path, gpu: bool, kv_split: bool):
    from ingest.model.embedder import Embedder, EngineConfig
    from ingest.model.engine import LlamaModel
    from ingest.model.recipes import QWEN3

    cfg = EngineConfig(
        n_ctx=1024, n_batch=1024, n_ubatch=256, n_seq_max=8, kv_split=kv_split, stream_tokens=STREAM_TOKENS
    )
    return Embedder(LlamaModel(path, gpu=gpu), QWEN3, None, cfg)


def embed_cases(
    path: Path, gpu: bool, texts: list[str], queries: list[str], task: str
) -> dict[str, np.ndarray]:
    """kb's normalised vectors of every case, on the GPU (when the build offloads) or the CPU."""
    out: dict[str, np.ndarray] = {}
    emb = _embedder(path, gpu, kv_split=False)
    try:
        out["packed"] = emb.embed_documents(texts)
        out["single"] = np.vstack([emb.embed_documents([t]) for t in texts])
        out["queries"] = emb.embed_queries(queries, task=task)
        out["offloaded"] = np.asarray(emb.model.offloaded)
    finally:
        emb.close()
    emb = _embedder(path, gpu, kv_split=True)
    try:
        out["kv_split"] = emb.embed_documents(texts)
    finally:
        emb.close()
    return out


def references(specs: dict, dest: Path, with_transformers: bool = True) -> Path:
    """Write ``reference.json`` (texts, model specs, SHA-256) and ``reference.npz`` (vectors) to ``dest``.

    ``specs``: name -> modelgen.ModelSpec. Runs here, where the test group (transformers) is installed."""
    from dataclasses import asdict

    from tests.helpers import modelgen
    from tests.helpers.qwen_vocab import hf_tokenizer, load_qwen3_vocab
    from tests.helpers.reference import get_detailed_instruct, reference_embed
    from tests.model.test_parity_qwen3 import QUERIES, TASK, TEXTS

    dest.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    meta: dict = {"texts": TEXTS, "queries": QUERIES, "task": TASK, "models": {}}
    for name, spec in specs.items():
        path = modelgen.build(spec)
        meta["models"][name] = {"spec": {**asdict(spec), "shape": asdict(spec.shape)}, "sha256": sha256(path)}
        vecs = embed_cases(path, False, TEXTS, QUERIES, TASK)
        for case in CASES:
            arrays[f"{name}/kb_cpu/{case}"] = vecs[case]
        if with_transformers and spec.ftype == "f32":
            vocab = load_qwen3_vocab()
            model, tok = modelgen.hf_model(spec), hf_tokenizer(vocab)
            eod = vocab.token_id(modelgen.EOT)
            arrays[f"{name}/transformers/documents"] = reference_embed(model, tok, TEXTS, eod)
            instructed = [get_detailed_instruct(TASK, q) for q in QUERIES]
            arrays[f"{name}/transformers/queries"] = reference_embed(model, tok, instructed, eod)
    np.savez_compressed(dest / "reference.npz", **arrays)
    (dest / "reference.json").write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    return dest / "reference.json"


def spec_from_json(d: dict):
    from tests.helpers import modelgen

    return modelgen.ModelSpec(**{**d, "shape": modelgen.Qwen3Shape(**d["shape"])})


def _min_cos(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=1)))


def parity_section(args: dict, rec: Recorder) -> None:
    """Rows: model, case, against (kb CPU / transformers), min cosine, pass."""
    from tests.helpers import modelgen

    ref_dir = Path(args["reference_dir"])
    meta = json.loads((ref_dir / "reference.json").read_text())
    ref = np.load(ref_dir / "reference.npz")
    rec.set("bar", PARITY_COS)
    for name, m in meta["models"].items():
        path = modelgen.build(spec_from_json(m["spec"]))
        same_file = sha256(path) == m["sha256"]
        vecs = embed_cases(path, True, meta["texts"], meta["queries"], meta["task"])
        rec.set(f"offloaded/{name}", bool(vecs["offloaded"]))
        for case in CASES:
            against = [("kb CPU", ref[f"{name}/kb_cpu/{case}"])]
            key = f"{name}/transformers/{'queries' if case == 'queries' else 'documents'}"
            if key in ref:
                against.append(("transformers fp32 CPU", ref[key]))
            for label, r in against:
                cos = _min_cos(vecs[case], r)
                rec.append(
                    "rows",
                    {
                        "model": name,
                        "case": case,
                        "against": label,
                        "n": len(r),
                        "min_cosine": cos,
                        "same_gguf": same_file,
                        "pass": same_file and cos >= PARITY_COS,
                    },
                )


def switch_check(args: dict, rec: Recorder) -> None:
    """The switch on and off, each in its own process: patch level, logits, and the vectors' difference."""
    on = run_child("switch_probe", args)
    off = run_child("switch_probe", args, {SWITCH_ENV: "0"})
    diff = float(np.abs(np.asarray(on.pop("vectors")) - np.asarray(off.pop("vectors"))).max())
    rec.set("switch", {"on": on, "off": off, "max_abs_diff": diff, "in_build": off["patch_level"] == 0})


def switch_probe(args: dict, rec: Recorder) -> None:
    """Run under the environment the caller chose: patch level, whether an embeddings context has
    logits, and the packed vectors of the parity texts."""
    import llama_cpp

    from ingest.model.engine import patch_level

    meta = json.loads((Path(args["reference_dir"]) / "reference.json").read_text())
    from tests.helpers import modelgen

    name = next(iter(meta["models"]))
    emb = _embedder(modelgen.build(spec_from_json(meta["models"][name]["spec"])), True, kv_split=False)
    try:
        vectors = emb.embed_documents(meta["texts"])
        ctx = emb._query_context
        ctx.embed([emb.tokens("hello")])
        has_logits = bool(llama_cpp.llama_get_logits_ith(ctx._ctx, 0))
    finally:
        emb.close()
    rec.set("patch_level", patch_level())
    rec.set("has_logits", has_logits)
    rec.set("vectors", vectors.tolist())


def render(r: dict) -> list[str]:
    lines = [
        f"Parity: min cosine over the parity test's texts and queries, GPU against CPU; bar {r.get('bar')}.",
        "",
        "| model | case | against | inputs | min cosine | same GGUF | pass |",
        "|---|---|---|---:|---:|---|---|",
    ]
    for x in r.get("rows", []):
        lines.append(
            f"| {x['model']} | {x['case']} | {x['against']} | {x['n']} | {x['min_cosine']:.7f} | "
            f"{'yes' if x['same_gguf'] else 'NO'} | {'yes' if x['pass'] else '**no**'} |"
        )
    sw = r.get("switch")
    if sw:
        lines += [
            "",
            "LM-head switch (one build, `KB_LLAMA_SKIP_LM_HEAD`): "
            + "; ".join(
                f"{k}: patch level {v.get('patch_level')}, embeddings context has logits {v.get('has_logits')}"
                for k, v in sw.items()
                if isinstance(v, dict)
            )
            + (
                f"; max abs difference of the vectors {sw['max_abs_diff']:.2e}"
                if "max_abs_diff" in sw
                else ""
            ),
        ]
    return lines
