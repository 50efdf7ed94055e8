"""Hybrid search's first hits do not depend on k: fusion ranks over prefetch lists of a fixed depth.

A real embedded engine holds 250 chunks of overlapping words embedded by the random-weight Qwen3 test
model (so the dense ranking is unrelated to the lexical one and both run deep); a search for 40 must
begin with the search for 10.
"""

from __future__ import annotations

import random

from ingest.records import Chunk, point_id, sha256_text
from ingest.sparse import sparse_vector
from ingest.store import make_store
from ingest.store.base import Point
from kb.search.query import SearchRequest, search
from kb.settings import Settings

WORDS = [
    "river",
    "bank",
    "money",
    "loan",
    "water",
    "bridge",
    "stone",
    "tower",
    "light",
    "paper",
    "garden",
    "window",
    "music",
    "table",
]


def test_first_hits_are_the_same_for_any_k(tmp_path, qwen3_embedder):
    words = random.Random(3)
    texts = [" ".join(words.choices(WORDS, k=8)) for _ in range(250)]
    vectors = qwen3_embedder.embed_documents(texts)
    store = make_store(Settings(data_dir=tmp_path, _env_file=None))
    store.ensure_collection(qwen3_embedder.dim, {"test": "fusion-depth"})
    points = []
    for i, (text, vector) in enumerate(zip(texts, vectors)):
        chunk = Chunk(
            id=point_id("doc.txt", i),
            text=text,
            source="doc.txt",
            kind="text",
            position=i,
            n_chunks=len(texts),
            chunk_hash=sha256_text(text),
            file_hash="h",
        )
        points.append(Point(chunk.id, vector, chunk.payload(), sparse_vector(text)))
    store.upsert(points)
    embedder = qwen3_embedder
    try:
        ids = {
            k: [
                h.id
                for h in search(SearchRequest("river bank money", k=k, hybrid=True), embedder, store).hits
            ]
            for k in (5, 10, 40, 100)
        }
    finally:
        store.close()
    assert len(ids[100]) == 100
    for small, large in ((5, 10), (10, 40), (40, 100)):
        assert ids[large][:small] == ids[small], (small, large)
