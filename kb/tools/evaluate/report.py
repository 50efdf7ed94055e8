"""Reports: Markdown tables, a PNG chart and JSON, written under the data folder and listed."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from kb.tools.evaluate.metrics import DEPTH, LABELS, LATENCY, QUALITY
from kb.tools.evaluate.runner import ConfigResult, EvalReport

REPORT_DIR = Path("eval") / "reports"  # under the data dir: reports, and the temporary indexes of a run
STAMP_FORMAT = "%Y%m%d-%H%M%S"  # a report's files are <name>-<stamp>.json/.md/.png
REPORT_STEM = re.compile(r"(?P<report>.+)-(?P<stamp>\d{8}-\d{6})")


# --- reporting -----------------------------------------------------------------------------------


def markdown_table(results: Sequence[ConfigResult]) -> str:
    head = ["Config", *(LABELS[m] for m in (*QUALITY, *LATENCY)), "Chunks"]
    rows = [
        [
            r.config.name,
            *(f"{r.metrics[m]:.3f}" for m in QUALITY),
            *(f"{r.metrics[m]:.1f}" for m in LATENCY),
            str(r.index["chunks"]),
        ]
        for r in results
    ]
    return _table(head, rows)


def depth_table(results: Sequence[ConfigResult]) -> str:
    """First-stage recall at the rerank depths, for the results that carry it (older reports do not)."""
    rows = [
        [r.config.name, *(f"{r.metrics[m]:.3f}" for m in DEPTH)]
        for r in results
        if all(m in r.metrics for m in DEPTH)
    ]
    if not rows:
        return ""
    return "First-stage recall at rerank depths (the hits before any rerank):\n\n" + _table(
        ["Config", *(LABELS[m] for m in DEPTH)], rows
    )


def group_table(results: Sequence[ConfigResult]) -> str:
    """Top-1 / MRR@10 per category and language (rows) and configuration (columns)."""
    names = sorted({g for r in results for g in r.groups})
    if not names:
        return ""
    rows = [
        [
            g,
            str(int(results[0].groups[g]["n"])),
            *(f"{r.groups[g]['top1']:.2f} / {r.groups[g]['mrr10']:.2f}" for r in results),
        ]
        for g in names
    ]
    return _table(["Top-1 / MRR@10", "n", *(r.config.name for r in results)], rows)


def setups(results: Sequence[ConfigResult]) -> str:
    """One line per configuration: what it ran with."""
    lines = []
    for r in results:
        i, c = r.index, r.config
        extra = [*(["hybrid"] if c.hybrid else []), *([f"rerank over {c.candidates}"] if c.rerank else [])]
        lines.append(
            f"- **{c.name}**: {i['model']}, dim {i['dim']}, "
            f"chunks {i['chunk_tokens']}/{i['chunk_overlap']} "
            f"tokens ({i['chunks']} chunks, mean {i['mean_chunk_tokens']} tokens), "
            f"{' + '.join(['dense', *extra])}"
        )
    return "\n".join(lines)


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def render_markdown(report: EvalReport) -> str:
    parts = [
        f"# {report.name}: {report.n_queries} queries over {report.corpus}",
        "",
        markdown_table(report.results),
        "",
        setups(report.results),
    ]
    for table in (depth_table(report.results), group_table(report.results)):
        if table:
            parts += ["", table]
    if report.warnings:
        parts += ["", "Warnings:", *(f"- {w}" for w in report.warnings)]
    return "\n".join(parts) + "\n"


def render_png(results: Sequence[ConfigResult], path: Path, use_matplotlib: bool = True) -> Path:
    """Grouped bars of the quality metrics (and latency beside them with matplotlib; Pillow otherwise)."""
    try:
        if not use_matplotlib:
            raise ImportError
        from matplotlib.figure import Figure
    except ImportError:
        return _render_png_pillow(results, path)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    quality, latency = fig.subplots(1, 2, width_ratios=[3, 1])
    width = 0.8 / max(1, len(results))
    for j, r in enumerate(results):
        offset = (j - (len(results) - 1) / 2) * width
        quality.bar(
            [x + offset for x in range(len(QUALITY))],
            [r.metrics[m] for m in QUALITY],
            width,
            label=r.config.name,
        )
        latency.bar([x + offset for x in range(len(LATENCY))], [r.metrics[m] for m in LATENCY], width)
    quality.set_xticks(range(len(QUALITY)), [LABELS[m] for m in QUALITY])
    quality.set_ylim(0, 1)
    quality.set_title("retrieval quality")
    fig.legend(loc="outside lower center", ncols=min(6, len(results)), fontsize="small")
    latency.set_xticks(range(len(LATENCY)), [LABELS[m] for m in LATENCY])
    latency.set_title("search latency (ms)")
    fig.savefig(path, dpi=110)
    return path


BAR_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
LEGEND_PER_ROW = 5


def _render_png_pillow(results: Sequence[ConfigResult], path: Path) -> Path:
    """The quality bars only, drawn without matplotlib (Pillow comes with streamlit)."""
    from PIL import Image, ImageDraw

    legend_rows = -(-len(results) // LEGEND_PER_ROW)
    width, left, top, plot_h = 900, 40, 20, 340
    base = top + plot_h  # y of the 0 line
    img = Image.new("RGB", (width, base + 30 + 20 * legend_rows), "white")
    draw = ImageDraw.Draw(img)
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = base - tick * plot_h
        draw.line([(left, y), (width - 10, y)], fill=(225, 225, 225))
        draw.text((5, y - 6), f"{tick:.2f}", fill="black")
    slot = (width - 10 - left) / len(QUALITY)
    bar = slot * 0.8 / max(1, len(results))
    for x, m in enumerate(QUALITY):
        draw.text((left + x * slot + slot / 2 - 20, base + 8), LABELS[m], fill="black")
        for j, r in enumerate(results):
            x0 = left + x * slot + slot * 0.1 + j * bar
            draw.rectangle(
                [x0, base - r.metrics[m] * plot_h, x0 + bar - 2, base], fill=BAR_COLORS[j % len(BAR_COLORS)]
            )
    for j, r in enumerate(results):
        x0, y0 = left + (j % LEGEND_PER_ROW) * 170, base + 30 + 20 * (j // LEGEND_PER_ROW)
        draw.rectangle([x0, y0, x0 + 10, y0 + 10], fill=BAR_COLORS[j % len(BAR_COLORS)])
        draw.text((x0 + 15, y0 - 1), r.config.name[:24], fill="black")
    img.save(path, format="PNG")
    return path


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """``<name>-<time>.json``, ``.md`` and ``.png`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{report.name}-{datetime.now().strftime(STAMP_FORMAT)}"
    paths = {
        "json": stem.with_suffix(".json"),
        "md": stem.with_suffix(".md"),
        "png": stem.with_suffix(".png"),
    }
    paths["json"].write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    render_png(report.results, paths["png"])
    return paths


def report_file(out_dir: Path, name: str, suffix: str) -> Path:
    """``<name><suffix>`` of the report folder: ValueError for a name that is not a bare report name
    (a path, ``..``, hidden), FileNotFoundError when no such file is directly inside the folder."""
    if not name or name.startswith(".") or ".." in name or any(c in name for c in "/\\\0"):
        raise ValueError(f"not a report name: {name!r}")
    root = out_dir.resolve()
    path = (root / f"{name}{suffix}").resolve()
    if path.parent != root or not path.is_file():  # a link to elsewhere counts as missing
        raise FileNotFoundError(f"no report {name!r}")
    return path


def list_reports(out_dir: Path) -> list[dict[str, Any]]:
    """The reports ``write_report`` left in ``out_dir``, newest first: ``{name (the file stem: the
    report's id), title (the report's name), time, json, md, png}`` (the files' paths; ``md``/``png``
    None when missing)."""
    found = []
    for path in out_dir.glob("*.json") if out_dir.is_dir() else ():
        try:
            report_file(out_dir, path.stem, ".json")
        except (ValueError, FileNotFoundError):  # hidden, or not a file of this folder: never served
            continue
        title, when = _stem_parts(path)
        md, png = path.with_suffix(".md"), path.with_suffix(".png")
        found.append(
            {
                "name": path.stem,
                "title": title,
                "time": when.isoformat(),
                "json": str(path),
                "md": str(md) if md.is_file() else None,
                "png": str(png) if png.is_file() else None,
            }
        )
    return sorted(found, key=lambda r: (r["time"], r["name"]), reverse=True)


def _stem_parts(path: Path) -> tuple[str, datetime]:
    """The report name and time a file name carries (its modification time if it carries none)."""
    if match := REPORT_STEM.fullmatch(path.stem):
        try:
            return match["report"], datetime.strptime(match["stamp"], STAMP_FORMAT)
        except ValueError:
            pass
    return path.stem, datetime.fromtimestamp(path.stat().st_mtime)
