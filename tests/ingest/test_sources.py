"""Named sources on the real engine (tiny Qwen3 GGUF) and the real embedded Qdrant: folders side by
side, syncs scoped to their source, the safety rules, the registry, a collection of the old layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import (
    ChunkSettings,
    LegacyCollection,
    SyncRefused,
    collection_fingerprint,
    ingest_folder,
    remove_source,
    source_states,
)
from ingest.sources import SourceError, SourceRegistry, UnknownSource, default_name
from ingest.store import Point, SearchFilter, make_store
from kb.search.query import SearchRequest, search

CS = ChunkSettings(target=64, overlap=8)


@pytest.fixture()
def env(qwen3_settings, qwen3_embedder, tmp_path):
    store = make_store(qwen3_settings.model_copy(update={"data_dir": tmp_path / "data"}))
    yield tmp_path, store, qwen3_embedder
    store.close()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sync(root: Path, emb, store, name: str, **kw):
    return ingest_folder(root, emb, store, CS, source=name, workers=1, **kw)


def points_of(store, name: str) -> dict[str, tuple[dict, np.ndarray]]:
    return {
        p.id: (p.payload, np.asarray(p.vector))
        for p in store.scroll_points()
        if p.payload["source_name"] == name
    }


def lexical(store, emb, query: str, **flt) -> list[str]:
    req = SearchRequest(query, k=10, dense=False, filter=SearchFilter(**flt) if flt else None)
    return [h.source for h in search(req, emb, store).hits]


def two_folders(tmp: Path) -> tuple[Path, Path]:
    a, b = tmp / "docs-a", tmp / "notes"
    write(a / "README.md", "# Docs A\n\nThe albatross manual explains wing maintenance.\n")
    write(a / "guide.md", "# Guide\n\nCalibrating the barometer before every flight.\n")
    write(a / "sub" / "deep.txt", "Deep notes about the carburettor.\n")
    write(b / "README.md", "# Notes\n\nMinutes of the zeppelin committee.\n")
    write(b / "todo.md", "# Todo\n\nOrder more helium for the zeppelin.\n")
    return a, b


def test_two_folders_live_side_by_side_and_sync_alone(env):
    tmp, store, emb = env
    a, b = two_folders(tmp)
    first = sync(a, emb, store, "docs-a")
    second = sync(b, emb, store, "notes")
    assert first.removed == [] and second.removed == []
    assert sorted(second.indexed) == ["notes/README.md", "notes/todo.md"]
    by_source = source_states(store)
    assert set(by_source) == {"docs-a", "notes"}
    assert set(by_source["docs-a"]) == {"docs-a/README.md", "docs-a/guide.md", "docs-a/sub/deep.txt"}
    # equal relative paths, distinct points: both READMEs are found
    assert lexical(store, emb, "albatross") == ["docs-a/README.md"]
    assert lexical(store, emb, "zeppelin committee")[0] == "notes/README.md"
    hit = search(SearchRequest("albatross", dense=False), emb, store).hits[0]
    assert (hit.source_name, hit.path) == ("docs-a", "README.md")
    # the source filter
    assert lexical(store, emb, "zeppelin albatross", sources=("docs-a",)) == ["docs-a/README.md"]
    assert lexical(store, emb, "zeppelin albatross", readable=()) == []

    notes_before = points_of(store, "notes")
    write(a / "guide.md", "# Guide\n\nCalibrating the altimeter, not the barometer.\n")
    (a / "sub" / "deep.txt").unlink()
    report = sync(a, emb, store, "docs-a")
    assert report.updated == ["docs-a/guide.md"] and report.removed == ["docs-a/sub/deep.txt"]
    assert report.unchanged == ["docs-a/README.md"]
    notes_after = points_of(store, "notes")
    assert notes_after.keys() == notes_before.keys()
    for pid, (payload, vector) in notes_before.items():
        assert notes_after[pid][0] == payload and np.array_equal(notes_after[pid][1], vector)
    assert set(source_states(store)["docs-a"]) == {"docs-a/README.md", "docs-a/guide.md"}

    (b / "todo.md").unlink()
    report = sync(b, emb, store, "notes")
    assert report.removed == ["notes/todo.md"]
    assert set(source_states(store)["docs-a"]) == {"docs-a/README.md", "docs-a/guide.md"}
    assert remove_source(store, "notes") == 1
    assert set(source_states(store)) == {"docs-a"}
    assert store.count() == sum(s.n_points for s in store.file_states().values())


def test_missing_or_empty_folder_never_empties_its_source(env):
    tmp, store, emb = env
    a, b = two_folders(tmp)
    sync(a, emb, store, "docs-a")
    sync(b, emb, store, "notes")
    total = store.count()

    a.rename(tmp / "moved-away")
    with pytest.raises(SyncRefused, match="docs-a") as refused:
        sync(a, emb, store, "docs-a")
    assert str(a) in str(refused.value)
    for f in b.iterdir():
        f.unlink()
    with pytest.raises(SyncRefused, match="empty") as refused:
        sync(b, emb, store, "notes")
    assert sorted(refused.value.would_remove) == ["notes/README.md", "notes/todo.md"]
    assert store.count() == total

    report = sync(b, emb, store, "notes", allow_removals=True)
    assert sorted(report.removed) == ["notes/README.md", "notes/todo.md"]
    report = sync(a, emb, store, "docs-a", allow_removals=True)
    assert len(report.removed) == 3 and store.count() == 0


def test_removing_more_than_half_of_a_source_asks_first(env):
    tmp, store, emb = env
    root = tmp / "many"
    for i in range(4):
        write(root / f"f{i}.md", f"# File {i}\n\nContent number {i}.\n")
    sync(root, emb, store, "many")
    for i in range(3):
        (root / f"f{i}.md").unlink()
    with pytest.raises(SyncRefused, match="3 of the 4") as refused:
        sync(root, emb, store, "many")
    assert len(refused.value.would_remove) == 3 and len(store.file_states()) == 4
    assert len(sync(root, emb, store, "many", allow_removals=True).removed) == 3
    # one file going is never "more than half"
    write(root / "g.md", "# G\n\nAnother file.\n")
    sync(root, emb, store, "many")
    (root / "g.md").rename(root / "h.md")
    report = sync(root, emb, store, "many")
    assert report.removed == ["many/g.md"] and report.indexed == ["many/h.md"]


def test_a_collection_of_the_previous_layout_is_refused_with_the_command(env):
    tmp, store, emb = env
    old = {k: v for k, v in collection_fingerprint(emb, CS).items() if k != "identity"}
    store.ensure_collection(emb.dim, old)
    vector = emb.embed_documents(["old text"])[0]
    store.upsert([Point("00000000-0000-0000-0000-000000000001", vector, {"source": "a.md", "text": "x"})])
    root = write(tmp / "docs" / "a.md", "# A\n").parent
    with pytest.raises(LegacyCollection, match="kb ingest DIR --name NAME --rebuild"):
        sync(root, emb, store, "docs")
    assert store.count() == 1  # nothing mixed, nothing wiped
    report = sync(root, emb, store, "docs", rebuild=True)
    assert report.indexed == ["docs/a.md"] and store.count() == 1


def test_registry_names_folders_and_survives_a_reopen(tmp_path):
    reg = SourceRegistry(tmp_path / "data" / "sources.json")
    (tmp_path / "Team Handbook").mkdir()
    (tmp_path / "x" / "notes").mkdir(parents=True)
    (tmp_path / "y" / "notes").mkdir(parents=True)
    hb = reg.add(tmp_path / "Team Handbook")
    assert hb.name == default_name(tmp_path / "Team Handbook") == "Team-Handbook" and hb.watch
    assert reg.add(tmp_path / "Team Handbook") == hb  # the same folder is the same source
    notes = reg.add(tmp_path / "x" / "notes")
    with pytest.raises(SourceError, match="--name"):
        reg.add(tmp_path / "y" / "notes")  # the name is taken by another folder
    other = reg.add(tmp_path / "y" / "notes", name="notes-y")
    with pytest.raises(SourceError, match="already the source"):
        reg.add(tmp_path / "x" / "notes", name="again")
    for bad in ("uploads", "../x", "a/b", "", ".hidden", "x" * 64):
        with pytest.raises(SourceError):
            reg.add(tmp_path / "Team Handbook" / "..", name=bad)
    reg.update("notes", watch=False, allow=("alice", "editors"))
    again = SourceRegistry(tmp_path / "data" / "sources.json")
    assert [s.name for s in again.all()] == ["Team-Handbook", "notes", "notes-y"]
    assert again.get("notes").allow == ("alice", "editors") and not again.get("notes").watch
    assert again.get("notes-y") == other and notes.path == str((tmp_path / "x" / "notes").resolve())
    again.remove("notes")
    with pytest.raises(UnknownSource):
        reg.get("notes")
