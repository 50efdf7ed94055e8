"""Backups: `kb export` → `kb import` into a fresh data dir gives back the same collection.

A real collection (the tiny Qwen3 GGUF, the embedded Qdrant) is exported once; imports into a
fresh embedded store and into the server adapter (qdrant-client ``:memory:``) must hold the same
points, the same file states, and answer dense, sparse and hybrid queries with the same hits. A
collection of another fingerprint is refused unless forced; a truncated or foreign file is
refused before anything is written; the commands run as `kb export` / `kb import`.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
import random
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from ingest.loaders import LoadOptions
from ingest.pipeline import ChunkSettings, ingest_folder
from ingest.sparse import query_sparse_vector
from ingest.store import EdgeStore, FingerprintMismatch, ServerStore, make_store
from kb.tools.backup import BackupError, export_collection, import_collection, read_info
from tests.helpers.corpus import write_markdown
from tests.store.test_store import SCORE_RTOL, ranked_groups

REPO = Path(__file__).resolve().parents[2]
QUERIES = [
    "install ibis",
    "熊猫竹子",
    "heron and kingfisher",
    "otter river stone",
    "falcon setext headings",
    "gpu gazelle",
]
WORDS = [
    "otter",
    "river",
    "stone",
    "willow",
    "heron",
    "moss",
    "fern",
    "pebble",
    "current",
    "reed",
    "delta",
    "marsh",
    "kingfisher",
]
K = 8


@pytest.fixture(scope="module")
def exported(qwen3_settings, qwen3_embedder, tmp_path_factory):
    """A collection ingested from Markdown, code and Latin-1 text, and its backup file."""
    root = tmp_path_factory.mktemp("backup")
    docs = root / "docs"
    (docs / "notes").mkdir(parents=True)
    # no two chunks alike (no code files: their functions differ by a word): engines break a tie
    # inside a ranking either way, and the hybrid fusion of the rankings with it
    write_markdown(docs)
    # and notes of one chunk each, of distinct lengths, so that no two BM25 scores tie either
    rng = random.Random(3)
    for i in range(16):
        words = [rng.choice(WORDS) for _ in range(12 + 3 * i)]
        (docs / "notes" / f"note{i}.txt").write_text(" ".join(words) + ".\n", encoding="utf-8")
    store = make_store(qwen3_settings.model_copy(update={"data_dir": root / "source"}))
    ingest_folder(
        docs,
        qwen3_embedder,
        store,
        ChunkSettings(64, 8),
        source="docs",
        workers=1,
        load_options=LoadOptions(ocr="off"),
    )
    path = root / "kb-backup.jsonl.gz"
    info = export_collection(store, path, "kb")
    yield store, path, info
    store.close()


def points(store) -> dict:
    return {
        p.id: (p.payload, np.asarray(p.vector, dtype=np.float32), p.sparse) for p in store.scroll_points()
    }


def queries(store, embedder) -> list[list]:
    """Dense, sparse and hybrid hits of every query."""
    out = []
    for q in QUERIES:
        dense, sparse = embedder.embed_query(q), query_sparse_vector(q)
        out += [
            store.search(dense=dense, k=K),
            store.search(sparse=sparse, k=K),
            store.search(dense=dense, sparse=sparse, k=K),
        ]
    return out


def assert_same_hits(a, b) -> None:
    """Same scores, same ids in the same order up to ties; ties at the cut may show other members."""
    assert np.allclose([h.score for h in a], [h.score for h in b], rtol=SCORE_RTOL)
    assert ranked_groups(a)[:-1] == ranked_groups(b)[:-1]
    payloads = {h.id: h.payload for h in b}
    assert all(payloads[h.id] == h.payload for h in a if h.id in payloads)


def assert_same_points(a: dict, b: dict, atol: float = 0.0) -> None:
    """Same ids, payloads and sparse vectors; dense vectors equal (or within ``atol``: the server
    adapter normalises cosine vectors again on the way in)."""
    assert sorted(a) == sorted(b)
    for pid, (payload, vector, sparse) in a.items():
        assert b[pid][0] == payload and b[pid][2] == sparse
        np.testing.assert_allclose(b[pid][1], vector, rtol=0, atol=atol)


def test_round_trip_into_a_fresh_data_dir_gives_the_same_hits(exported, qwen3_embedder, tmp_path):
    source, path, info = exported
    assert info.points == source.count() > 15 and info.dim == qwen3_embedder.dim
    assert read_info(path) == info
    target = EdgeStore(tmp_path / "qdrant" / "kb", "kb")
    try:
        assert import_collection(target, path) == info
        assert target.fingerprint() == source.fingerprint()
        assert target.file_states() == source.file_states()
        assert_same_points(points(source), points(target))
        found = 0
        for a, b in zip(queries(source, qwen3_embedder), queries(target, qwen3_embedder)):
            assert_same_hits(a, b)
            found += len(a)
        assert found
        import_collection(target, path)  # again: ids are deterministic, nothing changes
        assert target.count() == info.points
    finally:
        target.close()


def test_import_into_the_server_adapter_and_export_from_it(exported, qwen3_embedder, tmp_path):
    source, path, info = exported
    target = ServerStore(QdrantClient(":memory:"), "kb")
    try:
        import_collection(target, path)
        assert export_collection(target, tmp_path / "from-server.jsonl.gz", "kb") == info
        assert target.count() == info.points and target.fingerprint() == source.fingerprint()
        assert target.file_states() == source.file_states()
        assert_same_points(points(source), points(target), atol=1e-6)
        for a, b in zip(queries(source, qwen3_embedder), queries(target, qwen3_embedder)):
            assert_same_hits(a, b)
    finally:
        target.close()


def test_another_fingerprint_is_refused_unless_forced(exported, tmp_path):
    source, path, info = exported
    target = EdgeStore(tmp_path / "kb", "kb")
    try:
        target.ensure_collection(info.dim, {"model": "another-model.gguf", "dim": info.dim})
        target.upsert([next(iter(source.scroll_points()))])
        with pytest.raises(FingerprintMismatch):
            import_collection(target, path)
        assert target.count() == 1 and target.fingerprint()["model"] == "another-model.gguf"
        import_collection(target, path, force=True)
        assert target.fingerprint() == source.fingerprint() and target.count() == info.points
    finally:
        target.close()


def _version_9(lines: list[str]) -> list[str]:
    return [lines[0].replace('"version": 1', '"version": 9'), *lines[1:]]


def _rewrite(path: Path, out: Path, keep) -> Path:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.readlines()
    with gzip.open(out, "wt", encoding="utf-8") as f:
        f.writelines(keep(lines))
    return out


def test_truncated_or_foreign_files_are_refused_before_any_write(exported, tmp_path):
    _source, path, _info = exported
    data = path.read_bytes()
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(data[: len(data) // 2])
    bad = [
        cut,  # a copy that stopped halfway
        _rewrite(path, tmp_path / "no-end.jsonl.gz", lambda lines: lines[:-1]),  # the end marker lost
        _rewrite(path, tmp_path / "short.jsonl.gz", lambda lines: lines[:3] + lines[-1:]),  # points lost
        _rewrite(path, tmp_path / "v9.jsonl.gz", _version_9),
    ]
    foreign = tmp_path / "notes.txt.gz"
    with gzip.open(foreign, "wt") as f:
        f.write('{"hello": "world"}\n')
    plain = tmp_path / "plain.txt"
    plain.write_text("not gzip at all\n")
    target = EdgeStore(tmp_path / "kb", "kb")
    try:
        for p in [*bad, foreign, plain]:
            with pytest.raises(BackupError):
                import_collection(target, p)
        assert target.fingerprint() is None and target.count() == 0
    finally:
        target.close()


def _spoil_first_point(path: Path, out: Path, spoil) -> Path:
    """``path`` with its first point's line changed by ``spoil(row)`` (the count stays right)."""

    def keep(lines: list[str]) -> list[str]:
        row = json.loads(lines[1])
        spoil(row)
        return [lines[0], json.dumps(row) + "\n", *lines[2:]]

    return _rewrite(path, out, keep)


SPOILED = {
    "id": lambda row: row.update(id="not-a-uuid"),
    "sparse-index": lambda row: row.update(sparse={"indices": [-1, 2], "values": [0.5, 0.5]}),
    "sparse-lengths": lambda row: row.update(sparse={"indices": [1, 2], "values": [0.5]}),
    "sparse-text": lambda row: row.update(sparse={"indices": ["a"], "values": [0.5]}),
    "dense-nan": lambda row: row.update(
        dense=base64.b64encode(
            np.full(len(np.frombuffer(base64.b64decode(row["dense"]), "<f4")), np.nan, "<f4")
        ).decode()
    ),
    "dense-base64": lambda row: row.update(dense="@@not base64@@"),
    "payload": lambda row: row.update(payload=["a", "list"]),
    "payload-source": lambda row: row["payload"].pop("source"),
}


def test_a_forced_import_of_a_bad_point_leaves_the_collection_as_it_was(exported, tmp_path):
    source, path, info = exported
    target = EdgeStore(tmp_path / "kb", "kb")
    try:
        target.ensure_collection(info.dim, {"model": "another-model.gguf", "dim": info.dim})
        target.upsert([next(iter(source.scroll_points()))])
        for name, spoil in SPOILED.items():
            bad = _spoil_first_point(path, tmp_path / f"{name}.jsonl.gz", spoil)
            with pytest.raises(BackupError):
                import_collection(target, bad, force=True)
            assert target.count() == 1, name
            assert target.fingerprint()["model"] == "another-model.gguf", name
    finally:
        target.close()


def _kb(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")} | {"PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "kb.cli.main", *args]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.slow
def test_kb_import_and_kb_export_commands(exported, tmp_path):
    source, path, info = exported
    done = _kb("--data-dir", str(tmp_path / "b"), "import", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"imported {info.points} points" in done.stdout
    again = tmp_path / "again.jsonl.gz"
    done = _kb("--data-dir", str(tmp_path / "b"), "export", str(again), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert read_info(again) == info
    with closing(EdgeStore(tmp_path / "b" / "qdrant" / "kb", "kb")) as b:
        assert b.file_states() == source.file_states()

    other = tmp_path / "other"
    store = EdgeStore(other / "qdrant" / "kb", "kb")
    store.ensure_collection(info.dim, {"model": "another-model.gguf"})
    store.close()
    done = _kb("--data-dir", str(other), "import", str(path), cwd=tmp_path)
    assert done.returncode == 1 and "--force" in done.stderr
    done = _kb("--data-dir", str(other), "import", "--force", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    done = _kb("--data-dir", str(tmp_path / "c"), "import", str(tmp_path / "missing.jsonl.gz"), cwd=tmp_path)
    assert done.returncode == 1 and "missing.jsonl.gz" in done.stderr
