"""`kb models` and `kb model pull` as a user runs them, offline."""

from __future__ import annotations

import os
import subprocess
import sys


def run_kb(*args: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    full_env = {
        **os.environ,
        "KB_MODELS_DIR": str(tmp_path / "models"),
        "KB_DATA_DIR": str(tmp_path / "data"),
        # a closed local port: no request leaves the machine, and it fails at once like being offline
        "HF_ENDPOINT": "http://127.0.0.1:9",
        **env,
    }
    return subprocess.run(
        [sys.executable, "-m", "kb.cli.main", *args],
        env=full_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def test_pull_offline_names_the_file_and_the_folder(tmp_path):
    out = run_kb("model", "pull", "qwen3-embedding-0.6b", tmp_path=tmp_path)
    assert out.returncode == 1
    err = out.stderr
    assert "Qwen3-Embedding-0.6B-Q8_0.gguf" in err
    assert str(tmp_path / "models" / "Qwen3-Embedding-0.6B-Q8_0.gguf") in err
    # one message: what failed, then one line per way to get the model (or to start without it)
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 5
    assert not any((tmp_path / "models").glob("*.gguf"))


def test_pull_unknown_name_is_a_usage_error(tmp_path):
    out = run_kb("model", "pull", "no-such-model", tmp_path=tmp_path)
    assert out.returncode == 2 and "kb models" in out.stderr


def test_models_lists_registry_and_presence(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "bge-m3-Q8_0.gguf").write_bytes(b"GGUF")
    out = run_kb("models", tmp_path=tmp_path)
    assert out.returncode == 0
    rows = {line.split()[0].rstrip("*"): line for line in out.stdout.splitlines()[1:] if line[:1].isalnum()}
    assert {
        "qwen3-embedding-0.6b",
        "qwen3-embedding-4b",
        "qwen3-embedding-8b",
        "qwen3-reranker-0.6b",
        "bge-m3",
    } <= set(rows)
    assert " yes " in rows["bge-m3"] and " no " in rows["qwen3-embedding-0.6b"]


def test_missing_model_at_search_time_says_how_to_get_it(tmp_path):
    out = run_kb("search", "hello", tmp_path=tmp_path)
    assert out.returncode == 1
    assert "kb model pull qwen3-embedding-0.6b" in out.stderr and "Traceback" not in out.stderr
