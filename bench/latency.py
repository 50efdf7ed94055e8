"""Query latency on the embedded store: ingest throughput, then dense and hybrid queries through the real path.

Each store holds ``n`` points shaped like real chunks: a random unit 1024-dim vector, a BM25 sparse
vector of ~1 KB of Zipf-distributed text (a 256-token chunk) and the chunk payload. Queries go
through ``kb.search.query.search`` with the loaded query embedder, dense only and hybrid (dense +
sparse, fused by the store); the timings it returns split embed from store time. The concurrency
rows issue queries from several threads at once against one embedder guarded the way the service
guards it (one query context, one thread at a time) and one store.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np

SIZES = (10_000, 100_000)
QUERIES = 200  # timed searches per mode and size
WARMUP_QUERIES = 5
CONCURRENCY = (1, 16, 64)
CONCURRENCY_POINTS = 10_000  # the store size the concurrency rows run on
CONCURRENT_QUERIES = 128  # at least this many per concurrency level
PER_THREAD_QUERIES = 4  # and at least this many per thread
INGEST_BATCH = 2_000
CHUNK_CHARS = 1_024  # ~256 tokens of prose
CHUNKS_PER_FILE = 10
VOCAB_WORDS = 30_000
ZIPF_SHIFT = 2.7  # Zipf–Mandelbrot rank shift: word frequencies close to English
QUERY_SKIP_RANKS = 50  # query words skip the most frequent (stop-word-like) ranks
SYLLABLES = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"]
PERCENTILES = (50, 90, 99)


def percentiles(ms: list[float], prefix: str) -> dict[str, float]:
    return {f"{prefix}_p{p}_ms": float(np.percentile(ms, p)) for p in PERCENTILES}


class Corpus:
    """Deterministic chunk text: pseudo-words drawn by a Zipf–Mandelbrot law."""

    def __init__(self, seed: int = 3) -> None:
        self.rng = np.random.default_rng(seed)
        words: set[str] = set()
        while len(words) < VOCAB_WORDS:
            n = int(self.rng.integers(1, 5))
            words.add("".join(self.rng.choice(SYLLABLES, n)))
        self.words = np.array(sorted(words, key=lambda w: (len(w), w)))  # short words are frequent
        weights = 1.0 / (np.arange(VOCAB_WORDS) + ZIPF_SHIFT)
        self.cdf = np.cumsum(weights / weights.sum())
        self.words_per_chunk = int(CHUNK_CHARS / (np.mean([len(w) for w in self.words[:2000]]) + 1) * 1.5)

    def _ranks(self, n: int, skip: int = 0) -> np.ndarray:
        """``n`` word ranks by the law, the ``skip`` most frequent left out."""
        low = self.cdf[skip - 1] if skip else 0.0
        return np.searchsorted(self.cdf, self.rng.uniform(low, self.cdf[-1], n)).clip(0, VOCAB_WORDS - 1)

    def _text(self, n_words: int, chars: int) -> str:
        text = " ".join(self.words[self._ranks(n_words)])
        return text[: text.rfind(" ", 0, chars + 1)] if len(text) > chars else text

    def chunk(self) -> str:
        return self._text(self.words_per_chunk, CHUNK_CHARS)

    def heading(self) -> list[str]:
        return [self._text(3, 40), self._text(4, 60)]

    def query(self) -> str:
        return "how do I " + " ".join(self.words[self._ranks(int(self.rng.integers(3, 7)), QUERY_SKIP_RANKS)])


def _payload(i: int, text: str, heading: list[str]) -> dict:
    file_no, position = divmod(i, CHUNKS_PER_FILE)
    return {
        "text": text,
        "source": f"docs/part{file_no % 50}/file{file_no}.md",
        "kind": "markdown",
        "ext": "md",
        "position": position,
        "n_chunks": CHUNKS_PER_FILE,
        "chunk_hash": f"{i:016x}",
        "file_hash": f"{file_no:016x}",
        "page": None,
        "heading_path": heading,
        "line_start": position * 20 + 1,
        "line_end": position * 20 + 20,
        "n_tokens": 256,
        "meta": {},
    }


def fill(store, n: int, dim: int, corpus: Corpus, rng: np.random.Generator) -> dict:
    """Upsert ``n`` chunk-shaped points, flush, optimize; the seconds each step took."""
    from ingest.sparse import sparse_vector
    from ingest.store.base import Point

    upsert_s = sparse_s = 0.0
    for start in range(0, n, INGEST_BATCH):
        count = min(INGEST_BATCH, n - start)
        vecs = rng.standard_normal((count, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        t = time.perf_counter()
        points = []
        for j, v in enumerate(vecs):
            text, heading = corpus.chunk(), corpus.heading()
            points.append(
                Point(
                    f"00000000-0000-0000-0000-{start + j:012d}",
                    v,
                    _payload(start + j, text, heading),
                    sparse_vector(" ".join([*heading, text])),
                )
            )
        sparse_s += time.perf_counter() - t
        t = time.perf_counter()
        store.upsert(points)
        upsert_s += time.perf_counter() - t
        if (start + count) % 10_000 == 0:
            print(f"  {start + count:,} points, upsert {upsert_s:.0f} s", file=sys.stderr, flush=True)
    t = time.perf_counter()
    store.flush()
    flush_s = time.perf_counter() - t
    t = time.perf_counter()
    store.optimize()
    optimize_s = time.perf_counter() - t
    print(f"  flush {flush_s:.1f} s, optimize {optimize_s:.0f} s", file=sys.stderr, flush=True)
    return {
        "upsert_s": upsert_s,
        "upsert_points_s": n / upsert_s,
        "text_and_sparse_s": sparse_s,
        "flush_s": flush_s,
        "optimize_s": optimize_s,
    }


def query_run(embedder, store, queries: list[str], hybrid: bool) -> dict:
    """Sequential queries through the real search path: embed, store and end-to-end times."""
    from kb.search.query import SearchRequest, search

    for q in queries[:WARMUP_QUERIES]:
        search(SearchRequest(q, hybrid=hybrid), embedder, store)
    embed, found, total = [], [], []
    for q in queries:
        t = time.perf_counter()
        result = search(SearchRequest(q, hybrid=hybrid), embedder, store)
        total.append((time.perf_counter() - t) * 1000)
        embed.append(result.timings_ms["embed"])
        found.append(result.timings_ms["store"])
    return {
        "mode": "hybrid" if hybrid else "dense",
        "queries": len(queries),
        **percentiles(embed, "embed"),
        **percentiles(found, "store"),
        **percentiles(total, "e2e"),
    }


def _client(serial, store, queries: list[str], barrier: threading.Barrier, out: list[float]) -> None:
    from kb.search.query import SearchRequest, search

    barrier.wait()
    for q in queries:
        t = time.perf_counter()
        search(SearchRequest(q, hybrid=True), serial, store)
        out.append((time.perf_counter() - t) * 1000)


def concurrency_run(embedder, store, queries: list[str], levels=CONCURRENCY) -> list[dict]:
    """End-to-end hybrid queries from ``c`` threads at once, one query context behind the service's lock."""
    from kb.service.core import _SerialQueries

    serial = _SerialQueries(embedder, threading.Lock(), threading.Event())
    rows = []
    for c in levels:
        per_thread = max(PER_THREAD_QUERIES, -(-CONCURRENT_QUERIES // c))
        barrier = threading.Barrier(c + 1)
        outs: list[list[float]] = [[] for _ in range(c)]
        threads = [
            threading.Thread(
                target=_client,
                args=(
                    serial,
                    store,
                    [queries[(i * per_thread + j) % len(queries)] for j in range(per_thread)],
                    barrier,
                    outs[i],
                ),
            )
            for i in range(c)
        ]
        for th in threads:
            th.start()
        barrier.wait()
        t = time.perf_counter()
        for th in threads:
            th.join()
        wall = time.perf_counter() - t
        ms = [x for out in outs for x in out]
        rows.append(
            {"concurrency": c, "queries": len(ms), "queries_s": len(ms) / wall, **percentiles(ms, "e2e")}
        )
        print(f"  concurrency {c}: P50 {rows[-1]['e2e_p50_ms']:.0f} ms", file=sys.stderr, flush=True)
    return rows


def latency_run(model_path: Path, sizes=SIZES, queries: int = QUERIES, concurrency=CONCURRENCY) -> dict:
    import tempfile

    from ingest.model.embedder import Embedder, EngineConfig
    from ingest.model.engine import LlamaModel
    from ingest.model.recipes import QWEN3
    from ingest.store.edge import EdgeStore

    model = LlamaModel(model_path)
    emb = Embedder(model, QWEN3, None, EngineConfig(n_ctx=2048, n_batch=2048, n_ubatch=512), "bench")
    corpus = Corpus()
    texts = [corpus.query() for _ in range(queries)]
    rng = np.random.default_rng(2)
    rows: list[dict] = []
    conc: list[dict] = []
    for n in sizes:
        print(f"latency: {n:,} points", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            store = EdgeStore(Path(tmp) / "c", "bench")
            store.ensure_collection(model.n_embd, {"bench": True})
            ingest = fill(store, n, model.n_embd, corpus, rng)
            for hybrid in (False, True):
                rows.append({"points": n, **ingest, **query_run(emb, store, texts, hybrid)})
                print(f"  {rows[-1]['mode']}: {rows[-1]}", file=sys.stderr, flush=True)
            if n == CONCURRENCY_POINTS and concurrency:
                conc = [{"points": n, **row} for row in concurrency_run(emb, store, texts, concurrency)]
            store.close()
    emb.close()
    return {"rows": rows, "concurrency": conc, "chunk_chars": CHUNK_CHARS, "dim": model.n_embd}


def _ms(row: dict, prefix: str, ps=PERCENTILES) -> str:
    return " / ".join(f"{row[f'{prefix}_p{p}_ms']:,.1f}" for p in ps)


def render(latency: dict) -> list[str]:
    rows, conc = latency["rows"], latency.get("concurrency") or []
    title = (
        f"Embedded store, {latency['dim']}-dim random unit vectors + BM25 sparse vector of "
        f"~{latency['chunk_chars']:,} characters of text per point:"
    )
    header = (
        "| points | upsert points/s | optimize s | mode | query embed P50 / P99 ms "
        "| store search P50 / P90 / P99 ms | end-to-end P50 / P90 / P99 ms |"
    )
    lines = ["", title, "", header, "|---:|---:|---:|---|---|---|---|"]
    lines += [
        f"| {r['points']:,} | {r['upsert_points_s']:,.0f} | {r['optimize_s']:,.1f} | {r['mode']} | "
        f"{_ms(r, 'embed', (50, 99))} | {_ms(r, 'store')} | {_ms(r, 'e2e')} |"
        for r in rows
    ]
    if conc:
        lines += [
            "",
            f"Concurrent hybrid queries (embed + search) on {conc[0]['points']:,} points, one query context:",
            "",
            "| threads | queries | queries/s | end-to-end P50 / P90 / P99 ms |",
            "|---:|---:|---:|---|",
        ]
        lines += [
            f"| {c['concurrency']} | {c['queries']} | {c['queries_s']:.2f} | {_ms(c, 'e2e')} |" for c in conc
        ]
    return lines
