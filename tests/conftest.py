"""Shared fixtures: test models are built once per session (and cached on disk across sessions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import modelgen


@pytest.fixture(scope="session")
def qwen3_gguf() -> Path:
    return modelgen.build(modelgen.ModelSpec())


@pytest.fixture(scope="session")
def qwen3_settings(qwen3_gguf, tmp_path_factory):
    from kb.settings import Settings

    return Settings(
        embed_model=str(qwen3_gguf),
        n_ctx=4096,
        n_batch=2048,
        n_ubatch=512,
        data_dir=tmp_path_factory.mktemp("data"),
        _env_file=None,
    )


@pytest.fixture(scope="session")
def qwen3_embedder(qwen3_settings):
    from ingest.model.embedder import make_embedder

    emb = make_embedder(qwen3_settings)
    yield emb
    emb.close()


@pytest.fixture(scope="module")
def e5(tmp_path_factory):
    """multilingual-e5-small converted from its PyPI wheel (built once per machine), with its recipe."""
    from ingest.model.embedder import make_embedder
    from kb.settings import Settings
    from tests.helpers.e5 import build_e5_gguf

    settings = Settings(
        embed_model=str(build_e5_gguf()),
        embed_recipe="e5",
        n_ctx=512,
        n_batch=2048,
        data_dir=tmp_path_factory.mktemp("data"),
        _env_file=None,
    )
    emb = make_embedder(settings)
    yield emb
    emb.close()
