"""What users run, run: in an environment made as `make run` makes one (runtime dependencies only, no
test group: ``tests/helpers/runtime_env.py``), `kb ingest` indexes one file of every format kb reads
and `kb search` finds each file's canary, and neither prints anything but its own output: no
warning, no traceback, no library's note (pypdf once printed a fontTools notice per font, unseen by
a suite whose test group installed fontTools). The files and the tiny model are made here, with
the test group's libraries; the commands run in the runtime environment as subprocesses."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.helpers import formats
from tests.helpers.runtime_env import NoEngineWheel, engine_wheel, runtime_venv

SOURCE = "smoke"
COMMAND_TIMEOUT_S = 300
# one line: "smoke: indexed 13, updated 0, unchanged 0, removed 0, skipped 0 — 40 chunks, … in 3.1 s"
SUMMARY = re.compile(rf"^{SOURCE}: indexed (\d+), updated 0, unchanged 0, removed 0, skipped 0 — \d+ chunks")
# what a leak looks like, named in the failure message (any other unexpected line fails too)
NOISE = re.compile(r"warn|traceback|error|exception|deprecat|fonttools|^\s+File \"", re.IGNORECASE)
PLAIN_FILES = {  # name -> (kind, text with its canary)
    "notes.md": ("markdown", "# Smoke notes\n\nThe mardoquill lives in Markdown.\n"),
    "tool.py": ("code", 'def pythorax():\n    """The pythorax function."""\n    return 1\n'),
    "readme.txt": ("text", "Plain text holds the textiwhorl.\n"),
}
PLAIN_CANARIES = {"notes.md": "mardoquill", "tool.py": "pythorax", "readme.txt": "textiwhorl"}


def _write_folder(docs: Path) -> dict[str, tuple[str, str]]:
    """name -> (kind, a canary word) for one file of every format."""
    made = formats.write_all(docs)
    wanted = {m.name: (m.kind, next(iter(m.canaries))) for m in made}
    wanted["paper.pdf"] = ("pdf", _write_pdf(docs / "paper.pdf"))
    for name, (kind, text) in PLAIN_FILES.items():
        (docs / name).write_text(text, encoding="utf-8")
        wanted[name] = (kind, PLAIN_CANARIES[name])
    return wanted


def _write_pdf(path: Path) -> str:
    """Two pages of text (the second holds the canary); returns the canary."""
    from reportlab.pdfgen import canvas

    pdf = canvas.Canvas(str(path), invariant=1)
    for line in ("A page about search engines.", "The pdfenwick page comes second."):
        pdf.setFont("Helvetica", 12)
        pdf.drawString(72, 720, line)
        pdf.showPage()
    pdf.save()
    return "pdfenwick"


def _environment(venv_python: Path, model: Path, data: Path) -> dict[str, str]:
    """The caller's environment, minus anything that would reach past the runtime environment."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KB_", "PYTHON", "PYTEST"))
        and k not in ("VIRTUAL_ENV", "COVERAGE_PROCESS_START")
    }
    env["PATH"] = f"{venv_python.parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(KB_EMBED_MODEL=str(model), KB_DATA_DIR=str(data), KB_N_CTX="4096")
    return env


def _kb(venv_python: Path, args: list[str], env: dict[str, str], cwd: Path) -> tuple[str, list[str]]:
    """(stdout, unexpected stderr lines) of one kb command, which must succeed."""
    done = subprocess.run(
        [str(venv_python.parent / "kb"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=COMMAND_TIMEOUT_S,
        check=False,
    )
    assert done.returncode == 0, (
        f"kb {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    )
    return done.stdout, [line for line in done.stderr.splitlines() if line.strip()]


def _report_noise(command: str, lines: list[str]) -> str:
    flagged = [line for line in lines if NOISE.search(line)] or lines
    return f"`{command}` printed {len(lines)} unexpected line(s), e.g.:\n" + "\n".join(flagged[:20])


@pytest.mark.slow
def test_what_make_run_installs_ingests_every_format_and_searches_without_noise(qwen3_gguf, tmp_path):
    try:
        engine_wheel()
    except NoEngineWheel as err:
        pytest.skip(str(err))
    docs = tmp_path / "docs"
    wanted = _write_folder(docs)
    with runtime_venv(tmp_path) as python:
        env = _environment(python, qwen3_gguf, tmp_path / "data")

        out, err_lines = _kb(python, ["ingest", str(docs), "--name", SOURCE], env, tmp_path)
        lines = [line for line in out.splitlines() if line.strip()]
        unexpected = [line for line in lines if not SUMMARY.match(line)] + err_lines
        assert not unexpected, _report_noise("kb ingest", unexpected)
        assert lines and int(SUMMARY.match(lines[0]).group(1)) == len(wanted), lines

        for name, (kind, word) in sorted(wanted.items()):
            out, err_lines = _kb(python, ["search", word, "--k", "5", "--json"], env, tmp_path)
            assert not err_lines, _report_noise(f"kb search {word}", err_lines)
            hits = json.loads(out)  # stdout is the JSON and nothing else
            holder = [h for h in hits if h["source"] == f"{SOURCE}/{name}" and word in h["text"].lower()]
            assert holder, f"{word} ({name}) not found: {[h['source'] for h in hits]}"
            assert holder[0]["kind"] == kind and holder[0]["path"] == name
