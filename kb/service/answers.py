"""Answers in the service: the generator loaded on first use (one at a time on it), and counts the
Status page shows — answers streaming now, pieces generated, where answers are generated."""

from __future__ import annotations

import threading
from collections.abc import Generator as Stream  # `Generator` here is the text generator
from typing import Any

from ingest.store.base import SearchFilter
from kb.answer.flow import AnswerOptions, Retrieve, answer_events
from kb.answer.generate import Generator, answers_status, make_generator
from kb.settings import Settings


class AnswerService:
    def __init__(self, settings: Settings, retrieve: Retrieve) -> None:
        self.settings, self._retrieve = settings, retrieve
        self._generator: Generator | None = None
        self._load_lock, self._count_lock = threading.Lock(), threading.Lock()
        self.streaming = 0  # answers being generated now
        self.pieces = 0  # pieces of answers generated since the start
        self.answered = 0

    def _loaded(self) -> Generator | None:
        with self._load_lock:
            if self._generator is None:
                self._generator = make_generator(self.settings)
            return self._generator

    def events(
        self, question: str, flt: SearchFilter | None, rerank: bool = False
    ) -> Stream[dict[str, Any], None, None]:
        """``answer_events`` for the service; closing it stops the generation."""
        options = AnswerOptions.from_settings(self.settings, rerank=rerank)
        inner = answer_events(question, self._retrieve, self._loaded(), options, flt)
        with self._count_lock:
            self.streaming += 1
        try:
            for event in inner:
                if event["event"] == "token":
                    with self._count_lock:
                        self.pieces += 1
                elif event["event"] == "answer":
                    self.answered += 1
                yield event
        finally:
            inner.close()
            with self._count_lock:
                self.streaming -= 1

    def status(self) -> dict[str, Any]:
        return {
            **answers_status(self.settings),
            "loaded": self._generator is not None,
            "streaming": self.streaming,
            "pieces": self.pieces,
            "answered": self.answered,
        }

    def close(self) -> None:
        with self._load_lock:
            if self._generator is not None:
                self._generator.close()
                self._generator = None
