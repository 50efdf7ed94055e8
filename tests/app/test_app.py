"""The Streamlit UI: safe rendering helpers, and the pages (AppTest) against a real `kb serve`."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.render import (
    HIGHLIGHT,
    NBSP,
    OCR_BADGE,
    WORD_JOINER,
    card_title,
    defang_links,
    escape_md,
    highlight,
    job_label,
    location,
    match_spans,
    parse_exts,
    poll_wait,
    query_terms,
    report_summary,
    score_line,
    upload_rows,
    vram_label,
)
from kb.service.client import KbClient, ServiceError
from kb.service.local_token import read_token
from kb.tools.evaluate import REPORT_DIR
from tests.helpers.evalreports import backdate, write_sample

ROOT = Path(__file__).resolve().parents[2]
HOSTILE = (
    "<script>alert(1)</script> [click](javascript:alert(1)) <img src=x onerror=alert(1)> "
    "**bold** `code` $x^2$ :smile: :red[red] https://example.com www.example.com a@b.co"
)
PUNCT = re.compile(r"[!-/:-@\[-`{-~]")


def marked(text: str) -> str:
    return HIGHLIGHT.format(text)


def unescape(md: str) -> str:
    """Undo escape_md; fails if any ASCII punctuation was left unescaped."""
    out, i = [], 0
    while i < len(md):
        ch = md[i]
        if ch == "\\" and i + 1 < len(md) and PUNCT.match(md[i + 1]):
            out.append(md[i + 1])
            i += 2
            continue
        assert not PUNCT.match(ch), f"unescaped {ch!r} at {i} in {md!r}"
        out.append(ch)
        i += 1
    return "".join(out).replace("  \n", "\n").replace(NBSP, " ").replace(WORD_JOINER, "")


# --- rendering -----------------------------------------------------------------------------------
def test_document_text_never_becomes_html_links_or_directives():
    md = escape_md(HOSTILE)
    for raw in ("<script>", "](javascript:", "**bold**", "<img", ":smile:", ":red[", "https://", "$x"):
        assert re.search(r"(?<!\\)" + re.escape(raw), md) is None, raw
    assert unescape(md) == HOSTILE  # every active character escaped, nothing lost


def test_addresses_are_broken_where_the_browser_would_link_them():
    md = escape_md("see https://x.com/a, HTTP://Y.ORG, www.z.net and me@mail.org; @decorator")
    assert f"https{WORD_JOINER}\\:" in md and f"HTTP{WORD_JOINER}\\:" in md and f"www{WORD_JOINER}\\." in md
    assert f"me{WORD_JOINER}\\@mail" in md and md.endswith(" \\@decorator")
    assert escape_md(unescape(md)) == md
    assert defang_links(defang_links("https://a.b www.c.d e@f.g")) == defang_links(
        "https://a.b www.c.d e@f.g"
    )


def test_highlighted_passages_stay_escaped_inside_and_outside_the_marks():
    md = highlight(HOSTILE, "script alert javascript")
    assert marked("script") in md and marked("alert") in md and marked("javascript") in md
    plain = md.replace(":orange-background[", "").replace("]", "").replace("\\", "")
    assert "<script>alert(1)</script>" in plain  # shown as the text it is
    outside = re.sub(r":orange-background\[[^\]]*\]", "", md)
    unescape(outside)  # no unescaped punctuation between the marks either


def test_indentation_survives_without_becoming_a_code_block():
    md = escape_md("def f():\n    return 1\n\tpass")
    assert md.splitlines()[1].startswith(NBSP * 4 + "return")
    assert md.splitlines()[2].startswith(NBSP * 4 + "pass")


def test_chinese_terms_are_marked_in_chinese_text():
    assert {"向量数据库", "向量", "量数", "数据", "据库"} <= set(query_terms("向量数据库"))
    assert set(query_terms("GPU加速")) == {"gpu", "加速"}
    md = highlight("向量数据库用于检索。稠密向量存储在集合中。", "数据库 检索")
    assert marked("数据库") in md and marked("检索") in md
    assert "用于" in md and marked("用于") not in md


def test_english_terms_marked_as_words_and_neighbours_merged():
    md = highlight("The canary phrase on this page is beta narwhal.", "what is beta narwhal")
    assert marked("beta narwhal") in md  # one mark over both words
    assert marked("is") not in md and marked("The") not in md  # stopwords stay plain
    assert match_spans("embeddings embed embedded", "embed") == [(0, 25)]  # long terms mark words they begin
    assert match_spans("going go gopher", "go") == [(6, 8)]  # short terms only whole words


def test_long_passages_are_cut_around_the_first_match():
    text = "filler words here. " * 100 + "the canary is gamma okapi at the end." + " tail" * 50
    md = highlight(text, "gamma okapi", limit=300)
    assert md.startswith("…") and md.endswith("…") and marked("gamma okapi") in md
    assert len(md.replace("\\", "")) < 400
    assert highlight(text, "gamma okapi", limit=None).count("filler") == 100


def test_passages_drop_blank_lines_and_are_cut_by_lines_around_the_match():
    text = "\n\n".join(f"line {i}" for i in range(30)) + "\n\nthe okapi line\n\n" + "\n".join("x" * 30)
    md = highlight(text, "okapi")
    assert md.startswith("…") and md.endswith("…") and "  \n  \n" not in md
    assert md.count("  \n") == 9 and "line 28" in md and "line 27" not in md and marked("okapi") in md


def test_card_titles_link_the_file_and_mark_ocr_and_scores_say_how_they_were_made():
    hit = {"rank": 2, "page": 4, "ocr": True, "score": 0.5}
    title = card_title(hit, "scan [1].pdf", "http://127.0.0.1:8765/files?source=scan.pdf#page=4")
    assert title == (
        "**2\\.** [**scan \\[1\\]\\.pdf**](http://127.0.0.1:8765/files?source=scan.pdf#page=4)"
        " — page 4 " + OCR_BADGE
    )
    assert OCR_BADGE not in card_title({**hit, "ocr": False}, "a.pdf", "u")
    assert score_line(hit) == "score 0.5000"
    reranked = {**hit, "rerank_score": 0.91, "retrieval_score": 0.5, "reranked_window": True}
    assert (
        score_line(reranked)
        == "rerank 0.910 · retrieval 0.5000 · reranked on its best window of a long passage"
    )


def test_location_and_filters():
    assert location({"page": 3, "line_start": 1}) == "page 3"
    assert location({"line_start": 10, "line_end": 20}) == "lines 10–20"
    assert location({"heading_path": ["Guide"]}) == ""
    assert parse_exts("pdf, .MD  py;;") == ("pdf", "md", "py")


def test_job_labels_and_upload_rows_follow_the_job():
    batch = {
        "files": [
            {"original_name": "a.pdf", "source": "uploads/x-a.pdf", "bytes": 2048, "duplicate": False},
            {
                "original_name": "b.md",
                "source": "uploads/0123456789abcdef-b.md",
                "bytes": 10,
                "duplicate": False,
            },
        ],
        "rejected": [{"original_name": "c.png", "reason": "unsupported file type (.png)"}],
    }
    job = {
        "id": "j",
        "kind": "upload",
        "origin": "cli",
        "state": "running",
        "progress": {
            "files_total": 2,
            "files_done": 1,
            "chunks": 7,
            "tokens_per_s": 950.0,
            "current": "uploads/0123456789abcdef-b.md",
        },
    }
    assert job_label(job) == "running · from cli · uploads · 1/2 files · 7 chunks · 950 tokens/s · now b.md"
    status = [
        r["status"]
        for r in upload_rows(batch, job, seen=["uploads/x-a.pdf", "uploads/0123456789abcdef-b.md"])
    ]
    assert status == ["read, embedding", "reading", "not accepted: unsupported file type (.png)"]
    assert upload_rows(batch, {**job, "state": "queued"})[0]["status"] == "waiting"
    report = {
        "indexed": ["uploads/x-a.pdf"],
        "skipped": [{"path": "uploads/0123456789abcdef-b.md", "reason": "no text"}],
        "warnings": [{"path": "uploads/x-a.pdf", "message": "page 4: no text"}],
        "chunks": 7,
        "seconds": 1,
    }
    done = upload_rows(batch, {**job, "state": "done", "report": report})
    assert [r["status"] for r in done][:2] == ["indexed (1 warning)", "skipped: no text"]
    assert done[0]["size"] == "2.0 KB"
    assert (
        upload_rows(batch, {**job, "state": "failed", "error": "disk full"})[0]["status"]
        == "failed: disk full"
    )
    assert report_summary(report).startswith("indexed 1 · updated 0 · unchanged 0 · removed 0 · skipped 1")
    # the jobs listing gives counts, not lists: the same line
    counted = {"indexed": 1, "skipped": 1, "warnings": 1, "chunks": 7, "seconds": 1}
    assert report_summary(counted) == report_summary(report)
    assert report_summary({"would_remove": 3}) == "would remove 3 file(s)"


def test_the_jobs_panel_polls_fast_while_jobs_move_and_backs_off_while_they_do_not():
    waits = [1.0]
    for moved in (False, False, False, False, True, False):
        waits.append(poll_wait(waits[-1], moved, shortest=1.0, longest=8.0))
    assert waits == [1.0, 2.0, 4.0, 8.0, 8.0, 1.0, 2.0]


# --- pages against a real service ----------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(qwen3_gguf, tmp_path_factory):
    """`kb serve` on a free port with the tiny test model, a folder already indexed; the app's
    environment points at it for the module."""
    root = tmp_path_factory.mktemp("app")
    docs = root / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\n## Install\n\nRun make run to start the knowledge base.\n")
    (docs / "notes.txt").write_text("向量数据库用于存储和检索嵌入向量。\n", encoding="utf-8")
    port = free_port()
    env = {
        "KB_EMBED_MODEL": str(qwen3_gguf),
        "KB_N_CTX": "4096",
        "KB_N_BATCH": "2048",
        "KB_DATA_DIR": str(root / "data"),
        "KB_SERVICE_URL": f"http://127.0.0.1:{port}",
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb.cli.main", "serve", "--port", str(port)],
        env={**os.environ, **env},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = KbClient(env["KB_SERVICE_URL"])
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                client.health(timeout=1)
                client.token = read_token(root / "data")  # the local token the service wrote
                break
            except ServiceError:
                assert proc.poll() is None and time.monotonic() < deadline, "kb serve did not start"
                time.sleep(0.2)
        job = client.wait(client.submit_folder(docs, origin="cli")["id"])
        assert job["state"] == "done", job
        with pytest.MonkeyPatch.context() as mp:
            for k, v in env.items():
                mp.setenv(k, v)
            yield client
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def app_test():
    from streamlit.testing.v1 import AppTest

    return AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=60)


def on_page(name: str):
    at = app_test().run()
    if name != "search":
        at.switch_page(f"views/{name}.py").run()
    assert not at.exception, at.exception
    return at


def text_of(elements) -> str:
    return " ".join(str(e.value) for e in elements).replace("\\", "")


def test_search_page_shows_cards_with_file_location_headings_and_scores(served):
    at = on_page("search")
    at.text_input(key="search_query").input("how do I start the knowledge base").run()
    assert not at.exception
    md = text_of(at.markdown)
    assert "**1.** [**guide.md**](" in md and "— lines 1–5" in md
    assert "source=docs%2Fguide.md" in md  # the link opens the file: its source and path
    assert marked("start") in md and marked("knowledge base") in md
    captions = text_of(at.caption)
    assert "Guide · docs/guide.md · markdown · score " in captions


def test_search_page_filters_and_marks_chinese(served):
    at = on_page("search")
    at.multiselect(key="search_kinds").select("text")
    at.text_input(key="search_query").input("向量数据库").run()
    assert not at.exception
    titles = [m.value for m in at.markdown if m.value.startswith("**")]
    assert titles and all("notes" in t for t in titles)
    assert marked("向量数据库") in text_of(at.markdown)


def test_library_page_uploads_follows_the_job_lists_and_deletes(served):
    at = on_page("library")
    body = b"# Upload\n\nThe uploaded canary is velvet quokka.\n"
    at.file_uploader(key="upload_files").set_value(
        [("quokka.md", body, "text/markdown"), ("clip.mp4", b"\x00\x00\x00\x18ftypmp42", "video/mp4")]
    )
    at.button(key="upload_go").click().run()
    assert not at.exception
    job = served.jobs()[0]
    assert job["kind"] == "upload" and job["origin"] == "ui"
    served.wait(job["id"])
    at.run()
    rows = at.table[0].value.map(lambda v: v.replace("\\", ""))
    assert list(rows["file"]) == ["quokka.md", "clip.mp4"]
    assert list(rows["status"]) == ["indexed", "not accepted: unsupported file type (.mp4)"]
    assert "indexed 1" in text_of(at.success)
    assert "from cli" in text_of(at.caption)  # the fixture's CLI job is listed too
    assert "indexed 2 · updated 0 · unchanged 0" in text_of(at.caption)  # its counts, from the brief listing
    assert {"guide.md", "notes.txt", "quokka.md"} == document_names(at)
    source = next(d["source"] for d in served.documents() if d.get("original_name") == "quokka.md")
    at.multiselect(key="delete_sources").select(source).run()
    at.button(key="delete_go").click().run()
    assert not at.exception
    assert source not in {d["source"] for d in served.documents()}
    assert "quokka.md" not in document_names(at)


def document_names(at) -> set[str]:
    """The names in every source's document table."""
    return {name for table in at.dataframe for name in table.value["name"]}


def test_library_lists_sources_first_filters_search_by_source_and_removes_one(served, tmp_path):
    other = tmp_path / "handbook"
    other.mkdir()
    (other / "guide.md").write_text("# Guide\n\n## Install\n\nThe handbook canary is a teal heron.\n")
    job = served.submit_folder(other, origin="cli")
    assert served.wait(job["id"])["state"] == "done"
    at = on_page("library")
    labels = [e.label for e in at.expander]
    assert any(label.startswith("docs · 2 files") for label in labels), labels
    assert any(label.startswith("handbook · 1 files") for label in labels), labels
    assert {"guide.md", "notes.txt"} <= document_names(at)

    search = on_page("search")
    search.multiselect(key="search_sources").select("handbook")
    search.text_input(key="search_query").input("guide install").run()
    assert not search.exception
    captions = text_of(search.caption)
    assert "handbook/guide.md" in captions and "docs/guide.md" not in captions

    at.button(key="remove_source_handbook").click().run()
    assert not at.exception
    assert "handbook" not in {s["name"] for s in served.sources()}
    assert not any(e.label.startswith("handbook") for e in at.expander)
    assert (other / "guide.md").is_file()  # the folder itself is left alone


def test_library_page_indexes_a_server_folder(served, tmp_path):
    (tmp_path / "plan.txt").write_text("The folder canary is amber lynx.\n")
    at = on_page("library")
    at.text_input(key="folder_path").input(str(tmp_path))
    at.button(key="folder_go").click().run()
    assert not at.exception
    job = next(j for j in served.jobs() if j["path"] == str(tmp_path))
    assert job["origin"] == "ui"
    assert served.wait(job["id"])["state"] == "done"
    at.text_input(key="folder_path").input("/no/such/folder")
    at.button(key="folder_go").click().run()
    assert "not a folder" in text_of(at.error)


def test_status_page_shows_model_device_dim_size_and_last_ingest(served):
    at = on_page("status")
    metrics = {m.label: m.value for m in at.metric}
    status = served.status()
    assert f"**Model** {Path(status['model_path']).name}" in text_of(at.markdown)
    assert metrics["Device"] == status["device"]
    assert metrics["Dimension"].startswith(str(status["dim"]))
    assert int(metrics["Chunks stored"].replace(",", "")) == status["points"] > 0
    assert metrics["Model load"].endswith(" s")
    assert "indexed" in text_of(at.success)
    if status["device"] == "CPU":  # on a GPU the figures come from nvidia-smi (test_gpuinfo.py)
        assert metrics["VRAM"] == "n/a (CPU)" and status["vram"] is None
    else:
        assert metrics["VRAM"] == vram_label(status)


def test_evaluation_page_explains_how_to_make_a_report_then_shows_it(served):
    out = Path(served.status()["data_dir"]) / REPORT_DIR
    assert not out.exists() or not any(out.glob("*.json")), "no test writes a report before this one"
    at = on_page("evaluation")
    assert "make eval" in text_of(at.info) and "kb eval data/eval/traps.jsonl" in text_of(at.info)
    assert not at.dataframe
    old = backdate(out, write_sample(out, "older", ("small", "large")))
    new = write_sample(out, "traps")
    at = on_page("evaluation")
    assert not at.info and at.selectbox(key="eval_report").value == new
    table = at.dataframe[0].value
    assert list(table["config"]) == ["dense", "hybrid"] and list(table["nDCG@10"]) == [0.5, 0.75]
    assert {"Top-1", "Top-3", "Top-5", "R@10", "MRR@10", "P50 ms", "P99 ms"} <= set(table.columns)
    assert len(at.image) == 1 and "latency" in at.image[0].captions[0]
    assert "| dense | 0.500 |" in at.code[0].value  # the Markdown report, as the file has it
    assert "<b>traps</b>" in text_of(at.warning) and "<b>" not in " ".join(w.value for w in at.warning)
    at.selectbox(key="eval_report").select(old).run()
    assert not at.exception
    assert list(at.dataframe[0].value["config"]) == ["small", "large"]


def test_ask_page_says_how_to_turn_answers_on_when_they_are_off(served):
    at = on_page("ask")
    at.text_input(key="ask_question").input("how do I start the knowledge base")
    at.button(key="ask_go").click().run()
    assert not at.exception
    hint = text_of(at.info)
    assert "Answers are off" in hint and "KB_LLM_MODEL" in hint and "KB_LLM_URL" in hint
    assert not at.error and "ask_last" not in at.session_state


@pytest.mark.parametrize("page", ["search", "ask", "library", "evaluation", "status"])
def test_unreachable_service_is_explained(page, monkeypatch):
    monkeypatch.setenv("KB_SERVICE_URL", f"http://127.0.0.1:{free_port()}")
    at = on_page(page)
    assert any("kb serve" in e.value and "make run" in e.value for e in at.error)
    assert not at.text_input and not at.button
