"""A virtualenv made as `make run` makes .venv: pip upgraded, the patched llama-cpp-python wheel
from the cache scripts/install_llama.sh fills, the runtime dependencies of pyproject.toml (no test
group), then kb itself, non-editable and without dependencies, so nothing else is importable.

The environment is built once per machine under the user cache dir, keyed by the runtime
dependencies, the Python version and the wheel, and locked while it is built or used (two test runs
share it in turn). kb is reinstalled from the checkout on every use: its code changes, its
dependencies rarely do. pip's own cache makes a rebuild after a change of pins cheap.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
ENGINE = "llama-cpp-python"
PIP_FLOOR = "pip>=25.1"  # what the Makefile's venv rule installs first
SHIPPED = ("ingest", "kb", "app")  # the packages `pip install .` ships (pyproject's packages.find)
INSTALL_TIMEOUT_S = 1800
COMPLETE = ".complete"


class NoEngineWheel(Exception):
    """No cached patched llama-cpp-python wheel: scripts/install_llama.sh has not run here."""


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "kb"


def runtime_dependencies() -> list[str]:
    return list(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])


def engine_wheel() -> Path:
    """The wheel scripts/install_llama.sh caches for this machine (same key: version, patch, backend)."""
    script = (ROOT / "scripts" / "install_llama.sh").read_text()
    version = re.search(r"^VERSION=(\S+)$", script, re.MULTILINE)
    if version is None:
        raise NoEngineWheel("scripts/install_llama.sh names no VERSION")
    patch = ROOT / "patches" / f"llama-cpp-python-{version[1]}-skip-lm-head.patch"
    patch_hash = hashlib.sha256(patch.read_bytes()).hexdigest()[:12]
    key = f"{version[1]}-{patch_hash}-{_backend()}"
    wheel_root = os.environ.get("KB_WHEEL_CACHE") or _cache_root() / "wheels"
    wheels = sorted((Path(wheel_root) / key).glob("llama_cpp_python-*.whl"))
    if not wheels:
        raise NoEngineWheel(
            f"no cached llama-cpp-python wheel {key} under {wheel_root} (`make install` builds it, ~11 min)"
        )
    return wheels[0]


def _backend() -> str:
    """As install_llama.sh with GPU=auto: CUDA when nvcc is present and a GPU visible."""
    if shutil.which("nvcc") and shutil.which("nvidia-smi"):
        probe = subprocess.run(["nvidia-smi", "-L"], capture_output=True, check=False)
        if probe.returncode == 0:
            return "cuda"
    return "cpu"


def env_key(wheel: Path) -> str:
    blob = json.dumps(
        {"deps": runtime_dependencies(), "python": sys.version.split()[0], "wheel": wheel.parent.name}
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


@contextmanager
def runtime_venv(workdir: Path) -> Iterator[Path]:
    """The python of the runtime environment, built if missing, with kb installed from this checkout
    (copied into ``workdir`` first, so the checkout gets no build outputs); held locked."""
    wheel = engine_wheel()
    venv = _cache_root() / "runtime-venv" / env_key(wheel)
    venv.parent.mkdir(parents=True, exist_ok=True)
    python = venv / "bin" / "python"
    with (venv.parent / f"{venv.name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / COMPLETE).exists():
            shutil.rmtree(venv, ignore_errors=True)
            _run([sys.executable, "-m", "venv", str(venv)])
            _pip(python, "install", "--quiet", "--upgrade", PIP_FLOOR)
            others = [d for d in runtime_dependencies() if Requirement(d).name != ENGINE]
            _pip(python, "install", "--quiet", str(wheel), *others)
            (venv / COMPLETE).write_text(json.dumps({"wheel": str(wheel)}))
        source = workdir / "kb-source"
        shutil.copytree(ROOT, source, ignore=_not_shipped)
        _pip(python, "install", "--quiet", "--no-deps", "--force-reinstall", str(source))
        yield python


def _not_shipped(directory: str, names: list[str]) -> list[str]:
    if Path(directory) == ROOT:
        return [n for n in names if n not in (*SHIPPED, "pyproject.toml", "README.md")]
    return [n for n in names if n == "__pycache__" or n.endswith(".pyc")]


def _pip(python: Path, *args: str) -> None:
    _run([str(python), "-m", "pip", *args])


def _run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, check=False)
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        raise RuntimeError(f"{' '.join(command[:4])} … failed ({done.returncode}):\n{tail}")
