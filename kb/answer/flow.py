"""One answer as a stream of events: retrieve, pack, generate, check.

Events are JSON-ready dicts with an ``event`` key (``kb.contract.ASK_EVENTS``):

- ``passages``: ``{"passages": [Passage.to_json()…]}`` — what the model reads, numbered;
- ``token``: ``{"text": "…"}`` — a piece of the answer as it is generated;
- ``answer``: the checked answer — ``text`` (unknown citation numbers removed), ``citations``
  (number → file and place), ``grounding`` (each sentence, supported or not, and the claims
  missing from its passages), ``withheld`` (most of it unsupported: ``text`` says so and the
  passages stand instead; the model's words are kept in ``draft``), ``no_answer`` (nothing relevant
  retrieved, or the model said the passages do not hold it), ``removed_citations``, ``generator``,
  ``where`` and ``timings``.

Nothing relevant retrieved (the best dense score under ``min_score``) means no model call at all.
The caller closes the iterator to stop: the generation stops with it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Generator as Stream  # `Generator` here is the text generator
from dataclasses import dataclass
from typing import Any

from ingest.store.base import SearchFilter
from kb.answer.citations import citations, drop_unknown
from kb.answer.generate import ANSWERS_OFF, Generator
from kb.answer.grounding import check, normalise
from kb.answer.passages import Passage, pack
from kb.answer.prompt import build_messages, no_answer, prompt_overhead
from kb.contract import SearchHit
from kb.search.query import SearchRequest
from kb.settings import DEFAULTS, Settings

Retrieve = Callable[[SearchRequest], list[SearchHit]]
TEMPLATE_TOKENS = 64  # what a chat template adds around the messages, at most (role markers, BOS)
WITHHELD = (
    "The answer was withheld: most of what the model wrote is not in the passages it cites. "
    "Read the passages instead."
)


class AnswersOff(RuntimeError):
    """No generator is configured (``ANSWERS_OFF`` says how to turn answers on)."""

    def __init__(self) -> None:
        super().__init__(ANSWERS_OFF)


class EmptyQuestion(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class AnswerOptions:
    passages: int = DEFAULTS.answer_passages
    min_score: float = DEFAULTS.answer_min_score
    max_tokens: int = DEFAULTS.answer_max_tokens
    withhold: float = DEFAULTS.answer_withhold
    hybrid: bool = DEFAULTS.hybrid
    rerank: bool = False

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> AnswerOptions:
        values = {
            "passages": settings.answer_passages,
            "min_score": settings.answer_min_score,
            "max_tokens": settings.answer_max_tokens,
            "withhold": settings.answer_withhold,
            "hybrid": settings.hybrid,
        }
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})


def retrieve_passages(
    question: str, retrieve: Retrieve, options: AnswerOptions, flt: SearchFilter | None
) -> tuple[list[SearchHit], float | None]:
    """The hits to pack and the best dense score (None: nothing found).

    The relevance gate reads the dense (cosine) score, the one scale a threshold means something
    on; the passages come from the configured search (hybrid, rerank) when it differs."""
    dense = retrieve(SearchRequest(question, k=options.passages, hybrid=False, filter=flt))
    best = max((h.score for h in dense), default=None)
    if best is None or best < options.min_score or not (options.hybrid or options.rerank):
        return dense, best
    req = SearchRequest(
        question, k=options.passages, hybrid=options.hybrid, rerank=options.rerank, filter=flt
    )
    return retrieve(req), best


def answer_events(
    question: str,
    retrieve: Retrieve,
    generator: Generator | None,
    options: AnswerOptions = AnswerOptions(),
    flt: SearchFilter | None = None,
) -> Stream[dict[str, Any], None, None]:
    question = question.strip()
    if not question:
        raise EmptyQuestion("the question is empty")
    if generator is None:
        raise AnswersOff
    started = time.perf_counter()
    hits, best = retrieve_passages(question, retrieve, options, flt)
    retrieved_ms = (time.perf_counter() - started) * 1000
    meta = {"generator": generator.name, "where": generator.where}
    if best is None or best < options.min_score:
        yield {"event": "passages", "passages": []}
        yield _final(no_answer(question), [], meta, no_answer_reason="nothing relevant was found", best=best)
        return
    budget = (
        generator.context
        - options.max_tokens
        - generator.count_tokens(prompt_overhead(question))
        - TEMPLATE_TOKENS
    )
    passages = pack(hits, budget, generator.count_tokens)
    yield {"event": "passages", "passages": [p.to_json() for p in passages]}
    if not passages:
        reason = "no passage fits the model's context (KB_LLM_CONTEXT)"
        yield _final(no_answer(question), [], meta, no_answer_reason=reason, best=best)
        return
    pieces, first_ms = [], None
    stream = generator.stream(build_messages(question, passages), options.max_tokens)
    t0 = time.perf_counter()
    try:
        for piece in stream:
            if first_ms is None:
                first_ms = (time.perf_counter() - t0) * 1000
            pieces.append(piece)
            yield {"event": "token", "text": piece}
    finally:
        stream.close()
    timings = {
        "retrieve_ms": round(retrieved_ms, 1),
        "first_token_ms": None if first_ms is None else round(first_ms, 1),
        "generate_ms": round((time.perf_counter() - t0) * 1000, 1),
        "pieces": len(pieces),
    }
    yield finish("".join(pieces), question, passages, options, {**meta, "timings": timings}, best)


def finish(
    raw: str,
    question: str,
    passages: list[Passage],
    options: AnswerOptions,
    meta: dict[str, Any],
    best: float | None = None,
) -> dict[str, Any]:
    """The ``answer`` event for a generated text: citations cleaned and mapped, claims checked."""
    text, removed = drop_unknown(raw.strip(), [p.number for p in passages])
    refusal = no_answer(question)
    if normalise(refusal).rstrip(".。") in normalise(text):
        return _final(refusal, passages, meta, no_answer_reason="the passages do not contain it", best=best)
    grounding = check(text, passages, options.withhold)
    return {
        "event": "answer",
        "text": WITHHELD if grounding.withheld else text,
        "draft": text,
        "withheld": grounding.withheld,
        "no_answer": False,
        "citations": [c.to_json() for c in citations(text, passages)],
        "removed_citations": removed,
        "grounding": grounding.to_json(),
        "best_score": best,
        **meta,
    }


def _final(
    text: str, passages: list[Passage], meta: dict[str, Any], no_answer_reason: str, best: float | None
) -> dict[str, Any]:
    return {
        "event": "answer",
        "text": text,
        "draft": "",
        "withheld": False,
        "no_answer": True,
        "no_answer_reason": no_answer_reason,
        "citations": [],
        "removed_citations": [],
        "grounding": {"sentences": [], "checked": 0, "unsupported": 0, "withheld": False},
        "best_score": best,
        **meta,
    }
