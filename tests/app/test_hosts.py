"""DNS rebinding: a page whose own name resolves to 127.0.0.1 reaches the app in a real `streamlit run`
through headless Chromium (its resolver told to map the name, as a rebinding DNS server would) and
gets no page; the same app at 127.0.0.1 runs as usual."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.hosts import allowed_names, host_name
from tests.app.test_e2e_browser import CHROMIUM, CHROMIUM_ARGS, UI_TIMEOUT_MS, free_port, wait_http

ROOT = Path(__file__).resolve().parents[2]
REBOUND = "rebound.test"  # the attacker's name, resolving to this machine


def test_host_names_answered():
    assert host_name("[::1]:8501") == "::1" and host_name("LocalHost:8501") == "localhost"
    assert allowed_names("127.0.0.1", "localhost") == {"127.0.0.1", "localhost", "::1"}
    lan = allowed_names("192.168.1.5", "kb.example.lan:443")
    assert lan is not None and {"192.168.1.5", "kb.example.lan", "localhost"} <= lan
    assert allowed_names("0.0.0.0", None) is None and allowed_names(None, None) is None  # every interface


@pytest.mark.slow
@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed at /usr/bin/chromium")
def test_a_rebound_name_gets_no_page_and_loopback_does(tmp_path):
    from playwright.sync_api import expect, sync_playwright

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env |= {"KB_DATA_DIR": str(tmp_path / "data"), "KB_SERVICE_URL": f"http://127.0.0.1:{free_port()}"}
    cmd = [Path(sys.executable).parent / "streamlit", "run", "app/Home.py", "--server.headless", "true"]
    cmd += [
        "--server.address",
        "127.0.0.1",
        "--server.port",
        str(port),
        "--browser.gatherUsageStats",
        "false",
    ]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/_stcore/health", proc)
        with sync_playwright() as pw:
            args = [*CHROMIUM_ARGS, f"--host-resolver-rules=MAP {REBOUND} 127.0.0.1"]
            browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=args)
            try:
                page = browser.new_page()
                page.goto(f"http://{REBOUND}:{port}/library")
                main = page.get_by_test_id("stMain")
                expect(main).to_contain_text(f"does not answer to the name {REBOUND}", timeout=UI_TIMEOUT_MS)
                expect(main).not_to_contain_text("Library")
                expect(page.get_by_test_id("stSidebarNav")).to_have_count(0)  # no page at all
                page.goto(f"http://127.0.0.1:{port}/")
                expect(main).to_contain_text(
                    "service is not reachable", timeout=UI_TIMEOUT_MS
                )  # the app runs
                expect(main).not_to_contain_text("does not answer")
            finally:
                browser.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)
