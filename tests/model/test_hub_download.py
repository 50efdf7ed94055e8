"""`kb model pull` against a local stand-in for each hub (tests/helpers/hubs.py): the download, its
resume after a dropped connection, and a checksum failure, from Hugging Face (through the endpoint
``HF_ENDPOINT`` names, as a mirror is used) and from ModelScope (``KB_MODEL_HUB=modelscope``).

The hub is the one boundary faked; kb's settings, hub layouts, transfer and checks are the real ones.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.model.download import ModelUnavailable, checksum_file, hub_for, offline_message, pull
from ingest.model.registry import lookup
from ingest.model.transfer import part_path
from kb.settings import Settings
from tests.helpers.hubs import FakeHub, HostedFile

SIZE = 3 << 20 | 12345  # a few blocks, not a multiple of one
BASE = lookup("qwen3-embedding-0.6b")


def weights(seed: int = 1) -> bytes:
    out, block = bytearray(), hashlib.sha256(str(seed).encode()).digest()
    while len(out) < SIZE:
        block = hashlib.sha256(block).digest()
        out += block * 64
    return bytes(out[:SIZE])


def entry_for(data: bytes, pinned: bool = False):
    """A registry entry for a small file (the real ones are hundreds of MB)."""
    return dataclasses.replace(
        BASE,
        name="tiny-embed",
        repo="Org/Tiny-GGUF",
        modelscope="Org/Tiny-GGUF",
        filename="tiny-Q8_0.gguf",
        sha256=hashlib.sha256(data).hexdigest() if pinned else None,
    )


def hub_settings(hub: FakeHub, name: str) -> Settings:
    # the endpoint settings as a user sets them: HF_ENDPOINT for a mirror, MODELSCOPE_DOMAIN
    return Settings(model_hub=name, hf_endpoint=hub.url, modelscope_domain=hub.url)


@pytest.fixture
def hub():
    hubs: list[FakeHub] = []

    def start(*files: HostedFile) -> FakeHub:
        hubs.append(FakeHub(list(files)))
        return hubs[-1]

    yield start
    for h in hubs:
        h.close()


@pytest.mark.parametrize("name", ["huggingface", "modelscope"])
def test_download_verifies_and_records(tmp_path, hub, name):
    data = weights()
    entry = entry_for(data)
    fake = hub(HostedFile(entry.repo, entry.filename, data))
    got = pull(entry, tmp_path, hub_for(hub_settings(fake, name)))
    assert got.read_bytes() == data
    assert checksum_file(got).read_text().split()[0] == hashlib.sha256(data).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == [entry.filename, entry.filename + ".sha256"]
    paths = [p for _, p, _ in fake.requests]
    if name == "huggingface":  # resolve (the redirect names the checksum), then the CDN
        assert paths[0] == f"/{entry.repo}/resolve/main/{entry.filename}"
        assert paths[-1].startswith("/cdn/")
    else:  # the file list (the checksum), then the file
        assert paths[0].startswith(f"/api/v1/models/{entry.repo}/repo/files?")
        assert "FilePath=tiny-Q8_0.gguf" in paths[-1]


@pytest.mark.parametrize("name", ["huggingface", "modelscope"])
def test_interrupted_download_resumes_where_it_stopped(tmp_path, hub, name):
    data = weights(2)
    entry = entry_for(data, pinned=True)
    fake = hub(HostedFile(entry.repo, entry.filename, data))
    fake.cut_after = SIZE // 2
    settings = hub_settings(fake, name)
    with pytest.raises(ModelUnavailable, match="transfer stopped"):
        pull(entry, tmp_path, hub_for(settings))
    part = part_path(entry.path(tmp_path))
    kept = part.stat().st_size
    assert 0 < kept < SIZE and not entry.path(tmp_path).exists()
    assert part.read_bytes() == data[:kept]  # what arrived is kept, for the next try
    got = pull(entry, tmp_path, hub_for(settings))
    assert got.read_bytes() == data and not part.exists()
    assert set(fake.ranged()) == {f"bytes={kept}-"}  # only the rest was asked for


@pytest.mark.parametrize("name", ["huggingface", "modelscope"])
def test_checksum_failure_keeps_nothing_and_says_so(tmp_path, hub, name):
    data = weights(3)
    entry = entry_for(data)
    corrupted = bytearray(data)
    corrupted[SIZE // 3] ^= 0x01
    fake = hub(HostedFile(entry.repo, entry.filename, data, served=bytes(corrupted)))
    with pytest.raises(ModelUnavailable) as err:
        pull(entry, tmp_path, hub_for(hub_settings(fake, name)))
    message = str(err.value)
    assert "checksum mismatch" in message and hashlib.sha256(data).hexdigest() in message
    assert "nothing kept" in message
    assert list(tmp_path.iterdir()) == []


def test_pinned_checksum_holds_against_the_hub(tmp_path, hub):
    """A mirror that records another checksum for the file is refused before anything is fetched."""
    data = weights(4)
    entry = dataclasses.replace(entry_for(data), sha256="0" * 64)
    fake = hub(HostedFile(entry.repo, entry.filename, data))
    with pytest.raises(ModelUnavailable, match="serves another tiny-Q8_0.gguf"):
        pull(entry, tmp_path, hub_for(hub_settings(fake, "huggingface")))
    assert list(tmp_path.iterdir()) == [] and not any(p.startswith("/cdn/") for _, p, _ in fake.requests)


def test_a_file_copied_by_hand_is_checked_not_replaced(tmp_path):
    data = weights(5)
    entry = entry_for(data, pinned=True)
    target = entry.path(tmp_path)
    target.write_bytes(data[:-1] + b"x")
    with pytest.raises(ModelUnavailable, match="not tiny-embed's file"):
        pull(entry, tmp_path)  # no hub is asked: the pinned checksum decides
    assert target.read_bytes() == data[:-1] + b"x"  # the user's file is left alone
    target.write_bytes(data)
    assert pull(entry, tmp_path) == target
    assert checksum_file(target).read_text().split()[0] == entry.sha256


def test_endpoints_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.example/")
    monkeypatch.setenv("MODELSCOPE_DOMAIN", "modelscope.example")
    monkeypatch.setenv("KB_MODEL_HUB", "huggingface")
    assert (
        hub_for(Settings()).file_url("Qwen/Q", "a b.gguf")
        == "https://hf-mirror.example/Qwen/Q/resolve/main/a%20b.gguf"
    )
    monkeypatch.setenv("KB_MODEL_HUB", "modelscope")
    assert hub_for(Settings()).file_url("Qwen/Q", "a b.gguf") == (
        "https://modelscope.example/api/v1/models/Qwen/Q/repo?Revision=master&FilePath=a+b.gguf"
    )


def test_offline_message_names_every_way(tmp_path):
    message = offline_message(BASE, tmp_path, "no network connection to the model hub")
    assert "HF_ENDPOINT=" in message and "KB_MODEL_HUB=modelscope" in message
    assert str(BASE.path(tmp_path)) in message  # where a file copied by hand goes
    assert "KB_EMBED_MODEL=multilingual-e5-small make run" in message
    reranker = offline_message(lookup("qwen3-reranker-0.6b"), tmp_path, "offline")
    assert "KB_MODEL_HUB=modelscope" not in reranker  # no ModelScope copy known
    assert "multilingual-e5-small" not in reranker  # not an embedding model


def cli_pull(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "KB_MODELS_DIR": str(tmp_path / "models"),
        "KB_DATA_DIR": str(tmp_path / "data"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "kb.cli.main", "model", "pull", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_first_run_offline_says_how_to_start_without_the_hub(tmp_path):
    """`make run`'s first step with no route to the hub: one message, no traceback, and the way to
    start with the model that comes from PyPI."""
    out = cli_pull(
        tmp_path, {"HF_ENDPOINT": "http://127.0.0.1:9", "KB_EMBED_MODEL": BASE.name}, "--if-missing"
    )
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.startswith("kb: Cannot download Qwen3-Embedding-0.6B-Q8_0.gguf")
    assert "KB_EMBED_MODEL=multilingual-e5-small make run" in out.stderr
    assert not (tmp_path / "models").exists() or not any((tmp_path / "models").iterdir())


def test_cli_refuses_a_modelscope_file_that_is_not_the_pinned_one(tmp_path, hub):
    """The registry's default model through `kb model pull` from ModelScope: a file whose bytes are
    not the pinned ones is refused and nothing is left behind."""
    fake = hub(HostedFile(BASE.modelscope, BASE.filename, weights(6)))
    out = cli_pull(tmp_path, {"KB_MODEL_HUB": "modelscope", "MODELSCOPE_DOMAIN": fake.url}, BASE.name)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert "serves another Qwen3-Embedding-0.6B-Q8_0.gguf" in out.stderr and BASE.sha256 in out.stderr
    assert not any((tmp_path / "models").iterdir())
