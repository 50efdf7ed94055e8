"""What a user waits for on the GPU: query latency over a large store, rerank, OCR; and what the
run builds beforehand while the CUDA build compiles (models, the filled store).

Latency reuses ``bench.latency``: the store is filled once by ``fill_store`` (chunk-shaped points,
BM25 sparse vectors, payloads, then optimised) and kept for a second run; queries go through
``kb.search.query.search`` with the query embedder on the GPU, sequentially (dense and hybrid) and
from 1, 16 and 64 threads at once through the service's query guard. Rerank reuses
``bench.rerank``, OCR ``bench.ocr`` (reporting which ONNX Runtime providers exist).
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np

from bench.gpu.common import Recorder
from bench.gpu.parity import spec_from_json

STORE_DONE = "filled.json"


def prepare_models(args: dict, rec: Recorder) -> None:
    """Build every GGUF the run needs (cached by modelgen), the parity ones with their SHA-256."""
    from bench.gpu.parity import sha256
    from tests.helpers import modelgen

    for name, spec_json in args["models"].items():
        t = time.perf_counter()
        path = modelgen.build(spec_from_json(spec_json))
        digest = sha256(path) if name in args.get("hash", ()) else None
        rec.append(
            "models", {"name": name, "path": str(path), "s": time.perf_counter() - t, "sha256": digest}
        )


def fill_store(args: dict, rec: Recorder) -> None:
    """The latency section's store, filled and optimised once under ``args["path"]``."""
    from bench import latency
    from ingest.store.edge import EdgeStore

    root = Path(args["path"])
    if (root / STORE_DONE).exists():
        rec.set("fill", {"cached": True, **json.loads((root / STORE_DONE).read_text())})
        return
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    store = EdgeStore(root / "c", "bench")
    try:
        store.ensure_collection(args["dim"], {"bench": True})
        # the same generators, seeds and order as bench.latency.latency_run
        corpus = latency.Corpus()
        [corpus.query() for _ in range(args["queries"])]
        stats = latency.fill(store, args["points"], args["dim"], corpus, np.random.default_rng(2))
    finally:
        store.close()
    stats = {"points": args["points"], **stats}
    (root / STORE_DONE).write_text(json.dumps(stats))
    rec.set("fill", {"cached": False, **stats})


def latency_section(args: dict, rec: Recorder) -> None:
    from bench import latency
    from ingest.model.embedder import Embedder, EngineConfig
    from ingest.model.engine import LlamaModel
    from ingest.model.gpuinfo import query_vram
    from ingest.model.recipes import QWEN3
    from ingest.store.edge import EdgeStore
    from tests.helpers import modelgen

    root = Path(args["store"])
    deadline = time.monotonic() + args.get("wait_store_s", 0)
    while not (root / STORE_DONE).exists() and time.monotonic() < deadline:
        time.sleep(1)
    if not (root / STORE_DONE).exists():
        raise RuntimeError(f"the store under {root} was not filled in time")
    fill = json.loads((root / STORE_DONE).read_text())
    rec.set("fill", fill)
    model = LlamaModel(modelgen.build(spec_from_json(args["spec"])))
    emb = Embedder(model, QWEN3, None, EngineConfig(n_ctx=2048, n_batch=2048, n_ubatch=512), "bench")
    corpus = latency.Corpus()
    texts = [corpus.query() for _ in range(args["queries"])]
    store = EdgeStore(root / "c", "bench")
    try:
        rec.set("offloaded", model.offloaded)
        rec.set("dim", model.n_embd)
        for hybrid in (False, True):
            rec.append("rows", {**fill, **latency.query_run(emb, store, texts, hybrid)})
        rec.set("vram_mb", (query_vram() or {}).get("this_process_mb"))
        for row in latency.concurrency_run(emb, store, texts, tuple(args["concurrency"])):
            rec.append("concurrency", {"points": args["points"], **row})
    finally:
        store.close()
        emb.close()


def rerank_section(args: dict, rec: Recorder) -> None:
    from bench import rerank
    from ingest.model.gpuinfo import query_vram
    from tests.helpers import modelgen

    path = modelgen.build(spec_from_json(args["spec"]))
    rows = rerank.rerank_latency(path, tuple(args["candidates"]), reps=args["reps"])
    rec.set("rows", rows)
    rec.set("vram_mb", (query_vram() or {}).get("this_process_mb"))


def ocr_section(args: dict, rec: Recorder) -> None:
    import tempfile

    import onnxruntime

    from bench import ocr

    rec.set("providers", onnxruntime.get_available_providers())
    rec.set("onnxruntime", onnxruntime.__version__)
    with tempfile.TemporaryDirectory() as tmp:
        pdf = ocr.write_text_pdf(Path(tmp) / "page.pdf", ocr.VARIANTS["typographic"], 1, lines=args["lines"])
        rec.set("ocr", {"lines": args["lines"], **ocr.ocr_page_run(pdf, args["reps"])})


def render_latency(r: dict) -> list[str]:
    lines = []
    if r.get("fill"):
        f = r["fill"]
        lines.append(
            f"Store: {f['points']:,} points (upsert {f['upsert_points_s']:,.0f} points/s, optimize "
            f"{f['optimize_s']:,.0f} s{', reused' if f.get('cached') else ''}); query embedder on "
            f"{'GPU' if r.get('offloaded') else 'CPU'}, {r.get('vram_mb') or '–'} MiB."
        )
    if r.get("rows"):
        from bench import latency

        lines += latency.render({**r, "chunk_chars": latency.CHUNK_CHARS})
    return lines


def render_rerank(r: dict) -> list[str]:
    from bench import rerank

    return (
        [f"Reranker VRAM: {r.get('vram_mb') or '–'} MiB", "", rerank.render(r["rows"])]
        if r.get("rows")
        else []
    )


def render_ocr(r: dict) -> list[str]:
    lines = [f"ONNX Runtime {r.get('onnxruntime')}, providers: {', '.join(r.get('providers', []))}."]
    o = r.get("ocr")
    if o:
        lines += [
            "",
            f"| OCR, one A4 page of {o['lines']} lines at {o['dpi']} dpi, {o['threads']} thread | s/page | pages/s |",
            "|---|---:|---:|",
            f"| first page (helper start, models loaded) | {o['first_page_s']:.2f} | – |",
            f"| each page after (median of {o['reps']}) | {o['page_s']:.2f} | {o['pages_per_s']:.2f} |",
        ]
    return lines
