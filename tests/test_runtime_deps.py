"""What `make run` installs is enough: every third-party module that ingest/, kb/ and app/ import is
provided by the runtime dependencies of pyproject.toml or what they require, never by the test group
alone (fonttools once was: pypdf then decoded some fonts worse and warned on every page). An import
inside a ``try`` that catches ImportError is an optional extra and is not counted."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
OWN = ("ingest", "kb", "app", "tests", "bench")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_closure() -> set[str]:
    """Distributions `pip install .` brings: the runtime dependencies and theirs, markers evaluated."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["dependencies"]]
    seen: set[str] = set()
    while todo:
        req = todo.pop()
        name = _canonical(req.name)
        if name in seen or (req.marker is not None and not req.marker.evaluate({"extra": ""})):
            continue
        seen.add(name)
        for sub in metadata.requires(req.name) or []:
            todo.append(Requirement(sub))
    return seen


def _optional(tree: ast.AST) -> set[int]:
    """Ids of the import statements inside a ``try`` that catches ImportError (optional extras)."""
    out: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            out |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    return out


def third_party_imports() -> dict[str, str]:
    """Top-level module -> a file importing it unconditionally, over the shipped packages."""
    found: dict[str, str] = {}
    for package in ("ingest", "kb", "app"):
        for path in (ROOT / package).rglob("*.py"):
            tree = ast.parse(path.read_text(), str(path))
            optional = _optional(tree)
            for node in ast.walk(tree):
                if id(node) in optional:
                    continue
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in OWN:
                        found.setdefault(top, str(path.relative_to(ROOT)))
    return found


def test_every_import_is_a_runtime_dependency():
    providers = metadata.packages_distributions()
    closure = runtime_closure()
    missing = []
    for module, where in sorted(third_party_imports().items()):
        dists = {_canonical(d) for d in providers.get(module, [])}
        if not dists & closure:
            missing.append(f"{module} (imported by {where}; installed from {sorted(dists) or 'nowhere'})")
    assert not missing, "imports the runtime dependencies do not provide: " + ", ".join(missing)


def test_the_closure_is_real():
    closure = runtime_closure()
    assert {"fonttools", "pypdf", "python-docx", "lxml", "numpy"} <= closure
    assert "torch" not in closure and "transformers" not in closure and "pytest" not in closure
