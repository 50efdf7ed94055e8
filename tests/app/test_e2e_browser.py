"""End to end in Debian's headless Chromium (Playwright): `kb serve` and the Streamlit app on localhost;
upload a PDF and Markdown files, watch the job finish, search, find the right file and page.

Needs /usr/bin/chromium (`apt-get install -y chromium`); Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from kb.service.client import KbClient
from kb.service.local_token import read_token
from tests.helpers.corpus import CHINESE_CANARY, write_markdown, write_pdf

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = ROOT / "artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
JOB_TIMEOUT_MS = 180_000
MARK = ".stMarkdownColoredBackground"  # how Streamlit draws :orange-background[…]
UI_TIMEOUT_MS = 60_000
# a file whose name and text try every way into the page: HTML, script, javascript: links, directives
HOSTILE_NAME = "hostile <img src=x onerror=alert(1)> [x](javascript:alert(1)).md"
HOSTILE_TEXT = (
    "# Hostile heron\n\n"
    "The canary here is hostile heron. <script>alert(1)</script> "
    "[click me](javascript:alert(1)) <img src=x onerror=alert(1)> **not bold** "
    ":red[not red] $not math$ https://example.com/page www.example.com someone@example.com\n"
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (apt-get install -y chromium)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up (exit {proc.poll()})") from None
            time.sleep(0.3)


@pytest.fixture()
def stack(qwen3_gguf, tmp_path):
    """`kb serve --port P` and `streamlit run app/Home.py --server.port Q`, both on 127.0.0.1."""
    api, ui = free_port(), free_port()
    env = {
        **os.environ,
        "KB_EMBED_MODEL": str(qwen3_gguf),
        "KB_N_CTX": "4096",
        "KB_N_BATCH": "2048",
        "KB_DATA_DIR": str(tmp_path / "data"),
        "KB_SERVICE_URL": f"http://127.0.0.1:{api}",
    }
    bin_dir = Path(sys.executable).parent
    logs = tmp_path / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen] = []
    try:
        with (logs / "serve.log").open("wb") as serve_log, (logs / "app.log").open("wb") as app_log:
            procs.append(
                subprocess.Popen(
                    [bin_dir / "kb", "serve", "--port", str(api)],
                    env=env,
                    cwd=ROOT,
                    stdout=serve_log,
                    stderr=subprocess.STDOUT,
                )
            )
            procs.append(
                subprocess.Popen(
                    [
                        bin_dir / "streamlit",
                        "run",
                        "app/Home.py",
                        "--server.headless",
                        "true",
                        "--server.port",
                        str(ui),
                        "--server.address",
                        "127.0.0.1",
                        "--browser.gatherUsageStats",
                        "false",
                        "--client.toolbarMode",
                        "minimal",
                    ],
                    env=env,
                    cwd=ROOT,
                    stdout=app_log,
                    stderr=subprocess.STDOUT,
                )
            )
            wait_http(f"http://127.0.0.1:{api}/health", procs[0])
            wait_http(f"http://127.0.0.1:{ui}/_stcore/health", procs[1])
            token = read_token(tmp_path / "data")  # the local token the service wrote
            yield f"http://127.0.0.1:{ui}", KbClient(env["KB_SERVICE_URL"], token=token)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)


def search(page, base: str, query: str):
    page.goto(base + "/")  # the search page is the default one
    box = page.get_by_label("Query")
    box.fill(query)
    box.press("Enter")
    return page.locator('[class*="st-key-hit_"]')


def test_upload_wait_search_finds_the_right_file_and_page(stack, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    base, service = stack
    files = tmp_path / "upload"
    files.mkdir()
    pdf = write_pdf(files)
    md = write_markdown(files)
    hostile = files / HOSTILE_NAME
    hostile.write_text(HOSTILE_TEXT, encoding="utf-8")
    ARTIFACTS.mkdir(exist_ok=True)
    dialogs: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        try:
            # upload three files at once; each gets its own row that ends as "indexed"
            page.goto(f"{base}/library")
            nav = page.get_by_test_id("stSidebarNav")  # the app's own navigation, whatever URL it opens at
            expect(nav).to_contain_text("Search")
            expect(nav).not_to_contain_text("Home")
            page.locator('input[type="file"]').set_input_files([str(pdf.path), str(md.path), str(hostile)])
            sent = page.get_by_test_id("stFileChip").get_by_role("button", name=re.compile("^Remove "))
            expect(sent).to_have_count(3, timeout=UI_TIMEOUT_MS)  # the browser has sent all three to the app
            page.get_by_role("button", name="Upload and index").click()
            upload = page.locator(".st-key-upload_status")
            expect(upload.get_by_text("indexed 3 · updated 0")).to_be_visible(timeout=JOB_TIMEOUT_MS)
            rows = upload.locator("tbody tr")
            expect(rows).to_have_count(3)
            for name in (pdf.path.name, md.path.name, HOSTILE_NAME):
                expect(rows.filter(has_text=name)).to_contain_text("indexed")
            expect(page.get_by_test_id("stDataFrame")).to_be_visible()  # the document list, redrawn
            page.screenshot(path=str(ARTIFACTS / "e2e-library.png"), full_page=True)

            # the phrase on a known PDF page: the first card names the file and that page, its link opens it
            phrase = "beta narwhal"
            cards = search(page, base, phrase)
            card = cards.filter(has_text=pdf.path.name).first
            expect(card).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(card).to_contain_text(f"page {pdf.canaries[phrase]}")
            expect(card.locator(MARK).filter(has_text=phrase)).to_have_count(1)  # both words, one mark
            expect(cards.first).to_contain_text(pdf.path.name)
            link = card.get_by_role("link", name=pdf.path.name)
            href = link.get_attribute("href")
            assert href.endswith(f"#page={pdf.canaries[phrase]}") and "/files?source=" in href
            answer = page.request.get(href.split("#")[0])
            assert answer.ok and answer.headers["content-type"] == "application/pdf"
            assert answer.body() == pdf.path.read_bytes()
            page.screenshot(path=str(ARTIFACTS / "e2e-search.png"), full_page=True)

            # Chinese: the canary on its page, marked in the passage (no spaces between CJK words)
            cards = search(page, base, CHINESE_CANARY)
            card = cards.filter(has_text=CHINESE_CANARY).first
            expect(card).to_contain_text(f"page {pdf.canaries[CHINESE_CANARY]}", timeout=UI_TIMEOUT_MS)
            expect(card.locator(MARK).filter(has_text=CHINESE_CANARY)).to_have_count(1)

            # a hostile document is shown as the text it is: no script, no link, no image of its own
            cards = search(page, base, "hostile heron")
            card = cards.filter(has_text="hostile heron").first
            expect(card).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(card).to_contain_text("<script>alert(1)</script>")
            expect(card).to_contain_text("[click me](javascript:alert(1))")
            expect(card).to_contain_text("**not bold**")
            expect(card).to_contain_text(HOSTILE_NAME)
            anchors = [a.evaluate("e => e.outerHTML") for a in card.locator("a").all()]
            assert len(anchors) == 1, anchors  # the link to the file, nothing from the document
            assert card.locator("img, script, strong:has-text('not bold')").count() == 0
            assert page.locator('a[href^="javascript:"]').count() == 0
            page.screenshot(path=str(ARTIFACTS / "e2e-hostile.png"), full_page=True)

            page.goto(f"{base}/status")
            metrics = page.get_by_test_id("stMetric")
            points = service.status()["points"]
            assert points == sum(d["chunks"] for d in service.documents()) > 0
            expect(metrics.filter(has_text="Chunks stored")).to_contain_text(
                f"{points:,}", timeout=UI_TIMEOUT_MS
            )
            expect(page.get_by_text("indexed 3 · updated 0")).to_be_visible()
            page.screenshot(path=str(ARTIFACTS / "e2e-status.png"), full_page=True)
        finally:
            browser.close()
    assert dialogs == []
