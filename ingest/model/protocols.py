"""What the rest of kb needs of a model: the seams where an embedder or a reranker is passed.

The pipeline, search, the service and the tests depend on these, not on the llama.cpp classes, so a
small deterministic model (or a service-side wrapper that serialises queries) fits wherever the real
one does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np


class TextEmbedder(Protocol):
    """Documents embedded bare, queries with the model's recipe; vectors L2-normalised, ``dim`` wide."""

    dim: int
    max_tokens: int  # the longest input, in the model's own tokens
    max_document_tokens: int  # the longest document: max_tokens less what the recipe puts before it
    query_task: str  # the instruction put before a query (instruction-aware models), "" otherwise

    def count_tokens(self, text: str) -> int: ...
    def embed_documents(self, texts: Sequence[str]) -> np.ndarray: ...
    def embed_query(self, text: str, task: str | None = None) -> np.ndarray: ...
    def fingerprint(self) -> dict[str, Any]: ...


@dataclass(frozen=True, slots=True)
class RerankScore:
    score: float  # p(yes)
    windowed: bool  # the document was longer than the context: scored on its best window


class PassageReranker(Protocol):
    def score(self, query: str, documents: list[str], instruction: str = ...) -> list[RerankScore]: ...
