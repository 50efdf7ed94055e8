"""Real `kb eval` reports for the tests of the report listing, the service and the Evaluation page,
written by ``evaluate.write_report`` itself from hand-made results."""

from __future__ import annotations

from pathlib import Path

from kb.tools.evaluate import LATENCY, QUALITY, ConfigResult, EvalConfig, EvalReport, write_report

OLD_STAMP = "20240101-120000"  # a time before any report a test writes now
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def result(name: str, value: float, **config) -> ConfigResult:
    metrics = {**dict.fromkeys(QUALITY, value), **dict(zip(LATENCY, (12.5, 40.0), strict=True)), "n": 4}
    index = {
        "model": "tiny.gguf",
        "dim": 64,
        "chunk_tokens": 128,
        "chunk_overlap": 16,
        "chunks": 9,
        "mean_chunk_tokens": 50.0,
        "seconds": 0.1,
    }
    return ConfigResult(EvalConfig(name, **config), metrics, index, {"lang: en": metrics}, [])


def write_sample(out_dir: Path, name: str = "traps", configs: tuple[str, ...] = ("dense", "hybrid")) -> str:
    """A report of ``configs`` (scores 0.5, 0.75, …) written now; returns its name (the file stem)."""
    results = [result(c, 0.5 + i / 4, hybrid=i > 0) for i, c in enumerate(configs)]
    report = EvalReport(name, "data/eval/traps", 4, results, ["a warning about <b>traps</b>"])
    return write_report(report, out_dir)["json"].stem


def backdate(out_dir: Path, stem: str) -> str:
    """Renames a report's files as if written at ``OLD_STAMP``; returns the new stem."""
    old = f"{stem.rsplit('-', 2)[0]}-{OLD_STAMP}"
    for suffix in ("json", "md", "png"):
        (out_dir / f"{stem}.{suffix}").rename(out_dir / f"{old}.{suffix}")
    return old
