"""The layout is the design: imports flow one way, down the layers below, and the app stays thin.

A module may import its own layer or any layer beneath it, never one above. The app may import
only the service's client, its contract and the settings, so that the browser's process never loads
a model, the store or the parsers.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# lowest first; a module belongs to the longest prefix that names it
LAYERS: list[tuple[str, ...]] = [
    ("kb.settings", "kb.contract", "ingest.records", "ingest.pagesources"),
    ("ingest.model", "ingest.store", "ingest.sparse"),
    ("ingest.loaders", "ingest.parsing", "ingest.chunking", "ingest.discover", "ingest.pipeline", "ingest"),
    ("kb.search",),
    ("kb.answer",),
    ("kb.tools",),
    ("kb.service", "kb.mcp"),
    ("kb.cli", "kb"),
    ("app",),
]  # fmt: skip
APP_MAY_IMPORT = ("app", "kb.settings", "kb.contract", "kb.service.client")
PACKAGES = ("ingest", "kb", "app")


def layer_of(module: str) -> int:
    best, rank = "", -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > len(best):
                best, rank = p, i
    assert rank >= 0, f"{module} belongs to no layer: add it to LAYERS"
    return rank


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """Every project module a file imports (top level or inside functions), with its line."""
    tree = ast.parse(path.read_text(), str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; write it absolute"
            base = node.module or ""
            out.append((node.lineno, base))
            # `from kb.service import api` imports the module kb.service.api
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names if (ROOT / base.replace(".", "/") / a.name).exists()
                    or (ROOT / base.replace(".", "/") / f"{a.name}.py").exists()]  # fmt: skip
    return [(line, m) for line, m in out if m.split(".")[0] in PACKAGES]


def project_files() -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py"))


def test_every_module_has_a_layer():
    for path in project_files():
        layer_of(module_name(path))


def test_imports_flow_down():
    upward = []
    for path in project_files():
        here = module_name(path)
        for line, target in imports_of(path):
            if layer_of(target) > layer_of(here):
                upward.append(f"{path.relative_to(ROOT)}:{line}: {here} imports {target}")
    assert not upward, "imports against the layers:\n" + "\n".join(upward)


def test_app_talks_to_the_service_only():
    stray = []
    for path in (ROOT / "app").rglob("*.py"):
        for line, target in imports_of(path):
            if not any(target == a or target.startswith(a + ".") for a in APP_MAY_IMPORT):
                stray.append(f"{path.relative_to(ROOT)}:{line}: {target}")
    assert not stray, "the app reaches past the service client:\n" + "\n".join(stray)


def test_streamlit_only_in_the_app():
    for path in project_files():
        if path.relative_to(ROOT).parts[0] != "app":
            assert "streamlit" not in {m.split(".")[0] for m in _all_imports(path)}, path


def _all_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize("module", ["app.render", "app.client", "kb.cli.main"])
def test_light_modules_load_no_engine(module):
    """The app's modules and the CLI's start load neither llama.cpp, the store engine nor the parsers."""
    heavy = ["llama_cpp", "qdrant_edge", "qdrant_client", "pypdf", "pypdfium2", "onnxruntime", "torch"]
    code = f"import sys, {module}; print(' '.join(m for m in {heavy!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"{module} loads {out.stdout.strip()}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The check itself can fail: a store module importing the service is caught."""
    assert layer_of("kb.service.api") > layer_of("ingest.store.edge")
    assert layer_of("app.views.search") > layer_of("kb.service.client")
    assert layer_of("ingest.pipeline") > layer_of("ingest.model.embedder")
