"""VRAM use as ``nvidia-smi`` reports it: the query (two CSV calls) and a pure parser of its output.

Any failure (no ``nvidia-smi``, a timeout, an error status, output that cannot be read) gives None:
the status page then says the figure is not available, and nothing else depends on it.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Sequence
from typing import Any

NVIDIA_SMI = "nvidia-smi"
GPU_QUERY = ("--query-gpu=index,name,memory.used,memory.total", "--format=csv,noheader,nounits")
APPS_QUERY = ("--query-compute-apps=pid,used_memory", "--format=csv,noheader,nounits")
TIMEOUT_S = 5.0


def _rows(csv: str, width: int) -> list[list[str]]:
    """The lines of ``csv`` split into ``width`` stripped fields; lines of another width are dropped."""
    rows = [[f.strip() for f in line.split(",")] for line in csv.splitlines() if line.strip()]
    return [r for r in rows if len(r) == width]


def _mb(field: str) -> int | None:
    """A MiB figure; None for ``[N/A]``, ``[Not Supported]`` and the like."""
    try:
        return int(float(field))
    except ValueError:
        return None


def visible_indices(env: str | None) -> set[int] | None:
    """The GPU indices ``CUDA_VISIBLE_DEVICES`` lets this process see; None: all of them (unset, or
    given as UUIDs, which the GPU query does not list)."""
    if env is None:
        return None
    parts = [p.strip() for p in env.split(",") if p.strip()]
    if not all(p.isdigit() for p in parts):
        return None
    return {int(p) for p in parts}


def parse_vram(
    gpus_csv: str, apps_csv: str, pid: int, visible: set[int] | None = None
) -> dict[str, Any] | None:
    """The GPUs' memory, summed over the ``visible`` ones (None: all), and this process's share.

    ``gpus_csv``: ``index, name, memory.used, memory.total`` lines; ``apps_csv``: ``pid, used_memory``
    lines (a process using several GPUs has one line each). Returns ``{gpu, gpus, used_mb, total_mb,
    this_process_mb}`` (``this_process_mb`` None when ``pid`` is not listed: another PID namespace, or
    a driver that does not say), or None when no GPU line can be read.
    """
    gpus = []
    for index, name, used, total in _rows(gpus_csv, 4):
        used_mb, total_mb = _mb(used), _mb(total)
        if not index.isdigit() or not name or used_mb is None or total_mb is None:
            continue
        if visible is None or int(index) in visible:
            gpus.append((name, used_mb, total_mb))
    if not gpus:
        return None
    names = sorted({g[0] for g in gpus})
    label = names[0] if len(names) == 1 else ", ".join(names)
    ours = [_mb(used) for app_pid, used in _rows(apps_csv, 2) if app_pid == str(pid)]
    mine = [mb for mb in ours if mb is not None]
    return {
        "gpu": f"{len(gpus)} × {label}" if len(gpus) > 1 and len(names) == 1 else label,
        "gpus": len(gpus),
        "used_mb": sum(g[1] for g in gpus),
        "total_mb": sum(g[2] for g in gpus),
        "this_process_mb": sum(mine) if mine else None,
    }


Runner = Callable[[Sequence[str]], str]


def _nvidia_smi(args: Sequence[str]) -> str:
    return subprocess.run(
        [NVIDIA_SMI, *args], capture_output=True, text=True, timeout=TIMEOUT_S, check=True
    ).stdout


def query_vram(pid: int | None = None, run: Runner = _nvidia_smi) -> dict[str, Any] | None:
    """``parse_vram`` of what ``nvidia-smi`` says now, for ``pid`` (default: this process); None on any
    failure."""
    try:
        gpus, apps = run(GPU_QUERY), run(APPS_QUERY)
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return None
    visible = visible_indices(os.environ.get("CUDA_VISIBLE_DEVICES"))
    return parse_vram(gpus, apps, os.getpid() if pid is None else pid, visible)


__all__ = ["parse_vram", "query_vram", "visible_indices"]
