"""Which files under a folder are ingested: pure path logic plus one directory walk."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence
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


def hidden_part(path: Path) -> str | None:
    """The first hidden component of an absolute path (``.ssh`` in ``/home/u/.ssh/keys``), if any."""
    return next((p for p in Path(path).parts if p.startswith(".") and p not in (".", "..")), None)


def _inside(path: Path, folders: Iterable[Path]) -> bool:
    return any(path == f or path.is_relative_to(f) for f in folders)


def escapes(path: Path, within: Sequence[Path], avoid: Sequence[Path]) -> str:
    """Why a discovered file must not be read ("" if it may): a symbolic link whose target lies outside
    ``within`` (resolved folders; empty: anywhere) or inside ``avoid`` (kb's own data). A link that does
    not resolve is left to the reader, which reports it."""
    if not path.is_symlink():
        return ""
    try:
        target = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return ""
    if _inside(target, avoid):
        return "symbolic link into kb's data folder"
    if within and not _inside(target, within):
        return "symbolic link to a file outside the folders that may be ingested"
    return ""


def discover(root: Path, exclude: Iterable[str] = (), avoid: Sequence[Path] = ()) -> list[tuple[str, Path]]:
    """(relative '/'-path, path) of every candidate file, sorted; hidden, VCS, venv and build dirs skipped,
    and the folders in ``avoid`` (resolved: kb's own data folder)."""
    patterns = [*exclude, *read_ignore(root)]
    found: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in dirnames:
            rel = (here / d).relative_to(root).as_posix()
            if d.startswith(".") or d in SKIP_DIRS or _is_venv(here / d) or _matches(rel, patterns):
                continue
            if avoid and _inside((here / d).resolve(), avoid):
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
