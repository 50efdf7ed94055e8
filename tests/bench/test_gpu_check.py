"""`make gpu-check --dry-run`: every section of the GPU proof runs on the CPU with tiny models, so that the
one command prepared for a GPU machine cannot rot between the rare runs on one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = ("parity", "throughput", "latency", "rerank", "ocr")
DRY_RUN_LIMIT_S = 900  # generous for a shared machine; on two idle cores it takes under a minute


@pytest.mark.slow
def test_dry_run_runs_every_section_and_writes_the_report(tmp_path):
    out = tmp_path / "gpu-check"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHON": sys.executable}
    env.pop("KB_LLAMA_SERVER", None)
    run = subprocess.run(
        ["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--dry-run", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=DRY_RUN_LIMIT_S,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = json.loads((out / "report" / "gpu-check.json").read_text())
    assert report["dry_run"] is True
    sections = report["sections"]
    for name in SECTIONS:
        assert sections[name]["status"] == "ok", (
            name,
            sections[name],
            (out / "report" / "log.txt").read_text()[-3000:],
        )
        assert (out / "report" / f"{name}.md").read_text().startswith("## ")

    parity = sections["parity"]["data"]
    against = {(r["case"], r["against"]) for r in parity["rows"]}
    assert {
        ("packed", "transformers fp32 CPU"),
        ("single", "kb CPU"),
        ("queries", "transformers fp32 CPU"),
    } <= against
    assert all(r["pass"] for r in parity["rows"])
    switch = parity["switch"]  # this CPU build has no switch: the probe must say so, not pretend
    assert switch["in_build"] is False and switch["off"]["has_logits"] is False

    tp = sections["throughput"]["data"]
    assert {r["engine"] for r in tp["ingest"]} == {"kb", "unpatched"}
    assert all(r["tok_s"] > 0 and 0 <= r["host_share"] < 1 for r in tp["ingest"])
    assert {p["engine"] for p in tp["peers"]} >= {"kb", "unpatched"}
    assert any("llama-server" in s for s in tp["skipped"])

    lat = sections["latency"]["data"]
    assert [c["concurrency"] for c in lat["concurrency"]] == [1, 16, 64]
    assert {r["mode"] for r in lat["rows"]} == {"dense", "hybrid"}
    assert sections["rerank"]["data"]["rows"][0]["candidates"] == 20
    assert sections["ocr"]["data"]["ocr"]["chars"] > 0

    targets = {t["target"]: t for t in report["targets"]}
    assert targets["parity, min cosine GPU vs CPU"]["met"] is True
    assert targets["kb / unpatched engine, same configuration"]["value"] is None  # no switch: not measured
    assert targets["query P50, hybrid, one client"]["value"] > 0
    md = (out / "report" / "gpu-check.md").read_text()
    assert "DRY RUN" in md and "| target | goal | measured | met | where |" in md and "## VRAM" in md


def test_the_switch_patch_applies_on_top_of_the_engine_patch():
    """The GPU build applies both; the switch must keep applying to the same sources (checked on the files
    it touches, as the engine patch left them, without the sdist)."""
    from bench.gpu.common import MAIN_PATCH, SWITCH_PATCH

    main, switch = MAIN_PATCH.read_text(), SWITCH_PATCH.read_text()
    touched = {line[6:] for line in switch.splitlines() if line.startswith("+++ b/")}
    assert touched <= {line[6:] for line in main.splitlines() if line.startswith("+++ b/")}
    # every context line the switch expects from the engine patch is one the engine patch adds
    for marker in ("llama_kb_patch_level", "if (!cparams.embeddings) {", "LLM_ARCH_QWEN3);"):
        assert marker in main and marker in switch
    assert "KB_LLAMA_SKIP_LM_HEAD" in switch
