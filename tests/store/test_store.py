"""The store adapters: real qdrant-edge on disk and qdrant-client local mode, compared."""

from __future__ import annotations

import dataclasses
import fnmatch
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from ingest.pagesources import PageSources
from ingest.records import Chunk, Hit, point_id, sha256_text
from ingest.sparse import SparseVector, query_sparse_vector, sparse_vector, tokenize
from ingest.store import (
    EdgeStore,
    FileState,
    FingerprintMismatch,
    Point,
    SearchFilter,
    ServerStore,
    Store,
    StoreError,
    make_store,
)
from ingest.store.common import aggregate_file_states, glob_base_dir, normalize_prefix, source_dirs
from kb.settings import Settings

REPO = Path(__file__).resolve().parents[2]
DIM = 16
FINGERPRINT = {"model": "test-embedder", "dim": DIM, "formats": ["md", "py"], "chunk_tokens": 512}
# relative tolerance when comparing the two engines' scores
SCORE_RTOL = 1e-4

# (source, kind, passages): English and Chinese passages of distinct lengths, so that no two
# BM25 weights tie (engines may order ties differently, and a tie would change the fusion)
FILES: list[tuple[str, str, list[str]]] = [
    (
        "docs/guide/intro.md",
        "markdown",
        [
            "Qdrant is a vector database for similarity search.",
            "The knowledge base answers questions from your own documents.",
            "Hybrid search fuses dense vectors with lexical sparse vectors in one ranked list.",
        ],
    ),
    (
        "docs/guide/setup.md",
        "markdown",
        [
            "Install the package and point it at a folder of documents.",
            "The embedded engine keeps the vector database on local disk.",
        ],
    ),
    (
        "docs/api.md",
        "markdown",
        [
            "The search function returns hits with a score, a payload and the id of each point.",
            "Filters restrict any search by folder, by file kind, or by the file extension.",
        ],
    ),
    ("docs2/other.md", "markdown", ["A sibling folder whose name starts like docs but is not docs."]),
    (
        "src/kb/store.py",
        "code",
        [
            (
                "def upsert_points(points): store every point in the vector database table, batch by batch, "
                "and wait for the engine itself"
            ),
            "class EdgeStore: wraps the embedded search engine",
            "def delete_source(source, keep_file_hash): remove chunks",
        ],
    ),
    (
        "src/kb/cli.py",
        "code",
        [
            "def main(): parse the command line arguments, then run the ingest pipeline over every folder",
            "print the number of indexed files and search hits to the terminal, one line per file and one total",
        ],
    ),
    (
        "notes/中文笔记.txt",
        "text",
        [
            "向量数据库用于存储和快速检索高维向量。",
            "今天我们讨论混合检索：稠密向量与稀疏向量的融合。",
            "知识库可以回答关于你自己文档的问题。",
        ],
    ),
    (
        "papers/qdrant.pdf",
        "pdf",
        [
            "Approximate nearest neighbour search (HNSW).",
            (
                "Payload filtering during graph traversal keeps recall high in practice, even when the filter "
                "is strict and the graph is large."
            ),
        ],
    ),
    (
        "README",
        "text",
        [
            (
                "Read me first: how to build, test and run the knowledge base on your own machine, step by step, "
                "from a fresh clone."
            ),
        ],
    ),
]

FILTERS = [
    None,
    SearchFilter(source_prefix="docs"),
    SearchFilter(source_prefix="./docs/guide/"),
    SearchFilter(source_prefix="docs/guide/intro.md"),
    SearchFilter(source_glob="*.md"),
    SearchFilter(source_glob="src/kb/*.py"),
    SearchFilter(source_glob="docs/g*"),
    SearchFilter(kinds=("code",)),
    SearchFilter(kinds=("pdf", "text")),
    SearchFilter(exts=("md",)),
    SearchFilter(exts=(".PY", "txt")),
    SearchFilter(source_prefix="docs", exts=("md",), source_glob="*/intro.md"),
]
SPARSE_QUERIES = ["vector database", "向量数据库", "search hits", "knowledge base documents", "稀疏向量"]


def chunks_of(source: str, kind: str, passages: list[str], file_hash: str | None = None) -> list[Chunk]:
    file_hash = file_hash or sha256_text("\n".join(passages))
    return [
        Chunk(
            id=point_id(source, i),
            text=text,
            source=source,
            kind=kind,
            position=i,
            n_chunks=len(passages),
            chunk_hash=sha256_text(text),
            file_hash=file_hash,
            heading_path=("Title",),
            line_start=i + 1,
        )
        for i, text in enumerate(passages)
    ]


def unit_vectors(n: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def points_of(chunks: list[Chunk], seed: int = 0) -> list[Point]:
    vectors = unit_vectors(len(chunks), seed)
    return [Point(c.id, v, c.payload(), sparse_vector(c.text)) for c, v in zip(chunks, vectors)]


CORPUS = [c for source, kind, passages in FILES for c in chunks_of(source, kind, passages)]
POINTS = points_of(CORPUS)


def matches(flt: SearchFilter | None, payload: dict) -> bool:
    """The filter's meaning, written independently of the adapters."""
    if flt is None:
        return True
    source = payload["source"]
    ok = True
    if flt.source_prefix:
        prefix = flt.source_prefix.removeprefix("./").strip("/")
        ok &= source == prefix or source.startswith(prefix + "/")
    if flt.source_glob:
        ok &= fnmatch.fnmatchcase(source, flt.source_glob)
    if flt.kinds:
        ok &= payload["kind"] in flt.kinds
    if flt.exts:
        ok &= payload["ext"] in {e.lower().lstrip(".") for e in flt.exts}
    return ok


def brute_force(query: np.ndarray, flt: SearchFilter | None, k: int) -> list[str]:
    candidates = [p for p in POINTS if matches(flt, p.payload)]
    scores = [float(np.dot(query, p.vector)) for p in candidates]
    return [candidates[i].id for i in np.argsort(scores)[::-1][:k]]


def ranked_groups(hits: list[Hit]) -> list[set[str]]:
    """Ids grouped by equal score (engines may break ties differently)."""
    groups: list[tuple[float, set[str]]] = []
    for hit in hits:
        if groups and abs(hit.score - groups[-1][0]) <= SCORE_RTOL * max(1.0, abs(hit.score)):
            groups[-1][1].add(hit.id)
        else:
            groups.append((hit.score, {hit.id}))
    return [ids for _, ids in groups]


def edge_store(path: Path) -> EdgeStore:
    return EdgeStore(path / "kb", "kb")


@pytest.fixture(params=["edge", "server"])
def store(request, tmp_path) -> Iterator[Store]:
    s: Store = (
        edge_store(tmp_path) if request.param == "edge" else ServerStore(QdrantClient(":memory:"), "kb")
    )
    s.ensure_collection(DIM, FINGERPRINT)
    yield s
    s.close()


@pytest.fixture(scope="module")
def both(tmp_path_factory) -> Iterator[tuple[Store, Store]]:
    edge = edge_store(tmp_path_factory.mktemp("edge"))
    server = ServerStore(QdrantClient(":memory:"), "kb")
    for s in (edge, server):
        s.ensure_collection(DIM, FINGERPRINT)
        s.upsert(POINTS)
    yield edge, server
    edge.close()
    server.close()


# ---------------------------------------------------------------- congruence


def test_corpus_passages_have_distinct_lengths():
    lengths = [tokenize(c.text)[1] for c in CORPUS]
    assert len(set(lengths)) == len(lengths)


@pytest.mark.parametrize("flt", FILTERS, ids=repr)
def test_dense_search_is_exact_and_filtered_on_both(both, flt):
    expected_any = False
    for seed in range(3):
        query = unit_vectors(1, 100 + seed)[0]
        expected = brute_force(query, flt, k=5)
        expected_any |= bool(expected)
        for s in both:
            assert [h.id for h in s.search(dense=query, k=5, flt=flt)] == expected
    assert expected_any


@pytest.mark.parametrize("flt", FILTERS, ids=repr)
def test_sparse_and_hybrid_agree_between_adapters(both, flt):
    edge, server = both
    found = 0
    for i, text in enumerate(SPARSE_QUERIES):
        sparse = query_sparse_vector(text)
        dense = unit_vectors(1, 200 + i)[0]
        for kwargs in ({"sparse": sparse}, {"dense": dense, "sparse": sparse}):
            a = edge.search(k=6, flt=flt, **kwargs)
            b = server.search(k=6, flt=flt, **kwargs)
            assert ranked_groups(a) == ranked_groups(b), (text, kwargs.keys())
            assert np.allclose([h.score for h in a], [h.score for h in b], rtol=SCORE_RTOL)
            assert all(matches(flt, h.payload) for h in a)
            found += len(a)
    assert found


def test_hybrid_ranks_a_point_found_by_both_signals_first(both):
    target = CORPUS[0]  # "Qdrant is a vector database for similarity search."
    for s in both:
        hits = s.search(dense=POINTS[0].vector, sparse=query_sparse_vector("vector database similarity"), k=3)
        assert hits[0].id == target.id
        assert hits[0].payload == target.payload()  # the adapters' own fields are stripped


def test_filter_restricts_to_what_it_names(both):
    edge, _ = both
    sources = {h.source for h in edge.search(sparse=query_sparse_vector("docs"), k=20)}
    assert "docs2/other.md" in sources
    for s in both:
        hits = s.search(dense=POINTS[0].vector, k=50, flt=SearchFilter(source_prefix="docs"))
        assert {h.source for h in hits} == {"docs/guide/intro.md", "docs/guide/setup.md", "docs/api.md"}
        assert s.search(dense=POINTS[0].vector, flt=SearchFilter(source_glob="nothing/*")) == []


def test_readable_sources_restrict_the_engine_query_on_both(both):
    """What a caller may not read is never returned, counted or paged through, whatever the signal."""
    readable = ("docs", "notes")
    held = [p for p in POINTS if p.payload["source_name"] in readable]
    code_only = query_sparse_vector("upsert_points EdgeStore delete_source")  # matches src/ only
    for s in both:
        assert {h.payload["source_name"] for h in s.search(sparse=code_only, k=5)} == {"src"}
        flt = SearchFilter(readable=readable)
        assert s.search(sparse=code_only, k=50, flt=flt) == []
        for kwargs in ({"dense": POINTS[0].vector}, {"dense": POINTS[0].vector, "sparse": code_only}):
            hits = s.search(k=50, flt=flt, **kwargs)
            assert sorted(h.id for h in hits) == sorted(p.id for p in held), kwargs.keys()
        narrowed = SearchFilter(sources=("src", "docs"), readable=readable)
        assert {h.payload["source_name"] for h in s.search(dense=POINTS[0].vector, k=50, flt=narrowed)} == {
            "docs"
        }
        assert (
            s.search(dense=POINTS[0].vector, flt=SearchFilter(source_glob="src/*", readable=readable)) == []
        )
        assert s.search(dense=POINTS[0].vector, flt=SearchFilter(readable=())) == []


# ------------------------------------------------------------ lexical signal


def test_chinese_keyword_is_found_by_the_sparse_signal_alone(store):
    store.upsert(POINTS)
    hits = store.search(sparse=query_sparse_vector("向量数据库"), k=3)
    assert hits[0].text == "向量数据库用于存储和快速检索高维向量。"
    hits = store.search(sparse=query_sparse_vector("稀疏向量"), k=3)
    assert hits[0].text.startswith("今天我们讨论混合检索")


def test_sparse_query_without_overlap_finds_nothing(store):
    store.upsert(POINTS)
    assert store.search(sparse=query_sparse_vector("zyzzyva 鳄鱼"), k=5) == []


def test_empty_sparse_query_is_handled(store):
    store.upsert(POINTS)
    assert store.search(sparse=SparseVector(), k=5) == []
    assert store.search(k=5) == []
    dense = POINTS[3].vector
    assert [h.id for h in store.search(dense=dense, sparse=query_sparse_vector("!!!"), k=3)] == [
        h.id for h in store.search(dense=dense, k=3)
    ]


# ------------------------------------------------------- writes and states


def test_upsert_count_retrieve(store):
    store.upsert(POINTS)
    store.upsert(POINTS[:3])  # same ids: replaced, not added
    assert store.count() == len(POINTS)
    missing = point_id("nowhere", 0)
    hits = store.retrieve([POINTS[2].id, missing, POINTS[0].id])
    assert [h.id for h in hits] == [POINTS[2].id, POINTS[0].id]
    assert hits[0].payload == CORPUS[2].payload()


def test_delete_source_removes_all_its_points(store):
    store.upsert(POINTS)
    store.delete_source("docs/guide/intro.md")
    assert store.count() == len(POINTS) - 3
    assert "docs/guide/intro.md" not in store.file_states()
    assert "docs/guide/setup.md" in store.file_states()


def test_delete_source_keeping_one_hash_removes_only_stale_points(store):
    old = chunks_of("a.md", "markdown", ["one", "two", "three", "four"], file_hash="old")
    new = chunks_of("a.md", "markdown", ["uno", "dos"], file_hash="new")
    store.upsert(points_of(old) + points_of(new, seed=1) + POINTS)
    before = store.file_states()["a.md"]
    assert before == FileState("a.md", "old", 4, 2, mixed=True)  # a tie: the greater hash wins
    assert not before.complete
    store.delete_source("a.md", keep_file_hash="new")
    after = store.file_states()["a.md"]
    assert after == FileState("a.md", "new", 2, 2)
    assert after.complete
    assert [h.text for h in store.retrieve([c.id for c in old])] == ["uno", "dos"]
    assert store.count() == len(POINTS) + 2


def test_file_states_complete_incomplete_and_mixed(store):
    complete = chunks_of("c.md", "markdown", ["a", "b", "c"])
    partial = chunks_of("p.md", "markdown", ["a", "b", "c"])[:2]
    mixed = chunks_of("m.md", "markdown", ["a", "b", "c"], file_hash="h1")[:1]
    mixed += chunks_of("m.md", "markdown", ["x", "y", "z"], file_hash="h2")[1:]
    store.upsert(points_of(complete + partial + mixed))
    states = store.file_states()
    assert states["c.md"] == FileState("c.md", complete[0].file_hash, 3, 3)
    assert states["c.md"].complete
    assert states["p.md"] == FileState("p.md", partial[0].file_hash, 3, 2)
    assert not states["p.md"].complete
    assert states["m.md"] == FileState("m.md", "h2", 3, 2, mixed=True)
    assert not states["m.md"].complete


def test_file_states_carry_a_pdfs_page_sources_from_its_current_points(store):
    meta = {
        "pages": 5,
        "pages_text": 2,
        "pages_fallback": 1,
        "pages_ocr": 1,
        "pages_unreadable": [4],
        "title": "Scans",
    }
    old = chunks_of("s.pdf", "pdf", ["a", "b", "c"], file_hash="h1")  # a shrunk PDF half rewritten
    new = [dataclasses.replace(c, meta={**meta, "ocr": True}) for c in chunks_of("s.pdf", "pdf", ["x"], "h2")]
    store.upsert(points_of(old + new + chunks_of("c.md", "markdown", ["a"])))
    states = store.file_states()
    assert states["s.pdf"].file_hash == "h1" and states["s.pdf"].pages is None  # the majority hash's points
    assert states["c.md"].pages is None
    store.delete_source("s.pdf", keep_file_hash="h2")
    assert store.file_states()["s.pdf"] == FileState("s.pdf", "h2", 1, 1, pages=PageSources(5, 2, 1, 1, (4,)))


# ---------------------------------------------------------- fingerprints


def test_fingerprint_is_stored_and_checked(store):
    assert store.fingerprint() == FINGERPRINT
    store.ensure_collection(DIM, {**FINGERPRINT, "formats": ("md", "py")})  # tuples read back as lists
    with pytest.raises(FingerprintMismatch) as err:
        store.ensure_collection(DIM, {**FINGERPRINT, "model": "other"})
    assert err.value.stored == FINGERPRINT
    assert err.value.wanted["model"] == "other"
    assert "model" in str(err.value)
    without_dim = {k: v for k, v in FINGERPRINT.items() if k != "dim"}
    store.recreate_collection(DIM, without_dim)
    with pytest.raises(FingerprintMismatch):
        store.ensure_collection(DIM * 2, without_dim)


def test_recreate_collection_empties_it(store):
    store.upsert(POINTS)
    store.recreate_collection(DIM * 2, {"model": "bigger"})
    assert store.count() == 0
    assert store.fingerprint() == {"model": "bigger"}
    store.upsert([Point(point_id("x", 0), np.ones(DIM * 2), CORPUS[0].payload(), None)])
    assert store.count() == 1


def test_a_missing_collection_reads_as_empty(tmp_path):
    for s in (edge_store(tmp_path), ServerStore(QdrantClient(":memory:"), "kb")):
        assert (s.fingerprint(), s.count(), s.file_states()) == (None, 0, {})
        assert s.search(dense=np.ones(DIM)) == [] and s.retrieve([POINTS[0].id]) == []
        s.delete_source("a.md")
        with pytest.raises(StoreError):
            s.upsert(POINTS[:1])
        s.close()


# ------------------------------------------------------------ edge on disk


def test_edge_store_serves_several_threads(tmp_path):
    store = edge_store(tmp_path)
    store.ensure_collection(DIM, FINGERPRINT)
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: store.upsert(POINTS[i::4]), range(4)))
        tops = list(pool.map(lambda p: store.search(dense=p.vector, k=1)[0].id, POINTS))
    assert store.count() == len(POINTS)
    assert tops == [p.id for p in POINTS]
    store.close()


def test_edge_store_reopens_with_points_and_fingerprint(tmp_path):
    first = edge_store(tmp_path)
    first.ensure_collection(DIM, FINGERPRINT)
    first.upsert(POINTS)
    first.flush()
    first.close()
    again = edge_store(tmp_path)
    assert again.fingerprint() == FINGERPRINT
    assert again.count() == len(POINTS)
    again.ensure_collection(DIM, FINGERPRINT)
    assert again.search(dense=POINTS[5].vector, k=1)[0].id == POINTS[5].id
    with pytest.raises(FingerprintMismatch):
        again.ensure_collection(DIM, {**FINGERPRINT, "chunk_tokens": 256})
    again.close()


def test_edge_store_refuses_a_second_open(tmp_path):
    first = edge_store(tmp_path)
    first.ensure_collection(DIM, FINGERPRINT)
    with pytest.raises(StoreError, match="another"):
        edge_store(tmp_path)
    code = textwrap.dedent(f"""
        from pathlib import Path
        from ingest.store import EdgeStore, StoreError
        try:
            EdgeStore(Path({str(tmp_path / "kb")!r}), "kb")
        except StoreError as exc:
            print("StoreError", exc)
    """)
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert out.stdout.startswith("StoreError"), out.stdout + out.stderr
    first.upsert(POINTS[:2])  # the refused opens did not disturb the holder
    assert first.count() == 2
    first.close()
    second = edge_store(tmp_path)  # released by close()
    assert second.count() == 2
    second.close()


def test_flushed_points_survive_sigkill(tmp_path):
    n = 300
    code = textwrap.dedent(f"""
        import sys, time, numpy as np
        from pathlib import Path
        from ingest.records import point_id
        from ingest.store import EdgeStore, Point
        store = EdgeStore(Path({str(tmp_path / "kb")!r}), "kb")
        store.ensure_collection({DIM}, {FINGERPRINT!r})
        vectors = np.random.default_rng(0).standard_normal(({n}, {DIM}))
        store.upsert([Point(point_id("f.md", i), v, {{"source": "f.md", "file_hash": "h", "n_chunks": {n}}})
                      for i, v in enumerate(vectors)])
        store.flush()
        print("flushed", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "flushed"
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    store = edge_store(tmp_path)
    assert store.count() == n
    assert store.file_states()["f.md"].complete
    store.close()


# --------------------------------------------------------------- factory


def test_make_store_without_url_is_the_edge_store_under_data_dir(tmp_path):
    store = make_store(Settings(data_dir=tmp_path, collection="notes", _env_file=None))
    assert isinstance(store, EdgeStore)
    store.ensure_collection(DIM, FINGERPRINT)
    assert (tmp_path / "qdrant" / "notes").is_dir()
    store.close()


def test_make_store_names_an_unreachable_url(tmp_path):
    url = "http://127.0.0.1:1"
    with pytest.raises(StoreError, match="127.0.0.1:1"):
        make_store(Settings(data_dir=tmp_path, qdrant_url=url, _env_file=None))


# ------------------------------------------------------------ pure helpers


def test_source_dirs_and_prefixes():
    assert source_dirs("a/b/c.md") == ["a", "a/b", "a/b/c.md"]
    assert source_dirs("README") == ["README"]
    assert normalize_prefix("./docs//guide/") == "docs/guide"
    assert normalize_prefix("/") is None
    assert glob_base_dir("docs/*/x.md") == "docs"
    assert glob_base_dir("docs/guide/a?.md") == "docs/guide"
    assert glob_base_dir("*.md") is None
    assert glob_base_dir("do*/x.md") is None


def test_aggregate_file_states_takes_the_majority_hash():
    rows = [{"source": "s", "file_hash": h, "n_chunks": n} for h, n in [("a", 2), ("b", 3), ("b", 3)]]
    assert aggregate_file_states(rows) == {"s": FileState("s", "b", 3, 2, mixed=True)}
