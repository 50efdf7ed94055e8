"""End to end in headless Chromium: `kb serve` + the Streamlit app on localhost, upload, wait, search."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from corpus import write_markdown, write_pdf

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(url)


@pytest.fixture()
def stack(qwen3_gguf, tmp_path):
    api, ui = free_port(), free_port()
    env = {**os.environ, "KB_EMBED_MODEL": str(qwen3_gguf), "KB_N_CTX": "4096", "KB_N_BATCH": "2048",
           "KB_DATA_DIR": str(tmp_path / "data"), "KB_SERVICE_URL": f"http://127.0.0.1:{api}"}  # fmt: skip
    procs = [
        subprocess.Popen([sys.executable, "-m", "ingest.cli", "serve", "--port", str(api)], env=env, cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app/Home.py", "--server.headless", "true",
                          "--server.port", str(ui), "--server.address", "127.0.0.1",
                          "--browser.gatherUsageStats", "false"], env=env, cwd=ROOT,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
    ]  # fmt: skip
    try:
        wait_http(f"http://127.0.0.1:{api}/health")
        wait_http(f"http://127.0.0.1:{ui}/")
        yield f"http://127.0.0.1:{ui}"
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def test_upload_wait_search_finds_the_right_file_and_page(stack, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    files = tmp_path / "upload"
    files.mkdir()
    pdf = write_pdf(files)
    md = write_markdown(files)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1600})
        try:
            page.goto(f"{stack}/library")
            page.locator('input[type="file"]').set_input_files([str(pdf.path), str(md.path)])
            page.get_by_role("button", name="Upload and index").click()
            expect(page.get_by_text("indexed 2", exact=False)).to_be_visible(timeout=120_000)
            page.goto(f"{stack}/")  # the search page is the default page
            box = page.get_by_label("Query")
            box.fill("beta narwhal")
            box.press("Enter")
            card = page.locator('[class*="st-key-hit_"]').filter(has_text="narwhal").first
            expect(card).to_be_visible(timeout=60_000)
            page.screenshot(path=str(ARTIFACTS / "e2e-search.png"), full_page=True)
            text = card.inner_text()
            assert "multipage.pdf" in text and "page 2" in text
        finally:
            browser.close()
