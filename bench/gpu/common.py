"""What the GPU check's parts share: paths, the incremental result file, limits."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "gpu-check"  # made by `make gpu-check-prepare`, carried to the GPU machine
VERSION = "0.3.36"
MAIN_PATCH = ROOT / "patches" / f"llama-cpp-python-{VERSION}-skip-lm-head.patch"
SWITCH_PATCH = ROOT / "patches" / "bench" / f"llama-cpp-python-{VERSION}-lm-head-switch.patch"
SWITCH_ENV = "KB_LLAMA_SKIP_LM_HEAD"  # "0" keeps the LM head (the stock graph) in a build with both patches
PARITY_COS = 0.9999


class Recorder:
    """A section's result, rewritten to its JSON file after every change: a section killed at its
    limit leaves what it had measured."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self._write()

    def append(self, key: str, row: Any) -> None:
        self.data.setdefault(key, []).append(row)
        self._write()

    def _write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str))
        tmp.replace(self.path)


def run_limited(
    cmd: list[str], limit_s: float, log_path: Path, env: dict[str, str] | None = None
) -> tuple[int | None, float]:
    """Run ``cmd`` in its own process group with output appended to ``log_path``; the whole group is
    killed at ``limit_s``. Returns (exit code or None when killed, seconds)."""
    started = time.monotonic()
    with log_path.open("ab") as log:
        log.write(f"\n$ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            code: int | None = proc.wait(timeout=max(1.0, limit_s))
        except subprocess.TimeoutExpired:
            kill_group(proc)
            code = None
    return code, time.monotonic() - started


def kill_group(proc: subprocess.Popen) -> None:
    """End ``proc`` and everything it started (llama-server, OCR helpers): TERM, then KILL."""
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def python_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment a section runs in: this checkout first on the import path."""
    path = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT) + (os.pathsep + path if path else ""),
        "PYTHONUNBUFFERED": "1",
    }
    return {**env, **(extra or {})}


def tail(path: Path, n: int = 1500) -> str:
    try:
        return path.read_text(errors="replace")[-n:]
    except OSError:
        return ""


CHILD_TIMEOUT_S = 600


def run_child(name: str, args: dict, env: dict[str, str] | None = None) -> dict:
    """A section function (``bench.gpu.sections``) run in a fresh process of this interpreter, ``env``
    added to the environment; its JSON result. Its own process: its GPU memory is its own to read."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "r.json"
        out = subprocess.run(
            [sys.executable, "-m", "bench.gpu.sections", name, json.dumps(args), str(result)],
            cwd=ROOT,
            env=python_env(env),
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{name} exited {out.returncode}: {out.stderr[-1500:]}")
        return json.loads(result.read_text())
