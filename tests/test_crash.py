"""Crash safety: `kb ingest` SIGKILLed at moments spread over parse, embed and write, then run again.

Each trial starts from an empty data dir, kills a real `kb ingest` subprocess (the tiny Qwen3 GGUF,
the embedded Qdrant) after a delay taken from a measured clean run, looks at what the killed run
left, sometimes edits the folder (a file deleted, one shrunk, one grown, one added) and sometimes
kills the resumed run too, then runs the same ingest to completion. The store must then equal a
clean run over the final folder: the same point ids, payloads and vectors, no duplicates, no points
of deleted files, every file complete. Reopening a store whose owner was SIGKILLed must work, and
the killed run's parse workers must not outlive it.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ingest.settings import Settings
from ingest.store import make_store

REPO = Path(__file__).resolve().parents[1]
CHUNK_TOKENS = 32
BATCH_TOKENS = 256  # a few files per embed call and write: many batches, files across batches
# when each run is killed: (share of an empty run's time, after the start) lands in the imports, the
# model load or the store's creation; (0, share of a clean run's work) counts from the moment the
# parse workers appear and lands in parse, embed or write. A resumed run first redoes what was
# left half done, so these add up to less than one clean run: every run has work left to be killed in.
DELAYS = [(0.5, 0), (0.9, 0), (0, 0.0), (0, 0.05), (0, 0.25), (0, 0.15), (0, 0.35), (0, 0.1), (0, 0.3),
          (0, 0.2), (0, 0.45), (0, 0.25)]  # fmt: skip
WORKER_EXIT_S = 10.0
RUN_TIMEOUT_S = 120.0
POLL_S = 0.01
WORDS = ("vector search chunk embed store query payload index token model batch write crash resume "
         "kill point file folder shard segment log replay flush upsert delete").split()  # fmt: skip


def _paragraphs(rng: random.Random, n: int) -> str:
    return "\n\n".join(" ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 90))) + "." for _ in range(n))


def write_corpus(root: Path) -> None:
    rng = random.Random(42)
    for i in range(10):
        sections = [f"## Part {s}\n\n{_paragraphs(rng, rng.randint(1, 2))}" for s in range(rng.randint(2, 4))]
        (root / "notes").mkdir(parents=True, exist_ok=True)
        (root / "notes" / f"doc{i:02}.md").write_text(f"# Doc {i}\n\n" + "\n\n".join(sections), encoding="utf-8")
    (root / "plain.txt").write_text(_paragraphs(rng, 5), encoding="utf-8")
    (root / "a-gone.md").write_text("# Gone\n\n" + _paragraphs(rng, 4), encoding="utf-8")
    (root / "src").mkdir()
    (root / "src" / "tool.py").write_text(
        "\n\n".join(f"def f{i}(x):\n    return x * {i}  # {' '.join(rng.sample(WORDS, 5))}" for i in range(16)) + "\n",
        encoding="utf-8",
    )


def edit_corpus(root: Path) -> None:
    """Between a killed run and its resume: delete, shrink, grow and add a file."""
    (root / "a-gone.md").unlink()
    (root / "notes" / "doc03.md").write_text("# Doc 3\n\nNow a single short paragraph.\n", encoding="utf-8")
    grown = root / "notes" / "doc05.md"
    grown.write_text(grown.read_text(encoding="utf-8") + "\n\n## Appendix\n\n" + _paragraphs(random.Random(5), 4),
                     encoding="utf-8")  # fmt: skip
    (root / "added.md").write_text("# Added\n\n" + _paragraphs(random.Random(6), 3), encoding="utf-8")


def _env(gguf: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(KB_EMBED_MODEL=str(gguf), KB_N_CTX="4096", KB_N_BATCH="2048", KB_N_UBATCH="512",
               KB_DATA_DIR=str(data), KB_CHUNK_TOKENS=str(CHUNK_TOKENS), KB_CHUNK_OVERLAP="4",
               KB_EMBED_BATCH_TOKENS=str(BATCH_TOKENS), KB_PARSE_WORKERS="2",
               KB_SERVICE_URL="http://127.0.0.1:9",  # nothing listens there: ingest in this process
               PYTHONPATH=str(REPO))  # fmt: skip
    return env


def _start(gguf: Path, docs: Path, data: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "ingest.cli", "ingest", str(docs), "--json"]
    # cwd: a folder without a .env, so that only the variables above configure the run
    return subprocess.Popen(cmd, env=_env(gguf, data), cwd=data.parent, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip


def _children(pid: int) -> set[int]:
    kids: set[int] = set()
    for listing in Path(f"/proc/{pid}/task").glob("*/children"):
        try:
            kids.update(int(k) for k in listing.read_text().split())
        except OSError:  # the thread or the process ended
            continue
    return kids


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@dataclass
class Run:
    seconds: float  # from the start to the exit or the kill
    parsing: float | None  # when the first parse worker (or its resource tracker) appeared
    killed: bool


def run(gguf: Path, docs: Path, data: Path, *, kill_at: float | None = None,
        kill_after_parsing: float | None = None) -> Run:  # fmt: skip
    """One `kb ingest`, SIGKILLed ``kill_at`` s after its start or ``kill_after_parsing`` s after its
    parse workers appear (whichever is set), unless it ends first; its workers must not outlive it."""
    proc = _start(gguf, docs, data)
    started = time.monotonic()
    parsing, workers = None, set()
    try:
        while proc.poll() is None:
            now = time.monotonic() - started
            kids = _children(proc.pid)
            if kids and parsing is None:
                parsing = now
            workers |= kids
            due = kill_at if kill_after_parsing is None else None if parsing is None else parsing + kill_after_parsing
            if due is not None and now >= due:
                proc.send_signal(signal.SIGKILL)
                break
            assert now < RUN_TIMEOUT_S, "kb ingest did not finish"
            time.sleep(POLL_S)
        out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    seconds = time.monotonic() - started
    if proc.returncode == -signal.SIGKILL:
        deadline = time.monotonic() + WORKER_EXIT_S
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        assert not [w for w in workers if _alive(w)], "processes of the killed run outlived it"
        return Run(seconds, parsing, killed=True)
    assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    return Run(seconds, parsing, killed=False)


@dataclass
class Snapshot:
    points: dict[str, tuple[dict, np.ndarray, tuple]]
    count: int
    states: dict

    @property
    def partial(self) -> list[str]:
        return sorted(s for s, st in self.states.items() if not st.complete)


def snapshot(data: Path) -> Snapshot:
    """What the store under ``data`` holds (opening it after a SIGKILL is part of the test)."""
    store = make_store(Settings(data_dir=data, _env_file=None))
    try:
        points = {p.id: (p.payload, np.asarray(p.vector, dtype=np.float32),
                         (p.sparse.indices, p.sparse.values) if p.sparse else ())
                  for p in store.scroll_points()}  # fmt: skip
        return Snapshot(points, store.count(), store.file_states())
    finally:
        store.close()


def assert_same(got: Snapshot, want: Snapshot) -> None:
    assert got.count == len(got.points), "count disagrees with the points scrolled"
    assert sorted(got.points) == sorted(want.points)
    assert {s for s, st in got.states.items()} == set(want.states)
    assert not got.partial, f"files left incomplete: {got.partial}"
    for pid, (payload, vector, sparse) in want.points.items():
        g_payload, g_vector, g_sparse = got.points[pid]
        assert g_payload == payload
        assert g_sparse == sparse
        np.testing.assert_allclose(g_vector, vector, atol=2e-3)


def test_sigkill_at_any_moment_then_resume_equals_a_clean_run(qwen3_gguf, tmp_path):
    empty, docs, data = tmp_path / "empty", tmp_path / "docs", tmp_path / "data"
    empty.mkdir()
    startup = run(qwen3_gguf, empty, tmp_path / "data-empty").seconds  # process, model, store; no files
    reference = tmp_path / "reference"
    write_corpus(reference)
    edit_corpus(reference)
    clean = run(qwen3_gguf, reference, tmp_path / "data-reference")
    assert clean.parsing is not None
    work = clean.seconds - clean.parsing  # parse, embed and write, from the first worker to the end
    want = snapshot(tmp_path / "data-reference")
    print(f"startup {startup:.2f} clean {clean} points {len(want.points)}")
    assert len(want.points) > 100 and "a-gone.md" not in want.states and "added.md" in want.states

    write_corpus(docs)
    kills, seen_partial, edited = 0, 0, False
    for i, (of_startup, of_work) in enumerate(DELAYS):
        if of_startup:
            killed = run(qwen3_gguf, docs, data, kill_at=of_startup * startup)
        else:
            killed = run(qwen3_gguf, docs, data, kill_after_parsing=of_work * work)
        kills += killed.killed
        left = snapshot(data)
        print(f"kill {i}: {killed} points={len(left.points)} partial={left.partial}")
        assert left.count == len(left.points)
        seen_partial += bool(left.partial)
        if not edited and "a-gone.md" in left.states:  # the folder changes while the run is down
            edit_corpus(docs)
            edited = True
    assert edited and kills >= 10
    # some kills landed between the first and the last write of a file
    assert seen_partial >= 2
    assert not run(qwen3_gguf, docs, data).killed
    assert_same(snapshot(data), want)
