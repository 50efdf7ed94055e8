"""A thin, thread-safe layer over llama.cpp's C API (llama-cpp-python's low-level bindings).

One `LlamaModel` (weights loaded once, every layer on the GPU when the build can offload) serves
many `EmbedContext`s; each context is used by one thread at a time (a lock), and llama.cpp's calls
release the GIL, so K contexts decode in parallel.
"""

from __future__ import annotations

import ctypes
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

_POOLING = {"none": 0, "mean": 1, "cls": 2, "last": 3, "rank": 4}
_POOLING_NAMES = {v: k for k, v in _POOLING.items()}
_FLASH_ATTN_AUTO = -1
_init_lock = threading.Lock()
_initialised = False


class EngineError(Exception):
    """llama.cpp refused a model, a context or a decode."""


def _llama():
    """Import the bindings once, quiet llama.cpp's own logging and init the backend."""
    global _initialised
    import llama_cpp

    with _init_lock:
        if not _initialised:
            if not os.environ.get("KB_LLAMA_VERBOSE"):
                llama_cpp.llama_log_set(_QUIET, ctypes.c_void_p())
            llama_cpp.llama_backend_init()
            _initialised = True
    return llama_cpp


def _quiet(level, text, user_data):  # llama.cpp log callback
    return None


def _make_quiet():
    import llama_cpp

    return llama_cpp.llama_log_callback(_quiet)


_QUIET = None


def patch_level() -> int:
    """> 0 when the installed libllama carries kb's engine patch (no LM head in embeddings mode)."""
    import llama_cpp.llama_cpp as low

    fn = getattr(low._lib, "llama_kb_patch_level", None)
    if fn is None:
        return 0
    fn.restype = ctypes.c_int32
    fn.argtypes = []
    return int(fn())


@dataclass(frozen=True, slots=True)
class ContextConfig:
    n_ctx: int = 32768  # longest sequence (tokens); also the KV cache size
    n_batch: int = 32768  # tokens per llama_decode call
    n_ubatch: int = 2048  # tokens per compute step
    n_seq_max: int = 64  # sequences per decode
    n_threads: int = 0  # 0: all cores
    pooling: str | None = None  # None: the model's own
    # True: one KV cache any sequence may fill (one 32k input, or many short ones, every token
    # attending over every cell of the batch, masked); False: n_seq_max streams of n_ctx / n_seq_max
    # cells, so that a token attends over its own sequence only (packed short inputs)
    kv_unified: bool = True


class LlamaModel:
    """Weights loaded once; tokenizer; factory for contexts."""

    def __init__(self, path: Path, gpu: bool = True):
        global _QUIET
        if _QUIET is None:
            _QUIET = _make_quiet()
        self._ll = ll = _llama()
        self.path = Path(path)
        if not self.path.is_file():
            raise EngineError(f"model file not found: {self.path}")
        params = ll.llama_model_default_params()
        self.offloaded = bool(gpu and ll.llama_supports_gpu_offload())
        params.n_gpu_layers = -1 if self.offloaded else 0
        self._model = ll.llama_model_load_from_file(str(self.path).encode(), params)
        if not self._model:
            raise EngineError(f"llama.cpp could not load {self.path} (not a GGUF model, or unsupported)")
        self._vocab = ll.llama_model_get_vocab(self._model)
        self.n_embd = int(ll.llama_model_n_embd(self._model))
        self.n_ctx_train = int(ll.llama_model_n_ctx_train(self._model))
        self.n_vocab = int(ll.llama_vocab_n_tokens(self._vocab))
        self.has_encoder = bool(ll.llama_model_has_encoder(self._model))
        self.arch = self.meta("general.architecture") or ""
        pooling = self.meta(f"{self.arch}.pooling_type")
        self.pooling = _POOLING_NAMES.get(int(pooling), None) if pooling and pooling.isdigit() else None
        self.causal = self.arch not in {"bert", "nomic-bert", "jina-bert-v2", "modern-bert", "eurobert"}
        log.info(
            "loaded %s (%s, %d dims) on %s",
            self.path.name,
            self.arch,
            self.n_embd,
            "GPU (all layers)" if self.offloaded else "CPU",
        )

    def meta(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(256)
        n = self._ll.llama_model_meta_val_str(self._model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace") if n >= 0 else None

    def tokenize(self, text: str, add_special: bool = True, parse_special: bool = False) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (ctypes.c_int32 * cap)()
        n = self._ll.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special, parse_special)
        if n < 0:  # buffer too small: -n is the size needed
            cap = -n
            buf = (ctypes.c_int32 * cap)()
            n = self._ll.llama_tokenize(self._vocab, data, len(data), buf, cap, add_special, parse_special)
        return list(buf[:n])

    def token_id(self, text: str) -> int | None:
        """Id of a single special token given by its text, or None when the vocabulary lacks it."""
        ids = self.tokenize(text, add_special=False, parse_special=True)
        return ids[0] if len(ids) == 1 else None

    def context(self, config: ContextConfig, embeddings: bool = True) -> EmbedContext:
        return EmbedContext(self, config, embeddings)

    def close(self) -> None:
        if getattr(self, "_model", None):
            self._ll.llama_model_free(self._model)
            self._model = None

    def __del__(self):
        self.close()


class EmbedContext:
    """One llama.cpp context: decodes packed batches of sequences, one thread at a time."""

    def __init__(self, model: LlamaModel, config: ContextConfig, embeddings: bool = True):
        ll = model._ll
        self._ll, self.model, self.config = ll, model, config
        self.lock = threading.Lock()
        p = ll.llama_context_default_params()
        p.n_ctx = config.n_ctx
        p.n_batch = config.n_batch
        # non-causal models (BERT) encode a whole batch in one step
        p.n_ubatch = config.n_ubatch if model.causal else config.n_batch
        p.n_seq_max = config.n_seq_max
        threads = config.n_threads or os.cpu_count() or 1
        p.n_threads = p.n_threads_batch = threads
        p.embeddings = embeddings
        p.kv_unified = config.kv_unified
        p.flash_attn_type = _FLASH_ATTN_AUTO
        if config.pooling:
            p.pooling_type = _POOLING[config.pooling]
        self._ctx = ll.llama_init_from_model(model._model, p)
        if not self._ctx:
            raise EngineError(f"llama.cpp could not create a context ({config})")
        self.n_ctx = int(ll.llama_n_ctx(self._ctx))
        self.seq_cells = self.n_ctx if config.kv_unified else self.n_ctx // config.n_seq_max  # longest input
        self.pooling = _POOLING_NAMES.get(int(ll.llama_pooling_type(self._ctx)), "none")
        self._batch = ll.llama_batch_init(config.n_batch, 0, 1)
        self._mem = ll.llama_get_memory(self._ctx)

    def _fill(self, seqs: list[list[int]], logits_last_only: bool) -> list[int]:
        """Write the sequences into the batch; returns each sequence's last token index."""
        b = self._batch
        i = 0
        lasts = []
        for s, toks in enumerate(seqs):
            last = len(toks) - 1
            for pos, tok in enumerate(toks):
                b.token[i] = tok
                b.pos[i] = pos
                b.n_seq_id[i] = 1
                b.seq_id[i][0] = s
                b.logits[i] = (pos == last) if logits_last_only else True
                i += 1
            lasts.append(i - 1)
        b.n_tokens = i
        return lasts

    def _decode(self, seqs: list[list[int]], logits_last_only: bool) -> list[int]:
        n = sum(len(t) for t in seqs)
        if not seqs or any(not t for t in seqs):
            raise EngineError("empty sequence")
        if (
            len(seqs) > self.config.n_seq_max
            or n > self.config.n_batch
            or max(map(len, seqs)) > self.seq_cells
        ):
            raise EngineError(f"batch of {len(seqs)} sequences / {n} tokens exceeds the context's limits")
        self._ll.llama_memory_clear(self._mem, True)
        lasts = self._fill(seqs, logits_last_only)
        rc = (
            self._ll.llama_encode(self._ctx, self._batch)
            if not self.model.causal
            else (self._ll.llama_decode(self._ctx, self._batch))
        )
        if rc != 0:
            raise EngineError(f"llama_decode failed with code {rc}")
        return lasts

    def embed(self, seqs: list[list[int]]) -> np.ndarray:
        """Pooled (not normalised) embeddings, one row per sequence, in one packed decode."""
        with self.lock:
            self._decode(seqs, logits_last_only=False)
            out = np.empty((len(seqs), self.model.n_embd), dtype=np.float32)
            for s in range(len(seqs)):
                ptr = self._ll.llama_get_embeddings_seq(self._ctx, s)
                if not ptr:
                    raise EngineError("no pooled embedding: the context has pooling 'none'")
                out[s] = np.ctypeslib.as_array(ptr, shape=(self.model.n_embd,))
            return out

    def last_logits(self, seqs: list[list[int]], token_ids: list[int]) -> np.ndarray:
        """Logits of the given vocabulary ids at each sequence's last token (generation contexts)."""
        with self.lock:
            lasts = self._decode(seqs, logits_last_only=True)
            out = np.empty((len(seqs), len(token_ids)), dtype=np.float32)
            ids = np.asarray(token_ids)
            for s, last in enumerate(lasts):
                ptr = self._ll.llama_get_logits_ith(self._ctx, last)
                if not ptr:
                    raise EngineError("no logits (context made for embeddings?)")
                out[s] = np.ctypeslib.as_array(ptr, shape=(self.model.n_vocab,))[ids]
            return out

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            self._ll.llama_batch_free(self._batch)
            self._ll.llama_free(self._ctx)
            self._ctx = None

    def __del__(self):
        self.close()
