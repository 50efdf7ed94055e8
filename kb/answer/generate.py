"""The two generators of answers, behind one small protocol: a local GGUF chat model run by
llama-cpp-python, and any OpenAI-compatible ``/chat/completions`` endpoint (llama-server, Ollama,
vLLM, SGLang). Both stream text pieces; closing the stream stops the generation.

The local model's own chat template (GGUF metadata) renders the messages, so the prompt is exactly
what the model was trained on; Qwen3's hybrid models are told not to think (``enable_thinking``),
and a ``<think>…</think>`` block is dropped from the stream should one come anyway.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Generator as Stream  # `Generator` here is the text generator
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Protocol
from urllib.error import HTTPError, URLError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

from kb.settings import LOOPBACK_HOSTS, Settings

ANSWERS_OFF = (
    "answers are off: set KB_LLM_MODEL to a local GGUF chat model (`kb models` lists the known ones; "
    "`kb model pull qwen3-4b-chat` fetches one) or KB_LLM_URL to an OpenAI-compatible endpoint"
)
ENDPOINT_TIMEOUT_S = 300.0
BYTES_PER_TOKEN = 3  # a conservative estimate where the endpoint's tokenizer is out of reach
THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

Messages = list[dict[str, str]]


class GeneratorError(Exception):
    """The model or the endpoint failed to generate."""


class Generator(Protocol):
    name: str  # which model, for people
    where: str  # where answers are generated: "this machine" or the endpoint's host
    context: int  # tokens the prompt and the answer share

    def count_tokens(self, text: str) -> int: ...

    def stream(self, messages: Messages, max_tokens: int) -> Stream[str, None, None]:
        """Pieces of the answer as they come; closing the iterator stops the generation."""
        ...

    def close(self) -> None: ...


def without_thinking(pieces: Iterable[str]) -> Stream[str, None, None]:
    """The stream less a leading ``<think>…</think>`` block (and the blank lines after it).

    Closing this iterator closes ``pieces``, which stops the generation behind it."""
    head = ""
    try:
        for piece in pieces:
            head += piece
            start = head.lstrip()
            if len(start) < len(THINK_OPEN) and THINK_OPEN.startswith(start):
                continue  # cannot tell yet
            if not start.startswith(THINK_OPEN):
                yield head
                break
            if THINK_CLOSE in start:
                rest = start.split(THINK_CLOSE, 1)[1].lstrip()
                if rest:
                    yield rest
                break
        else:  # the stream ended undecided: an unfinished think block says nothing
            if head.strip() and not head.lstrip().startswith(THINK_OPEN):
                yield head
            return
        yield from pieces
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()


class LocalGenerator:
    """A GGUF chat model in this process; one answer at a time."""

    def __init__(self, path: Path, context: int, gpu: bool, n_threads: int = 0, no_think: bool = False):
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._llm = Llama(
            model_path=str(path),
            n_ctx=context,
            n_gpu_layers=-1 if gpu else 0,
            n_threads=n_threads or os.cpu_count(),
            n_threads_batch=n_threads or os.cpu_count(),
            verbose=False,
        )
        template = self._llm.metadata.get("tokenizer.chat_template")
        if not template:
            self._llm.close()
            raise GeneratorError(f"{path.name} carries no chat template: it is not a chat model")
        model = self._llm._model
        eos, bos = self._llm.token_eos(), self._llm.token_bos()
        self._eos = model.token_get_text(eos) if eos != -1 else ""
        self._format = Jinja2ChatFormatter(
            template=template,
            eos_token=self._eos,
            bos_token=model.token_get_text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        self._extra = {"enable_thinking": False} if no_think else {}
        self._lock = threading.Lock()
        self.name, self.where, self.context = path.name, "this machine", context

    def render(self, messages: Messages) -> str:
        """The prompt text the model reads: the messages through the GGUF's chat template."""
        return str(self._format(messages=messages, **self._extra).prompt)  # type: ignore[arg-type]

    def count_tokens(self, text: str) -> int:
        return len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def stream(self, messages: Messages, max_tokens: int) -> Stream[str, None, None]:
        return without_thinking(self._pieces(self.render(messages), max_tokens))

    def _pieces(self, prompt: str, max_tokens: int) -> Stream[str, None, None]:
        with self._lock:
            tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            if len(tokens) + max_tokens > self.context:
                raise GeneratorError(
                    f"the prompt ({len(tokens)} tokens) and the answer ({max_tokens}) exceed the "
                    f"context ({self.context}, KB_LLM_CONTEXT)"
                )
            completion: Any = self._llm.create_completion(  # stream=True: an iterator of chunks
                tokens,
                max_tokens=max_tokens,
                temperature=0.0,
                stream=True,
                stop=[self._eos] if self._eos else [],
            )
            try:
                for chunk in completion:
                    text = chunk["choices"][0]["text"]
                    if text:
                        yield text
            finally:
                completion.close()

    def close(self) -> None:
        with self._lock:
            self._llm.close()


class OpenAIGenerator:
    """An OpenAI-compatible chat endpoint; ``url`` is its base (``http://host:8080/v1``)."""

    def __init__(self, url: str, model: str | None, api_key: str | None, context: int) -> None:
        self.url = url.rstrip("/")
        self.model, self.api_key, self.context = model, api_key, context
        self.name = f"{model or 'default model'} at {self.url}"
        self.where = endpoint_place(self.url)

    def count_tokens(self, text: str) -> int:
        return math.ceil(len(text.encode("utf-8")) / BYTES_PER_TOKEN)

    def stream(self, messages: Messages, max_tokens: int) -> Stream[str, None, None]:
        return without_thinking(self._pieces(messages, max_tokens))

    def _pieces(self, messages: Messages, max_tokens: int) -> Stream[str, None, None]:
        body: dict[str, Any] = {
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0,
            "stream": True,
        }
        if self.model:
            body["model"] = self.model
        req = Request(self.url + "/chat/completions", data=json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "text/event-stream")
        if self.api_key:
            req.add_header("Authorization", f"Bearer {self.api_key}")
        try:
            resp = urlopen(req, timeout=ENDPOINT_TIMEOUT_S)
        except HTTPError as err:
            with err:
                detail = err.read().decode("utf-8", "replace")[:300]
            raise GeneratorError(f"{self.url} answered HTTP {err.code}: {detail}") from None
        except (URLError, OSError) as err:
            raise GeneratorError(f"no answer from {self.url}: {getattr(err, 'reason', err)}") from None
        with resp:  # closing the response ends the server's generation
            for raw in resp:
                line = raw.decode("utf-8", "replace").strip()
                if not line.startswith("data:"):
                    continue
                data = line[5:].strip()
                if data == "[DONE]":
                    return
                try:
                    choice = json.loads(data)["choices"][0]
                except (ValueError, KeyError, IndexError, TypeError):
                    raise GeneratorError(
                        f"{self.url} sent an event that is not a chat chunk: {data[:200]}"
                    ) from None
                text = (choice.get("delta") or {}).get("content")
                if text:
                    yield text

    def close(self) -> None:
        pass


def endpoint_place(url: str) -> str:
    """Where an endpoint generates, for people: this machine, or the host the passages go to."""
    host = urlsplit(url).hostname or "?"
    return "this machine" if host in LOOPBACK_HOSTS else f"{host} (the passages are sent there)"


def answers_status(settings: Settings) -> dict[str, Any]:
    """Whether answers are on, with which model and where they are generated (nothing loaded)."""
    if settings.llm_url:
        model = settings.llm_model or "default model"
        return {
            "on": True,
            "generator": f"{model} at {settings.llm_url}",
            "where": endpoint_place(settings.llm_url),
        }
    if settings.llm_model:
        return {"on": True, "generator": settings.llm_model, "where": "this machine"}
    return {"on": False, "generator": None, "where": None, "how": ANSWERS_OFF}


def make_generator(settings: Settings) -> Generator | None:
    """The configured generator, or None when answers are off (``ANSWERS_OFF`` says how to turn them on)."""
    if settings.llm_url:
        return OpenAIGenerator(
            settings.llm_url, settings.llm_model, settings.llm_api_key, settings.llm_context
        )
    if not settings.llm_model:
        return None
    from ingest.model.embedder import resolve_model

    path, entry = resolve_model(settings.llm_model, settings.models_dir)
    if entry is not None and entry.role != "chat":
        raise GeneratorError(f"{entry.name} is an {entry.role} model; KB_LLM_MODEL wants a chat model")
    return LocalGenerator(
        path,
        settings.llm_context,
        settings.gpu,
        settings.n_threads,
        no_think=bool(entry and entry.no_think),
    )
