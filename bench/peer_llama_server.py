"""The peer for embedding throughput: llama.cpp's own `llama-server` on its `/embedding` endpoint.

The binary comes from scripts/build_llama_server.sh: the llama.cpp vendored in our pinned
llama-cpp-python, with the same engine patch. It is given what our engine gets in
``bench.engine_worker``: the same model, the same token sequences (random ids ending with
<|endoftext|>, last-token pooling), one slot per sequence so that a request's sequences are
decoded together, the same KV layout (one unified cache, or one stream per sequence), the same
batch sizes and threads. Each case runs its own server on a free loopback port; the sequences go
in one request (the server queues one task per sequence, all at once), after one warm-up request.
Token ids are sent as ids, so the server adds no BOS/EOS; it L2-normalises (its default).
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

KV_PAD = 256  # llama-server wants every input shorter than the KV cache, not just as long
START_TIMEOUT_S = 300  # loading the model on a busy machine
REQUEST_TIMEOUT_S = 3600
STOP_TIMEOUT_S = 30
VOCAB_DRAWN = 151000  # random ids are drawn below this, as in bench.engine_worker
SEED = 0


class PeerError(RuntimeError):
    pass


def case_sequences(cases, eot: int) -> list[list[list[int]]]:
    """The token sequences bench.engine_worker embeds, case by case (same generator, same order)."""
    rng = np.random.default_rng(SEED)
    return [
        [[int(t) for t in rng.integers(0, VOCAB_DRAWN, length - 1)] + [eot] for _ in range(n_seqs)]
        for length, n_seqs, _, _ in cases
    ]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(log, n: int = 3000) -> str:
    log.flush()
    log.seek(0)
    return log.read().decode("utf-8", "replace")[-n:]


def _wait_healthy(url: str, proc: subprocess.Popen, log) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerError(f"llama-server exited with code {proc.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):  # not listening yet, or 503 while loading
            pass
        time.sleep(0.2)
    raise PeerError(f"llama-server not healthy after {START_TIMEOUT_S} s:\n{_tail(log)}")


@contextmanager
def llama_server(binary: Path, model: Path, args: list[str]) -> Iterator[str]:
    """A llama-server process on a free loopback port, healthy; yields its base URL, stops it on exit."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [str(binary), "-m", str(model), "--host", "127.0.0.1", "--port", str(port), *args]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        try:
            _wait_healthy(url, proc, log)
            yield url
        finally:
            proc.terminate()  # SIGTERM: llama-server shuts down cleanly
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def embed(url: str, seqs: list[list[int]]) -> np.ndarray:
    """L2-normalised last-token embeddings, one row per sequence, from one /embedding request."""
    body = json.dumps({"content": seqs}).encode()
    req = urllib.request.Request(url + "/embedding", body, {"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as r:
            rows = json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise PeerError(f"/embedding answered {e.code}: {e.read()[:500]!r}") from e
    rows.sort(key=lambda row: row["index"])
    # a pooled embedding comes as [[...]]: one vector per sequence
    return np.asarray([row["embedding"][0] for row in rows], dtype=np.float32)


def server_args(
    length: int, n_seqs: int, n_batch: int, n_ubatch: int, threads: int, kv_unified: bool = True
) -> list[str]:
    """llama-server's flags for one case. kv_unified: one KV cache shared by all slots, as in
    bench.engine_worker; False: one KV stream per slot, as kb's embedder packs short inputs on CPU."""
    if kv_unified:
        n_ctx, layout = max(n_batch, length * n_seqs) + KV_PAD, "--kv-unified"
    else:  # -c is split evenly between the slots
        n_ctx, layout = n_seqs * (length + KV_PAD), "--no-kv-unified"
    return [
        "--embeddings",
        "--pooling",
        "last",
        "-c",
        str(n_ctx),
        "-b",
        str(max(n_batch, length)),
        "-ub",
        str(n_ubatch),
        "-np",
        str(n_seqs),
        layout,
        "-t",
        str(threads),
        "-tb",
        str(threads),
        "-fa",
        "auto",
        "--fit",
        "off",
        "--cache-ram",
        "0",
        "--no-webui",
        "--no-slots",
    ]


def _ours(
    model: Path, cases, check_case: int | None, n_ubatch: int, kv_unified: bool
) -> tuple[int, np.ndarray | None]:
    """The <|endoftext|> id, and our engine's embeddings of the checked case (one packed decode)."""
    from ingest.model.engine import ContextConfig, LlamaModel

    m = LlamaModel(model)
    try:
        eot = m.token_id("<|endoftext|>")
        if eot is None:
            raise PeerError(f"{model.name} has no <|endoftext|> token")
        if check_case is None:
            return eot, None
        length, n_seqs, _, n_batch = cases[check_case]
        n_ctx = max(n_batch, length) if kv_unified else n_seqs * length
        ctx = m.context(
            ContextConfig(
                n_ctx=n_ctx,
                n_batch=max(n_batch, length),
                n_ubatch=n_ubatch,
                n_seq_max=max(1, n_seqs),
                pooling="last",
                kv_unified=kv_unified,
            )
        )
        try:
            return eot, ctx.embed(case_sequences(cases, eot)[check_case])
        finally:
            ctx.close()
    finally:
        m.close()


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return float(np.min(np.sum(a * b, axis=1)))


def llama_server_run(
    binary: Path,
    model: Path,
    cases: list[tuple[int, int, int, int]],
    threads: int = 0,
    n_ubatch: int = 2048,
    check_case: int | None = 0,
    kv_unified: bool = True,
    extra_args: tuple[str, ...] = (),
) -> list[dict]:
    """Rows like bench.engine_worker's, plus ``cosine_vs_ours``: the lowest cosine, over the sequences
    of case ``check_case``, between llama-server's vector and our engine's (None for the other cases).
    ``extra_args`` go to the server after ours (``-ngl 999`` on a GPU)."""
    threads = threads or os.cpu_count() or 1
    eot, ours = _ours(model, cases, check_case, n_ubatch, kv_unified)
    rows = []
    all_seqs = case_sequences(cases, eot)
    for i, (length, n_seqs, reps, n_batch) in enumerate(cases):
        seqs = all_seqs[i]
        with llama_server(
            binary, model, [*server_args(length, n_seqs, n_batch, n_ubatch, threads, kv_unified), *extra_args]
        ) as url:
            first = embed(url, seqs)  # warm-up
            times = []
            for _ in range(reps):
                t = time.perf_counter()
                embed(url, seqs)
                times.append(time.perf_counter() - t)
        med = statistics.median(times)
        rows.append(
            {
                "length": length,
                "seqs": n_seqs,
                "tokens": length * n_seqs,
                "median_s": med,
                "tok_s": length * n_seqs / med,
                "reps": reps,
                "cosine_vs_ours": _min_cosine(first, ours) if i == check_case else None,
            }
        )
    return rows
