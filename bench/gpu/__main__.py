"""`make gpu-check` (``scripts/gpu_check.sh``): the GPU proof, one command, every section timed and kept.

On a GPU machine (offline, with ``artifacts/gpu-check/`` from ``make gpu-check-prepare``): builds the
CUDA engine and llama-server (cached), makes the throwaway virtualenv, builds the shape-exact models
and fills the latency store while the build compiles, then runs parity, throughput, latency, rerank
and OCR (and 4B/8B with ``--big``), each in its own process under its own limit inside one budget.
Each section writes ``<name>.json`` as it goes and ``<name>.md`` when it ends; ``gpu-check.md`` and
``gpu-check.json`` gather everything with the targets. ``--dry-run``: the same sections on the CPU
with tiny models in this environment, no build.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from bench.gpu import build as gbuild
from bench.gpu import parity, report, serving, throughput
from bench.gpu.common import ARTIFACTS, ROOT, python_env, run_limited, tail

SECTIONS = ("parity", "throughput", "latency", "rerank", "ocr", "big")
LIMITS_S = {"parity": 60, "throughput": 210, "latency": 150, "rerank": 45, "ocr": 60, "big": 300}
BUDGET_S = 540
BUILD_LIMIT_S = 450
MODELS_LIMIT_S = 240
STORE_LIMIT_S = 420
MIN_SECTION_S = 10
TITLES = {
    "parity": "Parity",
    "throughput": "Embedding throughput",
    "latency": "Query latency",
    "rerank": "Rerank",
    "ocr": "OCR",
    "big": "Throughput, 4B and 8B shapes",
}
RENDER = {
    "parity": parity.render,
    "throughput": throughput.render,
    "big": throughput.render,
    "latency": serving.render_latency,
    "rerank": serving.render_rerank,
    "ocr": serving.render_ocr,
}


def _spec(spec) -> dict:
    return {**asdict(spec), "shape": asdict(spec.shape)}


def plan(dry: bool, big: bool, build: Path, reference_dir: Path, server: str | None) -> dict:
    """Every section's arguments (and the background jobs'): tiny on a dry run, shape-exact on a GPU."""
    from tests.helpers import modelgen

    if dry:
        emb = {"tiny-f16": modelgen.ModelSpec(ftype="f16")}
        query, reranker = modelgen.ModelSpec(), modelgen.ModelSpec(kind="reranker")
        ingest = {"length": 64, "inputs": 32, "reps": 1, "configs": [[2, True]]}
        ingest |= {"unpatched_inputs": 16, "unpatched_splits": [False]}
        cases, points, dim, queries, ocr_lines = [[64, 8, 1, 512]], 1_000, 64, 10, 1
    else:
        q06 = modelgen.ModelSpec(shape=modelgen.QWEN3_0_6B, ftype="q8_0")
        emb = {"0.6b-f16": modelgen.ModelSpec(shape=modelgen.QWEN3_0_6B, ftype="f16"), "0.6b-q8_0": q06}
        query, reranker = q06, modelgen.ModelSpec(shape=modelgen.QWEN3_0_6B, ftype="q8_0", kind="reranker")
        configs = [[k, split] for k in (1, 2, 4) for split in (False, True)]
        ingest = {"length": 256, "inputs": 512, "reps": 3, "configs": configs}
        ingest |= {"unpatched_inputs": 128, "unpatched_splits": [False, True]}
        cases, points, dim, queries, ocr_lines = (
            [[256, 32, 10, 8192], [2048, 4, 10, 8192]],
            100_000,
            1024,
            200,
            58,
        )
    big_models = {name: modelgen.ModelSpec(shape=shape, ftype="q8_0") for name, shape in BIG_SHAPES.items()}
    ref = (
        json.loads((reference_dir / "reference.json").read_text())
        if (reference_dir / "reference.json").exists()
        else {}
    )
    models = {
        **{k: v["spec"] for k, v in ref.get("models", {}).items()},
        **{k: _spec(v) for k, v in emb.items()},
    }
    models |= {"query": _spec(query), "reranker": _spec(reranker)}
    if big and not dry:
        models |= {k: _spec(v) for k, v in big_models.items()}
    store = build / f"store-{points}-{dim}"
    return {
        "prepare_models": {"models": models, "hash": list(ref.get("models", {}))},
        "fill_store": {"path": str(store), "points": points, "dim": dim, "queries": queries},
        "parity": {"reference_dir": str(reference_dir)},
        "throughput": {
            "models": {k: _spec(v) for k, v in emb.items()},
            "ingest": ingest,
            "peer_cases": cases,
            "llama_server": server,
            "server_args": [] if dry else ["-ngl", "999"],
            "transformers": True,
        },
        "big": {
            "models": {k: _spec(v) for k, v in big_models.items()},
            "ingest": {**ingest, "configs": [[1, False], [1, True], [2, False], [2, True]], "inputs": 256},
            "peer_cases": cases,
            "peers": False,
        },
        "latency": {
            "store": str(store),
            "points": points,
            "spec": _spec(query),
            "queries": queries,
            "concurrency": [1, 16, 64],
            "wait_store_s": STORE_LIMIT_S,
        },
        "rerank": {"spec": _spec(reranker), "candidates": [20], "reps": 1 if dry else 5},
        "ocr": {"lines": ocr_lines, "reps": 1 if dry else 3},
    }


# Qwen3-Embedding-4B and -8B: 36 layers, 8 KV heads of 128
BIG_SHAPES: dict = {}


def _big_shapes() -> None:
    from tests.helpers import modelgen

    BIG_SHAPES["4b-q8_0"] = modelgen.Qwen3Shape(
        n_layer=36, hidden=2560, n_head=32, n_head_kv=8, head_dim=128, ffn=9728
    )
    BIG_SHAPES["8b-q8_0"] = modelgen.Qwen3Shape(
        n_layer=36, hidden=4096, n_head=32, n_head_kv=8, head_dim=128, ffn=12288
    )


VERSIONS = {
    "torch": "torch",
    "transformers": "transformers",
    "numpy": "numpy",
    "onnxruntime": "onnxruntime",
    "onnxruntime-gpu": "onnxruntime-gpu",
    "llama-cpp-python": "llama_cpp_python",
    "qdrant-edge-py": "qdrant-edge-py",
    "rapidocr-onnxruntime": "rapidocr-onnxruntime",
}


def _versions(python: str) -> dict:
    """The versions of what the sections import, as ``python`` sees them (None: absent)."""
    code = (
        "import json, importlib.metadata as md\nout = {}\n"
        f"for k, d in {VERSIONS!r}.items():\n"
        "    try:\n        out[k] = md.version(d)\n    except md.PackageNotFoundError:\n        out[k] = None\n"
        "print(json.dumps(out))"
    )
    try:
        res = subprocess.run(
            [python, "-c", code], capture_output=True, text=True, timeout=60, env=python_env(), check=False
        )
        return json.loads(res.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return {}


class Run:
    def __init__(self, out: Path, budget_s: float, dry: bool) -> None:
        self.report, self.build = out / "report", out / "build"
        self.report.mkdir(parents=True, exist_ok=True)
        self.build.mkdir(parents=True, exist_ok=True)
        self.log = self.report / "log.txt"
        self.log.write_text("")
        self.deadline = time.monotonic() + budget_s
        self.dry = dry
        self.sections: dict[str, dict] = {}
        self.status: dict[str, dict] = {}

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def say(self, line: str) -> None:
        print(line, flush=True)
        with self.log.open("a") as f:
            f.write(line + "\n")

    def section(self, name: str, python: str, args: dict, env: dict, limit: float) -> None:
        result = self.report / f"{name}.json"
        result.unlink(missing_ok=True)
        limit = min(limit, self.left())
        if limit < MIN_SECTION_S:
            self.finish(name, {"status": f"not run: out of time ({self.left():.0f} s of the budget left)"})
            return
        self.say(f"{name}: running (limit {limit:.0f} s)")
        cmd = [python, "-m", "bench.gpu.sections", name, json.dumps(args), str(result)]
        code, secs = run_limited(cmd, limit, self.log, env)
        data = json.loads(result.read_text()) if result.exists() else {}
        if code == 0:
            status = "ok"
        elif code is None:
            status = f"cut off at its limit of {limit:.0f} s: partial"
        else:
            status = f"failed (exit {code}): partial"
        self.finish(name, {"status": status, "seconds": round(secs, 1)}, data)

    def finish(self, name: str, status: dict, data: dict | None = None, skip_reason: str = "") -> None:
        data = data or {}
        self.sections[name], self.status[name] = data, status
        lines = [
            f"## {TITLES.get(name, name)}",
            "",
            f"Status: {status['status']}" + (f", {status['seconds']} s" if "seconds" in status else "") + ".",
            "",
        ]
        try:
            lines += RENDER[name](data) if data else []
        except Exception as err:  # noqa: BLE001 - a partial result may lack what the table needs
            lines += [f"(table not rendered from the partial result: {type(err).__name__}: {err})"]
        if data.get("error"):
            lines += ["", "```", data["error"][-1500:], "```"]
        elif status["status"].startswith("failed"):
            lines += ["", "```", tail(self.log), "```"]
        (self.report / f"{name}.md").write_text("\n".join(lines) + "\n")
        self.say(f"{name}: {status['status']}")


def main() -> None:
    ap = argparse.ArgumentParser(prog="make gpu-check", description=__doc__.splitlines()[0])
    ap.add_argument("--dry-run", action="store_true", help="CPU, tiny models, this environment, no build")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default data/gpu-check[-dry])")
    ap.add_argument("--artifacts", type=Path, default=ARTIFACTS)
    ap.add_argument("--budget-s", type=float, default=BUDGET_S, help="the whole run, build included")
    ap.add_argument("--big", action="store_true", help="also the 4B and 8B shapes (Q8_0)")
    ap.add_argument("--only", action="append", choices=SECTIONS, default=[])
    args = ap.parse_args()
    _big_shapes()
    out = args.out or ROOT / "data" / ("gpu-check-dry" if args.dry_run else "gpu-check")
    run = Run(out, args.budget_s, args.dry_run)
    started = time.time()
    facts = gbuild.gpu_facts()
    env_extra: dict[str, str] = {}
    build_info: dict = {}
    jobs: list[tuple[str, subprocess.Popen]] = []
    python = sys.executable
    server = os.environ.get("KB_LLAMA_SERVER") if args.dry_run else None
    if args.dry_run:
        ref_dir = run.build / "reference"
        if not (ref_dir / "reference.json").exists():
            from bench.gpu.prepare import reference_specs

            parity.references(reference_specs(dry=True), ref_dir)
    else:
        ref_dir = args.artifacts
        missing = [p for p in ("sdist.json", "wheels", "reference.json") if not (args.artifacts / p).exists()]
        if missing:
            sys.exit(
                f"{args.artifacts} lacks {', '.join(missing)}: run `make gpu-check-prepare` where there is network"
            )
        env_extra["KB_TEST_CACHE"] = str(run.build / "cache")
    sections = [s for s in SECTIONS if (s != "big" or args.big) and (not args.only or s in args.only)]
    p = plan(args.dry_run, args.big, run.build, ref_dir, server)
    try:
        if not args.dry_run:
            with run.log.open("a") as log:
                python = str(gbuild.make_venv(run.build, args.artifacts / "wheels", log))
            env_extra["LD_LIBRARY_PATH"] = os.pathsep.join(
                filter(
                    None, [str(gbuild.engine_lib_dir(run.build / "venv")), os.environ.get("LD_LIBRARY_PATH")]
                )
            )
        env = python_env(env_extra)
        # models and the store are CPU work: they go on while the CUDA build compiles
        for name, limit in (("prepare_models", MODELS_LIMIT_S), ("fill_store", STORE_LIMIT_S)):
            if name == "fill_store" and "latency" not in sections:
                continue
            cmd = [
                python,
                "-m",
                "bench.gpu.sections",
                name,
                json.dumps(p[name]),
                str(run.build / f"{name}.json"),
            ]
            jobs.append(
                (
                    name,
                    subprocess.Popen(
                        cmd,
                        cwd=ROOT,
                        env=env,
                        start_new_session=True,
                        stdout=run.log.open("ab"),
                        stderr=subprocess.STDOUT,
                    ),
                )
            )
        if not args.dry_run:
            run.say(f"building the CUDA engine for sm_{gbuild.cuda_arch(facts)} …")
            with run.log.open("a") as log:
                build_info = gbuild.build_engine(args.artifacts, run.build, gbuild.cuda_arch(facts), log)
                gbuild.install(run.build / "venv", [Path(build_info["wheel"])], log)
            p["throughput"]["llama_server"] = build_info.get("server")
            built = "cached" if build_info["cached"] else f"built in {build_info['seconds']:.0f} s"
            run.say(f"engine: {built}")
        models_job = jobs[0][1]
        models_job.wait(timeout=max(1.0, min(MODELS_LIMIT_S, run.left())))
        for name in sections:
            run.section(name, python, p[name], env, LIMITS_S[name])
    except Exception as err:  # noqa: BLE001 - whatever stopped the run, what was measured is written
        run.say(f"stopped: {type(err).__name__}: {err}")
        build_info["error"] = f"{type(err).__name__}: {err}"
    finally:
        from bench.gpu.common import kill_group

        for _, job in jobs:
            if job.poll() is None:
                kill_group(job)
    for name in sections:
        if name not in run.status:
            run.finish(name, {"status": "not run: " + build_info.get("error", "stopped before it")})
    versions = _versions(python)
    write_summary(run, facts, versions, build_info, started, args.dry_run)


def write_summary(run: Run, facts: dict, versions: dict, build_info: dict, started: float, dry: bool) -> None:
    hardware = f"{facts.get('gpu') or 'no GPU'} ({facts.get('gpu_memory') or '–'}, driver {facts.get('driver') or '–'}), {facts.get('cores')} cores"
    head = [
        f"# GPU check — {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}"
        + (" — DRY RUN (CPU, tiny models: not a measurement)" if dry else ""),
        "",
        f"Hardware: {hardware}; {facts.get('nvcc') or 'no nvcc'}.",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v is not None) + ".",
        f"Engine: {json.dumps({k: v for k, v in build_info.items() if k in ('key', 'cached', 'seconds', 'wheel_s', 'server_error', 'error')})}",
        f"Whole run: {time.time() - started:.0f} s.",
        "",
        "## Targets",
        "",
    ]
    tgt = report.targets(run.sections)
    vram = report.vram_rows(run.sections)
    body = [(run.report / f"{n}.md").read_text() for n in run.status]
    md = "\n".join(
        [*head, *report.render_targets(tgt), "", "## VRAM", "", *report.render_vram(vram), "", *body]
    )
    (run.report / "gpu-check.md").write_text(md)
    (run.report / "gpu-check.json").write_text(
        json.dumps(
            {
                "date": time.strftime("%Y-%m-%d", time.localtime(started)),
                "dry_run": dry,
                "hardware": facts,
                "versions": versions,
                "engine": build_info,
                "targets": tgt,
                "vram": vram,
                "sections": {n: {**run.status[n], "data": run.sections.get(n, {})} for n in run.status},
            },
            indent=1,
            default=str,
        )
    )
    print(md)


if __name__ == "__main__":
    main()
