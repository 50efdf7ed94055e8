"""Ingest end to end on real files, the real engine (tiny Qwen3 GGUF) and the real embedded Qdrant."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.model.embedder import make_embedder
from ingest.pipeline import ChunkSettings, ingest_folder
from ingest.store import FingerprintMismatch, make_store

CS = ChunkSettings(target=64, overlap=8)


@pytest.fixture()
def env(qwen3_settings, qwen3_embedder, tmp_path):
    settings = qwen3_settings.model_copy(update={"data_dir": tmp_path / "data"})
    store = make_store(settings)
    docs = tmp_path / "docs"
    docs.mkdir()
    yield docs, store, qwen3_embedder
    store.close()


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def points_of(store, source: str) -> int:
    state = store.file_states().get(source)
    return state.n_points if state else 0


def long_markdown(n_sections: int) -> str:
    return "\n\n".join(
        f"## Section {i}\n\n" + f"Paragraph {i} explains topic {i} in some detail. " * 12
        for i in range(n_sections)
    )


def test_second_run_writes_nothing_and_edits_reembed_only_that_file(env):
    docs, store, emb = env
    write(docs / "a.md", long_markdown(6))
    write(docs / "b.md", "# B\n\nShort file about bees.\n")
    write(docs / "src" / "c.py", "def c():\n    return 'c'\n")
    first = ingest_folder(docs, emb, store, CS, source="docs", workers=1)
    assert sorted(first.indexed) == ["docs/a.md", "docs/b.md", "docs/src/c.py"]
    total = store.count()
    assert total == first.chunks > 3

    second = ingest_folder(docs, emb, store, CS, source="docs", workers=1)
    assert second.chunks == 0 and second.indexed == [] and sorted(second.unchanged) == sorted(first.indexed)
    assert store.count() == total

    write(docs / "b.md", "# B\n\nShort file about wasps now.\n")
    third = ingest_folder(docs, emb, store, CS, source="docs", workers=1)
    assert third.updated == ["docs/b.md"] and third.chunks == 1
    from ingest.records import point_id

    (hit,) = store.retrieve([point_id("docs/b.md", 0)])
    assert "wasps" in hit.text and hit.payload["file_hash"] == store.file_states()["docs/b.md"].file_hash


@pytest.mark.slow
def test_shrinking_deleting_and_renaming_leave_no_stale_points(env):
    docs, store, emb = env
    write(docs / "big.md", long_markdown(8))
    write(docs / "gone.md", "# Gone\n\nThis file will be deleted.\n")
    write(docs / "old-name.txt", "renamed content\n")
    write(docs / "stays.md", "# Stays\n\nUntouched.\n")  # two of four files go: not more than half
    ingest_folder(docs, emb, store, CS, source="docs", workers=1)
    before = points_of(store, "docs/big.md")
    assert before > 3

    write(docs / "big.md", long_markdown(2))
    (docs / "gone.md").unlink()
    (docs / "old-name.txt").rename(docs / "new-name.txt")
    report = ingest_folder(docs, emb, store, CS, source="docs", workers=1)
    assert sorted(report.removed) == ["docs/gone.md", "docs/old-name.txt"]
    assert report.updated == ["docs/big.md"] and report.indexed == ["docs/new-name.txt"]
    states = store.file_states()
    assert set(states) == {"docs/big.md", "docs/new-name.txt", "docs/stays.md"}
    assert all(s.complete for s in states.values())
    assert 0 < states["docs/big.md"].n_points < before
    assert store.count() == sum(s.n_points for s in states.values())


def test_broken_files_are_reported_and_good_ones_go_in(env):
    docs, store, emb = env
    write(docs / "good.md", "# Good\n\nA fine document.\n")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog")
    (docs / "binary.md").write_bytes(b"\x00\x01\x02\xff" * 100)
    (docs / "empty.txt").write_bytes(b"")
    (docs / ".hidden.md").write_text("# hidden\n")
    (docs / "node_modules").mkdir()
    write(docs / "node_modules" / "x.js", "function x() {}\n")
    write(docs / ".kbignore", "ignored-*.md\n")
    write(docs / "ignored-1.md", "# ignored\n")
    report = ingest_folder(docs, emb, store, CS, source="docs", workers=2)
    assert report.indexed == ["docs/good.md"]
    skipped = dict(report.skipped)
    assert set(skipped) == {"docs/broken.pdf", "docs/binary.md", "docs/empty.txt"}
    assert all(reason for reason in skipped.values())
    assert set(store.file_states()) == {"docs/good.md"}


def test_fingerprint_mismatch_stops_and_rebuild_reembeds(env):
    docs, store, emb = env
    write(docs / "a.md", "# A\n\nalpha\n")
    ingest_folder(docs, emb, store, CS, source="docs", workers=1)
    with pytest.raises(FingerprintMismatch):
        ingest_folder(docs, emb, store, ChunkSettings(target=128, overlap=8), source="docs", workers=1)
    report = ingest_folder(
        docs, emb, store, ChunkSettings(target=128, overlap=8), rebuild=True, source="docs", workers=1
    )
    assert report.indexed == ["docs/a.md"] and store.count() == 1


@pytest.mark.slow
def test_30k_token_markdown_is_one_chunk_when_the_target_allows(qwen3_gguf, tmp_path):
    from kb.settings import Settings

    settings = Settings(
        embed_model=str(qwen3_gguf), n_ctx=32768, n_batch=32768, data_dir=tmp_path / "d", _env_file=None
    )
    emb = make_embedder(settings)
    store = make_store(settings)
    try:
        docs = tmp_path / "docs"
        text = "# Long\n\n" + "\n\n".join("word " * 40 + f"paragraph {i}." for i in range(650))
        write(docs / "long.md", text)
        n = emb.count_tokens(text)
        assert 28000 < n < 32000
        report = ingest_folder(
            docs, emb, store, ChunkSettings(target=32768, overlap=0), source="docs", workers=1
        )
        assert report.chunks == 1 and store.count() == 1
    finally:
        emb.close()
        store.close()
