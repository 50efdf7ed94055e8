"""The embedder: a model's recipe applied exactly, over packed decodes on K contexts.

``Embedder`` is what the pipeline, search and the service use; ``make_embedder(settings)`` is its
factory. Inputs longer than the context are an error, never truncated: truncation would drop the
end-of-text token that Qwen3 pools, and poison the vector.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ingest.model import registry
from ingest.model.download import ModelUnavailable, checksum_file, offline_message
from ingest.model.engine import ContextConfig, EmbedContext, LlamaModel, patch_level
from ingest.model.packing import plan_batches
from ingest.model.recipes import (
    Recipe,
    cut_dimension,
    ensure_end_token,
    l2_normalize,
    recipe_for_gguf,
    recipe_named,
)
from kb.settings import DEFAULTS, Settings

log = logging.getLogger(__name__)

QUERY_CONTEXT_TOKENS = 8192


class InputTooLong(ValueError):
    """A text has more tokens than the model's context; split it first."""


@dataclass(frozen=True, slots=True)
class EngineConfig:
    n_ctx: int = DEFAULTS.n_ctx
    n_batch: int = DEFAULTS.n_batch  # tokens packed into one decode
    n_ubatch: int = DEFAULTS.n_ubatch
    n_seq_max: int = DEFAULTS.n_seq_max
    n_contexts: int = 1
    n_threads: int = DEFAULTS.n_threads
    # pack inputs of up to stream_tokens into contexts with one KV stream per sequence (causal
    # models): no token attends over the other sequences of its decode; longer inputs go to a
    # unified context made on first need
    kv_split: bool = False
    stream_tokens: int = DEFAULTS.stream_tokens

    @classmethod
    def from_settings(cls, settings: Settings, offloaded: bool) -> EngineConfig:
        """``n_contexts`` 0 and ``kv_split`` "auto" resolve by where the model runs (GPU or CPU)."""
        split = settings.kv_split == "on" or (settings.kv_split == "auto" and not offloaded)
        return cls(
            settings.n_ctx,
            settings.n_batch,
            settings.n_ubatch,
            settings.n_seq_max,
            settings.n_contexts or (2 if offloaded else 1),
            settings.n_threads,
            split,
            settings.stream_tokens,
        )


class Embedder:
    def __init__(
        self,
        model: LlamaModel,
        recipe: Recipe,
        dim: int | None = None,
        config: EngineConfig = EngineConfig(),
        query_task: str = "",
        model_sha256: str | None = None,
    ):
        self.model, self.recipe, self.config, self.query_task = model, recipe, config, query_task
        self.model_sha256 = model_sha256
        self.dim = dim or model.n_embd
        if not 0 < self.dim <= model.n_embd:
            raise ValueError(f"dimension {dim} outside 1..{model.n_embd}")
        self.max_tokens = min(config.n_ctx, model.n_ctx_train or config.n_ctx)
        self.end_id = model.token_id(recipe.end_token) if recipe.end_token else None
        if recipe.end_token and self.end_id is None:
            raise ValueError(f"{model.path.name}: vocabulary has no {recipe.end_token} token")
        self.appends_end = self._tokenizer_appends_end()
        # longest document text (bare tokens) whose formatted form still fits the context: the
        # template's own tokens, plus one where a prefix meets the text and may tokenize apart
        added = self.count_tokens(recipe.format_document("")) - self.count_tokens("")
        self.max_document_tokens = self.max_tokens - (added + 1 if added else 0)
        if recipe.end_token and not self.appends_end:
            log.info("%s: tokenizer does not append %s; appending it", model.path.name, recipe.end_token)
        # non-causal models (BERT) attend across the whole packed batch: keep their decodes small
        self.pack_tokens = config.n_batch if model.causal else min(config.n_batch, max(self.max_tokens, 512))
        pooling = None if recipe.name in {"mean", "cls", "last"} else recipe.pooling
        n_seq = max(1, min(config.n_seq_max, 256))
        self._long_cfg = ContextConfig(
            self.max_tokens,
            max(self.max_tokens, config.n_batch) if model.causal else self.pack_tokens,
            config.n_ubatch,
            n_seq,
            config.n_threads,
            pooling,
        )
        self.stream_tokens = (
            min(config.stream_tokens, self.max_tokens) if config.kv_split and model.causal else 0
        )
        doc_cfg = self._long_cfg
        if self.stream_tokens:  # no more cells than the unified context would have
            streams = max(1, min(n_seq, self._long_cfg.n_ctx // self.stream_tokens))
            cells = streams * self.stream_tokens
            doc_cfg = ContextConfig(
                cells,
                min(self.pack_tokens, cells),
                config.n_ubatch,
                streams,
                config.n_threads,
                pooling,
                kv_unified=False,
            )
        self._long_context: EmbedContext | None = None  # made on the first input over stream_tokens
        self._long_lock = threading.Lock()
        q_tokens = min(self.max_tokens, QUERY_CONTEXT_TOKENS)
        q_cfg = ContextConfig(
            q_tokens, q_tokens, min(config.n_ubatch, q_tokens), 4, config.n_threads, pooling
        )
        self._doc_contexts = [model.context(doc_cfg) for _ in range(max(1, config.n_contexts))]
        self._query_context = model.context(q_cfg)
        self._pool = ThreadPoolExecutor(len(self._doc_contexts), thread_name_prefix="embed")
        self._free = list(self._doc_contexts)
        self._free_cv = threading.Condition()

    # --- recipe -----------------------------------------------------------------------------
    def _tokenizer_appends_end(self) -> bool:
        return self.end_id is not None and self.model.tokenize("a", add_special=True)[-1:] == [self.end_id]

    def tokens(self, text: str) -> list[int]:
        """Token ids exactly as the reference tokenizer makes them (special-token text is parsed)."""
        tokens = self.model.tokenize(text, add_special=True, parse_special=True)
        return ensure_end_token(tokens, self.end_id, self.appends_end)

    def count_tokens(self, text: str) -> int:
        return len(self.tokens(text))

    def query_text(self, text: str, task: str | None = None) -> str:
        return self.recipe.format_query(text, self.query_task if task is None else task)

    # --- embedding ----------------------------------------------------------------------------
    def _check(self, seqs: list[list[int]]) -> None:
        for i, seq in enumerate(seqs):
            if len(seq) > self.max_tokens:
                raise InputTooLong(
                    f"text {i} has {len(seq)} tokens; the model's context is {self.max_tokens}"
                )

    def _run(self, seqs: list[list[int]]) -> np.ndarray:
        with self._free_cv:
            while not self._free:
                self._free_cv.wait()
            ctx = self._free.pop()
        try:
            return ctx.embed(seqs)
        finally:
            with self._free_cv:
                self._free.append(ctx)
                self._free_cv.notify()

    def _run_long(self, seqs: list[list[int]]) -> np.ndarray:
        with self._long_lock:
            if self._long_context is None:
                self._long_context = self.model.context(self._long_cfg)
            return self._long_context.embed(seqs)

    def embed_token_batches(self, seqs: list[list[int]]) -> np.ndarray:
        """Raw pooled vectors for token sequences, packed and spread over the contexts."""
        self._check(seqs)
        out = np.empty((len(seqs), self.model.n_embd), dtype=np.float32)
        if not seqs:
            return out
        groups = [(list(range(len(seqs))), self._run, self.pack_tokens, self.config.n_seq_max)]
        if self.stream_tokens:  # short inputs in per-sequence streams, long ones in the unified context
            short = [i for i, s in enumerate(seqs) if len(s) <= self.stream_tokens]
            long = [i for i, s in enumerate(seqs) if len(s) > self.stream_tokens]
            packed = self._doc_contexts[0].config
            groups = [
                (short, self._run, packed.n_batch, packed.n_seq_max),
                (long, self._run_long, self._long_cfg.n_batch, self._long_cfg.n_seq_max),
            ]
        plan = []
        for members, run, budget, max_seqs in groups:
            for idx in plan_batches([len(seqs[i]) for i in members], budget, max_seqs):
                plan.append(([members[i] for i in idx], run))
        futures = [(idx, self._pool.submit(run, [seqs[i] for i in idx])) for idx, run in plan]
        for idx, fut in futures:
            out[idx] = fut.result()
        return out

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        seqs = [self.tokens(self.recipe.format_document(t)) for t in texts]
        return self._finish(self.embed_token_batches(seqs))

    def embed_queries(self, texts: Sequence[str], task: str | None = None) -> np.ndarray:
        # an over-long query keeps its start and its closing token (the one pooled), not an error
        cap = self.max_tokens
        seqs = [
            s if len(s) <= cap else s[: cap - 1] + s[-1:]
            for s in (self.tokens(self.query_text(t, task)) for t in texts)
        ]
        if any(len(s) > self._query_context.n_ctx for s in seqs):
            return self._finish(self.embed_token_batches(seqs))
        out = np.empty((len(seqs), self.model.n_embd), dtype=np.float32)
        for idx in plan_batches([len(s) for s in seqs], self._query_context.n_ctx, 4):
            out[idx] = self._query_context.embed([seqs[i] for i in idx])
        return self._finish(out)

    def embed_query(self, text: str, task: str | None = None) -> np.ndarray:
        return self.embed_queries([text], task)[0]

    def _finish(self, raw: np.ndarray) -> np.ndarray:
        return cut_dimension(l2_normalize(raw), self.dim)

    # --- identity -------------------------------------------------------------------------------
    def fingerprint(self) -> dict[str, Any]:
        """What makes two vector spaces the same: a mismatch means re-embedding."""
        return {
            "model": self.model.path.name,
            "model_sha256": self.model_sha256 or _quick_hash(self.model.path),
            "dim": self.dim,
            "recipe": self.recipe.name,
            "document_template": self.recipe.document_template,
            "end_token": self.recipe.end_token,
        }

    def info(self) -> dict:
        return {
            "model": str(self.model.path),
            "arch": self.model.arch,
            "dim": self.dim,
            "native_dim": self.model.n_embd,
            "device": "GPU" if self.model.offloaded else "CPU",
            "contexts": len(self._doc_contexts),
            "max_tokens": self.max_tokens,
            "patched_engine": patch_level() > 0,
            "recipe": self.recipe.name,
        }

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        for ctx in [*self._doc_contexts, self._query_context, self._long_context]:
            if ctx is not None:
                ctx.close()
        self.model.close()


def _quick_hash(path: Path) -> str:
    """Identity of a file without reading gigabytes: size plus head and tail hashed."""
    h = hashlib.sha256(str(path.stat().st_size).encode())
    with path.open("rb") as f:
        h.update(f.read(1 << 20))
        f.seek(max(0, path.stat().st_size - (1 << 20)))
        h.update(f.read(1 << 20))
    return "quick:" + h.hexdigest()


def resolve_model(name_or_path: str, models_dir: Path) -> tuple[Path, registry.ModelEntry | None]:
    """The weights' path for a registry name or a GGUF path; ModelUnavailable when missing."""
    entry = registry.lookup(name_or_path)
    path = registry.resolve_path(name_or_path, models_dir)
    if not path.is_file():
        if entry:
            raise ModelUnavailable(
                offline_message(entry, models_dir, "not downloaded yet")
                + f"\nRun `kb model pull {entry.name}` where there is network."
            )
        raise ModelUnavailable(f"model file not found: {path}")
    return path, entry


def make_embedder(settings: Settings) -> Embedder:
    """Load the configured embedding model with its recipe (factory; the caller closes it)."""
    path, entry = resolve_model(settings.embed_model, settings.models_dir)
    chosen = recipe_named(settings.embed_recipe) if settings.embed_recipe else None
    if entry and chosen and chosen != entry.recipe:
        raise ValueError(
            f"KB_EMBED_RECIPE={settings.embed_recipe} is for a GGUF given by path; "
            f"{entry.name} has its own recipe ({entry.recipe.name})"
        )
    model = LlamaModel(path, gpu=settings.gpu)
    recipe = entry.recipe if entry else chosen or recipe_for_gguf(model.arch, model.pooling)
    dim = entry.check_dim(settings.dim) if entry else settings.dim
    sums = checksum_file(path)
    config = EngineConfig.from_settings(settings, model.offloaded)
    return Embedder(
        model,
        recipe,
        dim,
        config,
        settings.query_task,
        sums.read_text().split()[0] if sums.exists() else None,
    )
