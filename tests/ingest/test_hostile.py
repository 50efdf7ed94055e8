"""Hostile input: one ingest over a folder of crafted and broken files (``hostile.py``) beside good ones.

Every hostile file is either indexed (when it is in fact fine) or named in the report with its
reason; parsing runs in worker processes under a time and a memory limit (a worker that hits one
is replaced); the run neither stops nor takes this process down, its own memory stays flat, and
every good file goes in. A file is deleted and another swapped for a FIFO after discovery, before
parsing (through the progress callback, which is first called between the two).
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

import pytest

from ingest.loaders import LoadOptions
from ingest.parsing.pool import ParseLimits, ParsePool
from ingest.pipeline import ChunkSettings, IngestLimits, Progress, ingest_folder
from ingest.store import make_store
from tests.helpers.hostile import (
    ANY_REASON,
    EXCEEDED,
    INDEXED_OR_SKIPPED,
    XSS_MARKDOWN,
    write_good,
    write_hostile,
)

PARSE_TIMEOUT_S = 8.0
PARSE_MEMORY_MB = 1024
MAX_FILE_MB = 64
RUN_BOUND_S = 75.0  # the whole ingest, timeouts included (2 cores, the tiny model)
OWN_GROWTH_MB = 400  # how much this process's peak memory may grow during the run
KB = 1024  # ru_maxrss is in kB


@pytest.fixture()
def store(qwen3_settings, tmp_path):
    store = make_store(qwen3_settings.model_copy(update={"data_dir": tmp_path / "data"}))
    yield store
    store.close()


@pytest.mark.slow
def test_hostile_files_are_reported_bounded_and_good_ones_go_in(qwen3_embedder, store, tmp_path):
    docs = tmp_path / "docs"
    expected = write_hostile(docs)
    good = write_good(docs)
    (docs / "zz_after_the_bomb.md").write_text(
        "# After\n\nParsed by a replacement worker.\n", encoding="utf-8"
    )
    good.append("zz_after_the_bomb.md")
    (docs / "vanishing.md").write_text("# Soon gone\n", encoding="utf-8")
    (docs / "swapped.md").write_text("# Soon a FIFO\n", encoding="utf-8")

    def on_progress(p: Progress) -> None:  # first called after discovery and hashing, before parsing
        if (docs / "vanishing.md").exists():
            (docs / "vanishing.md").unlink()
            (docs / "swapped.md").unlink()
            os.mkfifo(docs / "swapped.md")  # the worker's open() blocks until the time limit

    limits = IngestLimits(MAX_FILE_MB, parse=ParseLimits(PARSE_TIMEOUT_S, PARSE_MEMORY_MB))
    own_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    report = ingest_folder(
        docs,
        qwen3_embedder,
        store,
        ChunkSettings(256, 32),
        source="docs",
        workers=2,
        on_progress=on_progress,
        load_options=LoadOptions(ocr="off"),
        limits=limits,
    )
    elapsed = time.monotonic() - started
    skipped = {key.removeprefix("docs/"): why for key, why in report.skipped}
    indexed = [key.removeprefix("docs/") for key in report.indexed]

    assert len(expected) >= 36
    for name, expect in expected.items():
        if expect.reason is None:
            assert name in indexed, f"{name} ({expect.note}) should be indexed: {skipped.get(name)}"
        elif expect.reason == INDEXED_OR_SKIPPED:
            assert name in indexed or skipped.get(name), f"{name} ({expect.note}) not reported"
        elif expect.reason == ANY_REASON:
            assert skipped.get(name), f"{name} ({expect.note}) not reported"
        else:
            assert expect.reason in skipped.get(name, ""), f"{name} ({expect.note}): {skipped.get(name)!r}"
    assert skipped["vanishing.md"].startswith("cannot read")
    assert skipped["swapped.md"] == f"{EXCEEDED} (no result after {PARSE_TIMEOUT_S:g} s)"
    assert skipped["zipbomb.pdf"]  # PDFium inflates it past the memory cap: EXCEEDED, today
    assert skipped["huge_line.txt"] == f"larger than {MAX_FILE_MB} MB (200 MB)"
    assert all(reason for reason in skipped.values())
    assert set(good) <= set(indexed)
    assert not set(indexed) & set(skipped)

    # the store holds exactly the indexed files, whole
    states = store.file_states()
    assert set(states) == set(report.indexed) and all(s.complete for s in states.values())
    # Markdown with scripts and javascript: links is text: stored as written, never interpreted
    (xss,) = store.retrieve([_point(store, "docs/xss.md")])
    assert '<script>alert("owned")</script>' in xss.text and "javascript:alert(document.cookie)" in xss.text
    assert xss.text == XSS_MARKDOWN.strip()

    # bounded: the time of the run, this process's memory (the workers' is capped: the test below)
    assert elapsed < RUN_BOUND_S
    own_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - own_before
    assert own_growth < OWN_GROWTH_MB * KB


def _point(store, source: str) -> str:
    from ingest.records import point_id

    assert store.file_states()[source].n_chunks >= 1
    return point_id(source, 0)


@pytest.mark.slow
def test_a_worker_lost_mid_file_costs_that_file_only(tmp_path):
    """Workers killed for time and memory are replaced; the files queued behind them still parse,
    in order, and a second pool over the same files gives the same results."""
    from tests.helpers.hostile import write_zip_bomb_pdf

    files = []
    for i in range(6):
        path = tmp_path / f"note{i}.md"
        path.write_text(f"# Note {i}\n\nbody {i}\n", encoding="utf-8")
        files.append(path)
    files.insert(2, tmp_path / write_zip_bomb_pdf(tmp_path))
    fifo = tmp_path / "fifo.md"
    os.mkfifo(fifo)
    files.insert(4, fifo)
    with ParsePool(2, ParseLimits(timeout_s=3.0, memory_mb=PARSE_MEMORY_MB), LoadOptions(ocr="off")) as pool:
        results = list(pool.map(files, str))
        assert pool.replaced == 2
        assert pool.pids
        for pid in pool.pids:
            assert _address_space_limit(pid) == PARSE_MEMORY_MB << 20
    assert [p for p, _ in results] == files
    by_name = {p.name: r for p, r in results}
    assert str(by_name["zipbomb.pdf"]).startswith(EXCEEDED)
    assert str(by_name["fifo.md"]) == f"{EXCEEDED} (no result after 3 s)"
    assert all(by_name[f"note{i}.md"].sections for i in range(6))


def _address_space_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max address space"):
            return int(line.split()[3])
    raise AssertionError("no address space line")
