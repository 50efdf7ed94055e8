"""Which files under a folder are ingested: pure path logic plus one directory walk."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable
from pathlib import Path

IGNORE_FILE = ".kbignore"
SKIP_DIRS = {
    ".git",
    ".hg",
    ".svn",
    "node_modules",
    "__pycache__",
    ".venv",
    "venv",
    "env",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "build",
    "dist",
    "target",
    "site-packages",
    ".eggs",
}


def _is_venv(path: Path) -> bool:
    return (path / "pyvenv.cfg").is_file()


def _matches(rel: str, patterns: Iterable[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) or rel.startswith(p.rstrip("/") + "/")
        for p in patterns
    )


def read_ignore(root: Path) -> list[str]:
    path = root / IGNORE_FILE
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [ln.strip().lstrip("/") for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def discover(root: Path, exclude: Iterable[str] = ()) -> list[tuple[str, Path]]:
    """(relative '/'-path, path) of every candidate file, sorted; hidden, VCS, venv and build dirs skipped."""
    patterns = [*exclude, *read_ignore(root)]
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in dirnames:
            rel = (here / d).relative_to(root).as_posix()
            if d.startswith(".") or d in SKIP_DIRS or _is_venv(here / d) or _matches(rel, patterns):
                continue
            keep.append(d)
        dirnames[:] = sorted(keep)
        for f in filenames:
            p = here / f
            rel = p.relative_to(root).as_posix()
            if f.startswith(".") or _matches(rel, patterns):
                continue  # a broken link stays: the ingest reports it
            found.append((rel, p))
    return sorted(found)
