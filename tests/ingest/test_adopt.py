"""A collection written the way the version before named sources wrote it (keys relative to one folder,
uploads under ``.uploads/``, no ``source_name``/``path``, ids from those keys, a fingerprint without
``identity``), taken over in place: on the embedded engine and on the server adapter (``:memory:``),
then through `kb ingest DIR --name N --adopt`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from qdrant_client import QdrantClient

from ingest.adopt import AdoptRefused, adopt_legacy, new_key
from ingest.pipeline import ChunkSettings, LegacyCollection, ingest_folder
from ingest.records import point_id
from ingest.store import Point, ServerStore, Store, make_store
from kb.contract import split_source
from kb.settings import Settings
from tests.service.test_service import free_port, kb_env

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

CS = ChunkSettings(target=64, overlap=8)
UPLOAD = "0123456789abcdef-notes.md"


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def snapshot(store: Store) -> dict[str, tuple[dict, np.ndarray, tuple]]:
    return {
        p.id: (p.payload, np.asarray(p.vector), tuple(p.sparse.indices) if p.sparse else ())
        for p in store.scroll_points()
    }


def make_legacy(store: Store) -> None:
    """Rewrite the collection as the previous version would have written the same files."""
    old = []
    for p in store.scroll_points():
        name, rel = split_source(p.payload["source"])
        key = f".uploads/{rel}" if name == "uploads" else rel
        payload = {k: v for k, v in p.payload.items() if k not in ("source_name", "path")}
        old.append(Point(point_id(key, payload["position"]), p.vector, {**payload, "source": key}, p.sparse))
    fingerprint = {k: v for k, v in (store.fingerprint() or {}).items() if k != "identity"}
    store.recreate_collection(len(old[0].vector), fingerprint)
    store.upsert(old)
    store.flush()


@pytest.fixture(params=["edge", "server"])
def store(request, qwen3_settings, tmp_path):
    if request.param == "edge":
        s: Store = make_store(qwen3_settings.model_copy(update={"data_dir": tmp_path / "data"}))
    else:
        s = ServerStore(QdrantClient(":memory:"), "kb")
    yield s
    s.close()


def folder(tmp: Path) -> Path:
    root = tmp / "handbook"
    write(root / "README.md", "# Handbook\n\nThe albatross manual explains wing maintenance.\n")
    write(root / "guide" / "barometer.md", "# Guide\n\nCalibrating the barometer before every flight.\n")
    write(root / "notes.txt", "Deep notes about the carburettor.\n")
    return root


def test_an_old_collection_is_rekeyed_in_place_without_embedding(store, qwen3_embedder, tmp_path):
    emb = qwen3_embedder
    root, uploads = folder(tmp_path), tmp_path / "uploads"
    write(uploads / UPLOAD, "# Notes\n\nMinutes of the zeppelin committee.\n")
    ingest_folder(root, emb, store, CS, source="handbook", workers=1)
    ingest_folder(uploads, emb, store, CS, source="uploads", workers=1)
    expected, fingerprint = snapshot(store), store.fingerprint()
    make_legacy(store)
    legacy = snapshot(store)
    assert len(legacy) == len(expected) and not set(legacy) & set(expected)
    assert all("source_name" not in payload for payload, _, _ in legacy.values())
    with pytest.raises(LegacyCollection, match="--adopt"):
        ingest_folder(root, emb, store, CS, source="handbook", workers=1)

    report = adopt_legacy(store, emb, CS, "handbook")
    assert report.points == len(expected)
    assert sorted(report.files["handbook"]) == [
        "handbook/README.md",
        "handbook/guide/barometer.md",
        "handbook/notes.txt",
    ]
    assert report.files["uploads"] == [f"uploads/{UPLOAD}"]
    # exactly what this version writes for the same files: ids, payloads, vectors
    adopted = snapshot(store)
    assert adopted.keys() == expected.keys()
    for pid, (payload, vector, sparse) in expected.items():
        assert adopted[pid][0] == payload and np.array_equal(adopted[pid][1], vector)
        assert adopted[pid][2] == sparse
    assert store.fingerprint() == fingerprint and store.count() == len(expected)
    # the next sync embeds nothing; prefix filters work on the new keys
    again = ingest_folder(root, emb, store, CS, source="handbook", workers=1)
    assert len(again.unchanged) == 3 and again.tokens == 0 and not again.indexed + again.updated
    hits = store.search(dense=emb.embed_query("barometer"), k=10, flt=_prefix("handbook/guide"))
    assert [h.source for h in hits] == ["handbook/guide/barometer.md"]
    assert adopt_legacy(store, emb, CS, "handbook").points == 0  # a second run has nothing to do


def test_an_adoption_that_would_overwrite_an_old_point_changes_nothing(store, qwen3_embedder, tmp_path):
    emb = qwen3_embedder
    root = folder(tmp_path)
    write(root / "guide" / "README.md", "# Inner\n\nA file whose new key an old one would take.\n")
    ingest_folder(root, emb, store, CS, source="x", workers=1)
    make_legacy(store)
    before = snapshot(store)
    assert new_key("README.md", "guide") == "guide/README.md"  # an old key of this folder
    with pytest.raises(AdoptRefused, match="another --name"):
        adopt_legacy(store, emb, CS, "guide")
    assert snapshot(store).keys() == before.keys()
    assert adopt_legacy(store, emb, CS, "handbook").points == len(before)
    # cut off before its last step: some points re-keyed, one old one left, the old fingerprint
    old_fingerprint = {k: v for k, v in (store.fingerprint() or {}).items() if k != "identity"}
    store.replace_fingerprint(old_fingerprint)
    store.upsert([_legacy_copy(next(iter(store.scroll_points())))])
    with pytest.raises(AdoptRefused, match="--name handbook"):
        adopt_legacy(store, emb, CS, "other")
    assert adopt_legacy(store, emb, CS, "handbook").files == {"handbook": ["handbook/stray.md"]}
    assert store.count() == len(before) + 1 and "identity" in (store.fingerprint() or {})


def _legacy_copy(point: Point) -> Point:
    payload = {k: v for k, v in point.payload.items() if k not in ("source_name", "path")}
    return Point(point_id("stray.md", 0), point.vector, {**payload, "source": "stray.md"}, point.sparse)


def _prefix(prefix: str):
    from ingest.store import SearchFilter

    return SearchFilter(source_prefix=prefix)


@pytest.mark.slow
def test_kb_ingest_adopt_takes_an_old_collection_over(qwen3_gguf, tmp_path):
    env = kb_env(qwen3_gguf, tmp_path / "data", free_port())
    root = folder(tmp_path)

    def kb(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "kb.cli.main", *args]
        return subprocess.run(
            cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
        )

    assert kb("ingest", str(root), "--name", "handbook").returncode == 0
    settings = Settings(data_dir=tmp_path / "data", _env_file=None)
    store = make_store(settings)
    make_legacy(store)
    store.close()
    refused = kb("ingest", str(root), "--name", "handbook")
    assert refused.returncode == 1 and "--adopt" in refused.stderr
    done = kb("ingest", str(root), "--name", "handbook", "--adopt")
    assert done.returncode == 0, done.stderr
    assert "adopted the previous collection in place" in done.stdout and "3 files as handbook" in done.stdout
    assert "unchanged 3" in done.stdout and "0 tokens" in done.stdout
    found = kb("search", "barometer", "--source", "handbook", "--json")
    assert json.loads(found.stdout)[0]["source"] == "handbook/guide/barometer.md"
