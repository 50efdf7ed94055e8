"""The GPU check's summary: the targets, met or missed, and the VRAM of each configuration against the
cards kb is meant for."""

from __future__ import annotations

from collections.abc import Callable

CARDS_GB = (12, 16, 24)
RESERVE_MB = 512  # left to the display and the driver on a desktop card


def _ingest_rows(s: dict, engine: str) -> list[dict]:
    return [r for r in s.get("throughput", {}).get("ingest", []) if r["engine"] == engine]


def _best(s: dict) -> dict | None:
    rows = _ingest_rows(s, "kb")
    return max(rows, key=lambda r: r["tok_s"]) if rows else None


def _unpatched_ratio(s: dict) -> tuple[float, str] | None:
    kb = {(r["model"], r["contexts"], r["kv_split"]): r["tok_s"] for r in _ingest_rows(s, "kb")}
    ratios = [
        (kb[(u["model"], u["contexts"], u["kv_split"])] / u["tok_s"], u)
        for u in _ingest_rows(s, "unpatched")
        if (u["model"], u["contexts"], u["kv_split"]) in kb and u["patch_level"] == 0  # the switch took
    ]
    if not ratios:
        return None
    ratio, u = min(ratios, key=lambda x: x[0])
    return ratio, f"{u['model']}, 1 context, KV {'per input' if u['kv_split'] else 'unified'} (lowest)"


def _peer_ratio(s: dict, peer_prefix: str) -> tuple[float, str] | None:
    peers = s.get("throughput", {}).get("peers", [])
    ratios = []
    for kb in (p for p in peers if p["engine"] == "kb"):
        for other in (p for p in peers if p["model"] == kb["model"] and p["engine"].startswith(peer_prefix)):
            for a, b in zip(kb["rows"], other["rows"], strict=False):
                ratios.append(
                    (
                        a["tok_s"] / b["tok_s"],
                        f"{kb['model']}, {a['length']} × {a['seqs']} vs {other['engine']}",
                    )
                )
    return min(ratios, key=lambda x: x[0]) if ratios else None


def _latency(s: dict, concurrency: int | None, key: str) -> float | None:
    lat = s.get("latency", {})
    if concurrency is None:
        rows = [r for r in lat.get("rows", []) if r["mode"] == "hybrid"]
    else:
        rows = [r for r in lat.get("concurrency", []) if r["concurrency"] == concurrency]
    return rows[0][key] if rows else None


def _rerank(s: dict) -> float | None:
    rows = [r for r in s.get("rerank", {}).get("rows", []) if r["candidates"] == 20]
    return rows[0]["median_s"] if rows else None


def _parity(s: dict) -> float | None:
    rows = s.get("parity", {}).get("rows", [])
    return min(r["min_cosine"] if r["same_gguf"] else -1.0 for r in rows) if rows else None


# name, measure, comparison, target, unit
TARGETS: list[tuple[str, Callable[[dict], object], str, float, str]] = [
    (
        "ingest embedding, best kb configuration",
        lambda s: (_best(s) or {}).get("tok_s"),
        ">=",
        140_000,
        "tok/s",
    ),
    ("kb / unpatched engine, same configuration", _unpatched_ratio, ">=", 2.5, "×"),
    ("kb / llama-server, same requests", lambda s: _peer_ratio(s, "llama-server"), ">=", 1.0, "×"),
    ("kb / transformers bf16, same requests", lambda s: _peer_ratio(s, "transformers"), "toward", 1.0, "×"),
    ("query P50, hybrid, one client", lambda s: _latency(s, None, "e2e_p50_ms"), "<=", 30, "ms"),
    ("query P99 at 16 concurrent", lambda s: _latency(s, 16, "e2e_p99_ms"), "<=", 150, "ms"),
    ("rerank of 20 candidates", _rerank, "<=", 1.0, "s"),
    ("OCR", lambda s: s.get("ocr", {}).get("ocr", {}).get("pages_per_s"), ">=", 5, "pages/s"),
    ("parity, min cosine GPU vs CPU", _parity, ">=", 0.9999, ""),
]


def targets(sections: dict) -> list[dict]:
    out = []
    for name, measure, op, target, unit in TARGETS:
        value = measure(sections)
        note = ""
        if isinstance(value, tuple):
            value, note = value
        met = None
        if value is not None and op in (">=", "<="):
            met = value >= target if op == ">=" else value <= target
        if name.startswith("ingest") and value is not None:
            b = _best(sections)
            note = f"{b['model']}, {b['contexts']} contexts, KV {'per input' if b['kv_split'] else 'unified'}"
        out.append(
            {"target": name, "op": op, "goal": target, "unit": unit, "value": value, "met": met, "note": note}
        )
    return out


def _fmt(v: float | None) -> str:
    if v is None:
        return "not measured"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.4g}"


def render_targets(rows: list[dict]) -> list[str]:
    lines = ["| target | goal | measured | met | where |", "|---|---|---:|---|---|"]
    for r in rows:
        met = {True: "yes", False: "**missed**", None: "–"}[r["met"]]
        lines.append(
            f"| {r['target']} | {r['op']} {r['goal']:,} {r['unit']} | {_fmt(r['value'])} | {met} | {r['note']} |"
        )
    return lines


def vram_rows(sections: dict) -> list[dict]:
    rows = []
    for r in sections.get("throughput", {}).get("ingest", []) + sections.get("big", {}).get("ingest", []):
        label = (
            f"{r['model']} {r['engine']}, {r['contexts']} context{'s' if r['contexts'] > 1 else ''}, KV "
            f"{'per input' if r['kv_split'] else 'unified'}"
        )
        rows.append({"configuration": label + " (+ query context)", "mb": r.get("vram_mb")})
    if sections.get("latency", {}).get("vram_mb"):
        rows.append(
            {"configuration": "query embedder alone (latency section)", "mb": sections["latency"]["vram_mb"]}
        )
    if sections.get("rerank", {}).get("vram_mb"):
        rows.append({"configuration": "reranker 0.6B Q8_0 alone", "mb": sections["rerank"]["vram_mb"]})
    for row in rows:
        row["fits"] = {gb: (row["mb"] + RESERVE_MB <= gb * 1024) if row["mb"] else None for gb in CARDS_GB}
    return rows


def render_vram(rows: list[dict]) -> list[str]:
    head = " | ".join(f"{gb} GB" for gb in CARDS_GB)
    lines = [
        (
            "VRAM of each configuration as nvidia-smi lists the process (CUDA context included), and "
            f"whether it fits a card of that size with {RESERVE_MB} MiB left to the display and driver:"
        ),
        "",
        f"| configuration | MiB | {head} |",
        "|---|---:|" + "---|" * len(CARDS_GB),
    ]
    for r in rows:
        fits = " | ".join({True: "fits", False: "no", None: "–"}[r["fits"][gb]] for gb in CARDS_GB)
        lines.append(f"| {r['configuration']} | {r['mb'] or '–'} | {fits} |")
    return lines
