"""Qwen3-Reranker through llama.cpp: the official judge prompt, scored as p(yes) from yes/no logits.

llama-cpp-python 0.3.36 has no rerank API, so the prompt is built here exactly as the model card
builds it (system judge prompt, ``<Instruct>/<Query>/<Document>``, assistant turn with an empty
think block) and the last token's "yes" and "no" logits give ``p = softmax([no, yes])[1]``.
A document longer than the context is scored on its best window; the hit says so.
"""

from __future__ import annotations

import math

import numpy as np

from ingest.model.embedder import resolve_model
from ingest.model.engine import ContextConfig, LlamaModel
from ingest.model.protocols import RerankScore
from kb.settings import DEFAULT_QUERY_TASK, Settings

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
DEFAULT_INSTRUCTION = DEFAULT_QUERY_TASK  # the same task the embedder puts before a query
RERANK_CONTEXT = 8192
WINDOW_OVERLAP = 128


def format_pair(query: str, document: str, instruction: str = DEFAULT_INSTRUCTION) -> str:
    return f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"


class Reranker:
    def __init__(self, model: LlamaModel, n_ctx: int = RERANK_CONTEXT, n_threads: int = 0):
        self.model = model
        self.n_ctx = min(n_ctx, model.n_ctx_train or n_ctx)
        cfg = ContextConfig(self.n_ctx, self.n_ctx, min(2048, self.n_ctx), 16, n_threads)
        self.ctx = model.context(cfg, embeddings=False)
        self.yes = self._single("yes")
        self.no = self._single("no")
        self.prefix = model.tokenize(PREFIX, add_special=False, parse_special=True)
        self.suffix = model.tokenize(SUFFIX, add_special=False, parse_special=True)

    def _single(self, word: str) -> int:
        ids = self.model.tokenize(word, add_special=False)
        if len(ids) != 1:
            raise ValueError(f"reranker vocabulary has no single token for {word!r}")
        return ids[0]

    def _sequences(self, query: str, doc: str, instruction: str) -> tuple[list[list[int]], bool]:
        """The prompt tokens; several windows of the document when it does not fit the context."""
        head = self.model.tokenize(
            f"<Instruct>: {instruction}\n<Query>: {query}\n<Document>: ", add_special=False
        )
        body = self.model.tokenize(doc, add_special=False)
        room = self.n_ctx - len(self.prefix) - len(self.suffix) - len(head)
        if room < 16:  # an enormous query: keep its start
            head = head[: max(16, len(head) + room - 256)]
            room = self.n_ctx - len(self.prefix) - len(self.suffix) - len(head)
        if len(body) <= room:
            whole = self.model.tokenize(format_pair(query, doc, instruction), add_special=False)
            if len(whole) + len(self.prefix) + len(self.suffix) <= self.n_ctx:
                return [self.prefix + whole + self.suffix], False
        step = max(1, room - WINDOW_OVERLAP)
        windows = [body[i : i + room] for i in range(0, max(1, len(body) - WINDOW_OVERLAP), step)]
        return [self.prefix + head + w + self.suffix for w in windows], True

    def score(
        self, query: str, documents: list[str], instruction: str = DEFAULT_INSTRUCTION
    ) -> list[RerankScore]:
        out = []
        for doc in documents:
            seqs, windowed = self._sequences(query, doc, instruction)
            best = -math.inf
            for seq in seqs:
                no, yes = self.ctx.last_logits([seq], [self.no, self.yes])[0]
                best = max(best, _p_yes(no, yes))
            out.append(RerankScore(float(best), windowed))
        return out

    def close(self) -> None:
        self.ctx.close()
        self.model.close()


def _p_yes(no: float, yes: float) -> float:
    m = max(no, yes)
    e_yes, e_no = np.exp(yes - m), np.exp(no - m)
    return float(e_yes / (e_yes + e_no))


def make_reranker(settings: Settings) -> Reranker:
    path, _ = resolve_model(settings.rerank_model, settings.models_dir)
    return Reranker(LlamaModel(path, gpu=settings.gpu), n_threads=settings.n_threads)
