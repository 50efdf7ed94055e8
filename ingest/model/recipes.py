"""How each model family wants its inputs and outputs: pure functions, no model.

Qwen3-Embedding (the model card's reference use): queries are ``Instruct: {task}\\nQuery:{text}``,
documents are bare, the sequence ends with ``<|endoftext|>``, the last token's hidden state is the
embedding, L2-normalised; a Matryoshka cut keeps the first ``dim`` values and renormalises.

multilingual-e5 (its model card): queries ``query: {text}``, documents ``passage: {text}``, the mean
of all token states (``<s>`` and ``</s>`` included), L2-normalised; 512 tokens, prefix included.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POOL_LAST = "last"
POOL_MEAN = "mean"
POOL_CLS = "cls"


@dataclass(frozen=True, slots=True)
class Recipe:
    """Formatting and pooling of one model family."""

    name: str
    pooling: str  # last | mean | cls
    query_template: str = "{text}"  # may use {task} and {text}
    document_template: str = "{text}"
    end_token: str | None = None  # token that must end every sequence (pooled when pooling is last)

    def format_query(self, text: str, task: str) -> str:
        return self.query_template.format(task=task, text=text)

    def format_document(self, text: str) -> str:
        return self.document_template.format(text=text)


QWEN3 = Recipe("qwen3", POOL_LAST, "Instruct: {task}\nQuery:{text}", "{text}", "<|endoftext|>")
BGE_EN = Recipe("bge-en", POOL_CLS, "Represent this sentence for searching relevant passages: {text}")
BGE_ZH = Recipe("bge-zh", POOL_CLS, "为这个句子生成表示以用于检索相关文章：{text}")
BGE_M3 = Recipe("bge-m3", POOL_CLS)
MXBAI = Recipe("mxbai", POOL_CLS, "Represent this sentence for searching relevant passages: {text}")
E5 = Recipe("e5", POOL_MEAN, "query: {text}", "passage: {text}")
MEAN_BARE = Recipe("mean", POOL_MEAN)
CLS_BARE = Recipe("cls", POOL_CLS)
LAST_BARE = Recipe("last", POOL_LAST)

RECIPES = {r.name: r for r in (QWEN3, BGE_EN, BGE_ZH, BGE_M3, MXBAI, E5, MEAN_BARE, CLS_BARE, LAST_BARE)}


def recipe_named(name: str) -> Recipe:
    """The recipe called ``name`` (``KB_EMBED_RECIPE``); ValueError naming the known ones."""
    try:
        return RECIPES[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(sorted(RECIPES))}") from None


def recipe_for_gguf(arch: str, pooling: str | None) -> Recipe:
    """Recipe for a GGUF given by path: Qwen3 by architecture, otherwise bare with the file's pooling."""
    if arch == "qwen3":
        return QWEN3
    return {POOL_MEAN: MEAN_BARE, POOL_CLS: CLS_BARE, POOL_LAST: LAST_BARE}.get(
        pooling or POOL_MEAN, MEAN_BARE
    )


def ensure_end_token(tokens: list[int], end_id: int | None, tokenizer_appends: bool) -> list[int]:
    """Append the end token unless the tokenizer already does (older GGUFs do not).

    Decided by the tokenizer's behaviour, not by the last token: a text that itself ends with
    ``<|endoftext|>`` still gets the appended one, as with the reference tokenizer.
    """
    if end_id is None or tokenizer_appends:
        return tokens
    return [*tokens, end_id]


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=-1, keepdims=True)
    normalized: np.ndarray = vectors / np.maximum(norms, 1e-12)
    return normalized


def cut_dimension(vectors: np.ndarray, dim: int | None) -> np.ndarray:
    """Matryoshka cut: keep the first ``dim`` values, then renormalise (no-op for None)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if dim is None or dim >= vectors.shape[-1]:
        return l2_normalize(vectors)
    return l2_normalize(vectors[..., :dim])
