"""The Streamlit UI: safe rendering, and the pages against a real running `kb serve`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.render import escape_md, highlight, location, query_terms
from ingest.client import KbClient, ServiceError

ROOT = Path(__file__).resolve().parent.parent


def test_document_text_never_becomes_html_or_links():
    text = "<script>alert(1)</script> [click](javascript:alert(1)) **bold** <img src=x onerror=alert(1)>"
    md = escape_md(text)
    for raw in ("<script>", "](javascript:", "**bold**"):
        assert raw not in md
    assert re.search(r"(?<!\\)[<>\[\]()*]", md) is None  # every active character is escaped
    assert md.replace("\\", "") == text  # nothing lost, only escaped


def test_highlight_marks_english_and_chinese_terms():
    md = highlight("Vector databases store embeddings. 向量数据库用于检索。", "vector 数据库")
    assert ":orange-background[Vector]" in md
    assert ":orange-background[数据库]" in md or ":orange-background[数据]" in md
    assert {"向量数据库", "向量", "数据", "据库"} <= set(query_terms("向量数据库"))


def test_uploads_show_their_original_name():
    from app.render import display_name

    assert display_name(".uploads/0123456789abcdef-report.pdf") == "report.pdf"
    assert display_name("docs/0123456789abcdef-report.pdf") == "0123456789abcdef-report.pdf"


def test_location_prefers_page_then_lines_then_headings():
    assert location({"page": 3, "line_start": 1}) == "page 3"
    assert location({"line_start": 10, "line_end": 20}) == "lines 10–20"
    assert location({"heading_path": ["Guide", "Install"]}) == "Guide › Install"
    assert location({"heading_path": ["Guide"], "line_start": 1, "line_end": 5}) == "Guide · lines 1–5"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(qwen3_gguf, tmp_path_factory):
    root = tmp_path_factory.mktemp("app")
    docs = root / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\n## Install\n\nRun make run to start the knowledge base.\n")
    (docs / "notes.txt").write_text("向量数据库用于存储和检索嵌入向量。\n", encoding="utf-8")
    port = free_port()
    env = {**os.environ, "KB_EMBED_MODEL": str(qwen3_gguf), "KB_N_CTX": "4096", "KB_N_BATCH": "2048",
           "KB_DATA_DIR": str(root / "data"), "KB_SERVICE_PORT": str(port),
           "KB_SERVICE_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-m", "ingest.cli", "serve", "--port", str(port)], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    client = KbClient(env["KB_SERVICE_URL"])
    for _ in range(300):
        try:
            client.health(timeout=1)
            break
        except (ServiceError, OSError):
            time.sleep(0.2)
    job = client.submit_folder(str(docs), origin="ui")
    client.wait(job["id"])
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield client
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=30)
    proc.stderr.close()


def app_test():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=60)


def test_search_page_shows_cards_with_source_and_location(served):
    at = app_test().run()
    assert not at.exception
    at.text_input(key="search_query").input("how do I start the knowledge base").run()
    assert not at.exception
    markdown = " ".join(m.value for m in at.markdown)
    plain = markdown.replace("\\", "")
    assert "1. [guide.md](" in plain and "Guide · lines 1–5" in plain
    captions = " ".join(c.value for c in at.caption)
    assert "score" in captions


def test_unreachable_service_is_explained(monkeypatch):
    monkeypatch.setenv("KB_SERVICE_URL", f"http://127.0.0.1:{free_port()}")
    at = app_test().run()
    assert not at.exception
    assert any("kb serve" in e.value for e in at.error)
