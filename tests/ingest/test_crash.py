"""Crash safety: `kb ingest` SIGKILLed at moments spread over parse, embed and write, then run again.

One data dir goes through a chain of real `kb ingest` subprocesses (the tiny Qwen3 GGUF, the
embedded Qdrant), each SIGKILLed once it has used a given amount of CPU time (the process and its
parse workers): a share of what a clean run spends before its parse workers appear (imports, model
load, the store's creation, hashing), or a share of what it spends after. CPU time, unlike wall
time, does not stretch when the machine is busy, so the kills land in the same phases on a loaded
box. Before each run a file is added, and many after a run that finished before its kill, so every
run has work to be killed in; after the first kill that left points of ``a-gone.md`` the folder is
edited: that file deleted, one shrunk, one grown, one added. After each kill the store is opened (it
must reopen after a SIGKILL) and inspected, and the killed run's workers must not outlive it.
Finally the same ingest runs to the end, and the store must equal a clean run over a copy of the
final folder: the same point ids, payloads and vectors, no duplicates, no points of deleted files,
every file complete.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from ingest.store import make_store
from kb.settings import Settings

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CHUNK_TOKENS = 32
BATCH_TOKENS = 256  # a few files per embed call and write: many batches, files across batches
# when each run is killed, in CPU time: ("start", a) after a share of what a clean run spends before
# its parse workers appear (imports, model load, the store's creation, hashing); ("work", b) after a
# share of what it spends from then on (workers starting, parse, chunk, embed, write), counted from
# the moment this run's workers appear
KILLS = 12
SCHEDULE = [
    ("start", 0.5),
    ("start", 0.9),
    ("work", 0.0),
    ("work", 0.1),
    ("work", 0.3),
    ("work", 0.2),
    ("work", 0.45),
    ("work", 0.25),
    ("work", 0.35),
    ("work", 0.15),
    ("work", 0.5),
    ("work", 0.4),
]
MAX_RUNS = 40  # a run that ends before its kill counts as no kill (and more files are added)
REFILL_FILES = 20  # about a quarter of the corpus; doubled after each run in a row that ended
WORKER_EXIT_S = 10.0
RUN_TIMEOUT_S = 120.0
POLL_S = 0.01
WORDS = [
    "vector",
    "search",
    "chunk",
    "embed",
    "store",
    "query",
    "payload",
    "index",
    "token",
    "model",
    "batch",
    "write",
    "crash",
    "resume",
    "kill",
    "point",
    "file",
    "folder",
    "shard",
    "segment",
    "log",
    "replay",
    "flush",
    "upsert",
    "delete",
]


def _paragraphs(rng: random.Random, n: int) -> str:
    return "\n\n".join(
        " ".join(rng.choice(WORDS) for _ in range(rng.randint(30, 90))) + "." for _ in range(n)
    )


def write_corpus(root: Path) -> None:
    rng = random.Random(42)
    for i in range(30):
        sections = [f"## Part {s}\n\n{_paragraphs(rng, rng.randint(1, 2))}" for s in range(rng.randint(2, 4))]
        (root / "notes").mkdir(parents=True, exist_ok=True)
        (root / "notes" / f"doc{i:02}.md").write_text(
            f"# Doc {i}\n\n" + "\n\n".join(sections), encoding="utf-8"
        )
    (root / "plain.txt").write_text(_paragraphs(rng, 5), encoding="utf-8")
    (root / "a-gone.md").write_text("# Gone\n\n" + _paragraphs(rng, 4), encoding="utf-8")
    (root / "src").mkdir()
    (root / "src" / "tool.py").write_text(
        "\n\n".join(
            f"def f{i}(x):\n    return x * {i}  # {' '.join(rng.sample(WORDS, 5))}" for i in range(16)
        )
        + "\n",
        encoding="utf-8",
    )


def add_file(root: Path, i: int) -> None:
    """One more file (sorted last): work for the next run even when the last one finished."""
    rng = random.Random(1000 + i)
    (root / "zz-more").mkdir(exist_ok=True)
    (root / "zz-more" / f"m{i:03}.md").write_text(f"# More {i}\n\n" + _paragraphs(rng, 2), encoding="utf-8")


def edit_corpus(root: Path) -> None:
    """Between a killed run and its resume: delete, shrink, grow and add a file."""
    (root / "a-gone.md").unlink()
    (root / "notes" / "doc03.md").write_text("# Doc 3\n\nNow a single short paragraph.\n", encoding="utf-8")
    grown = root / "notes" / "doc05.md"
    grown.write_text(
        grown.read_text(encoding="utf-8") + "\n\n## Appendix\n\n" + _paragraphs(random.Random(5), 4),
        encoding="utf-8",
    )
    (root / "added.md").write_text("# Added\n\n" + _paragraphs(random.Random(6), 3), encoding="utf-8")


def _env(gguf: Path, data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(
        KB_EMBED_MODEL=str(gguf),
        KB_N_CTX="4096",
        KB_N_BATCH="2048",
        KB_N_UBATCH="512",
        KB_DATA_DIR=str(data),
        KB_CHUNK_TOKENS=str(CHUNK_TOKENS),
        KB_CHUNK_OVERLAP="4",
        KB_EMBED_BATCH_TOKENS=str(BATCH_TOKENS),
        KB_PARSE_WORKERS="2",
        KB_SERVICE_URL="http://127.0.0.1:9",  # nothing listens there: ingest in this process
        PYTHONPATH=str(REPO),
    )
    return env


def _start(gguf: Path, docs: Path, data: Path) -> subprocess.Popen:
    # one source name for every folder, so that the reference run's points are comparable
    cmd = [sys.executable, "-m", "kb.cli.main", "ingest", str(docs), "--name", "docs", "--json"]
    # cwd: a folder without a .env, so that only the variables above configure the run
    return subprocess.Popen(
        cmd, env=_env(gguf, data), cwd=data.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )


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


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """User and system CPU time of a process (all its threads) so far; None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK


@dataclass
class Run:
    seconds: float  # wall time from the start to the exit or the kill
    cpu: float  # CPU time of the process and its parse workers by then
    cpu_at_workers: float | None  # CPU time of the process when its first worker appeared
    killed: bool


def run(gguf: Path, docs: Path, data: Path, kill: tuple[str, float] | None = None) -> Run:
    """One `kb ingest`, SIGKILLed when it (with its workers) has used ``kill = ("start", s)`` s of CPU,
    or ``("work", s)`` s since its parse workers appeared, unless it ends first. The killed run's
    workers must not outlive it."""
    proc = _start(gguf, docs, data)
    started = time.monotonic()
    used: dict[int, float] = {}  # pid -> CPU seconds last seen (a worker's stay counted when it ends)
    at_workers = None
    try:
        while proc.poll() is None:
            kids = _children(proc.pid)
            for pid in (proc.pid, *kids):
                cpu = _cpu_seconds(pid)
                if cpu is not None:
                    used[pid] = cpu
            cpu = sum(used.values())
            if kids and at_workers is None:
                at_workers = cpu
            if kill is not None:
                since = 0.0 if kill[0] == "start" else at_workers
                if since is not None and cpu - since >= kill[1]:
                    proc.send_signal(signal.SIGKILL)
                    break
            assert time.monotonic() - started < RUN_TIMEOUT_S, "kb ingest did not finish"
            time.sleep(POLL_S)
        _out, err = proc.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    done = Run(time.monotonic() - started, sum(used.values()), at_workers, proc.returncode == -signal.SIGKILL)
    if done.killed:
        workers = set(used) - {proc.pid}
        deadline = time.monotonic() + WORKER_EXIT_S
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(POLL_S)
        assert not [w for w in workers if _alive(w)], "processes of the killed run outlived it"
    else:
        assert proc.returncode == 0, err.decode(errors="replace")[-3000:]
    return done


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
        points = {
            p.id: (
                p.payload,
                np.asarray(p.vector, dtype=np.float32),
                (p.sparse.indices, p.sparse.values) if p.sparse else (),
            )
            for p in store.scroll_points()
        }
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
    docs, data = tmp_path / "docs", tmp_path / "data"
    write_corpus(tmp_path / "first")
    clean = run(qwen3_gguf, tmp_path / "first", tmp_path / "data-first")
    assert clean.cpu_at_workers is not None
    cost = {"start": clean.cpu_at_workers, "work": clean.cpu - clean.cpu_at_workers}

    write_corpus(docs)
    log, kills, partial, edited, missed = [], 0, 0, False, 0
    for i in range(MAX_RUNS):
        if kills == KILLS:
            break
        if i:
            add_file(docs, i)
        phase, share = SCHEDULE[kills]
        # a run that ended before its kill had less work than the clean one: aim earlier next time
        done = run(qwen3_gguf, docs, data, kill=(phase, share * cost[phase] / 2**missed))
        left = snapshot(data)
        log.append(f"run {i} {SCHEDULE[kills]}: {done} points={len(left.points)} partial={left.partial}")
        assert left.count == len(left.points), "\n".join(log)
        kills += done.killed
        partial += bool(left.partial)
        missed = 0 if done.killed else missed + 1
        if missed:  # it ran out of work before its kill: more for the next run, twice as much each time
            for j in range(REFILL_FILES * 2 ** (missed - 1)):
                add_file(docs, 1000 * (i + 1) + j)
        if not edited and "docs/a-gone.md" in left.states:  # the folder changes while the run is down
            edit_corpus(docs)
            edited = True
    assert kills == KILLS and edited, "\n".join(log)
    assert partial >= 2, "\n".join(log)  # some kills landed between the first and the last write of a file
    assert not run(qwen3_gguf, docs, data).killed

    shutil.copytree(docs, tmp_path / "reference")
    assert not run(qwen3_gguf, tmp_path / "reference", tmp_path / "data-reference").killed
    want = snapshot(tmp_path / "data-reference")
    assert len(want.points) > 150 and "docs/a-gone.md" not in want.states and "docs/added.md" in want.states
    assert_same(snapshot(data), want)
