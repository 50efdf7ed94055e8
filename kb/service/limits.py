"""Budgets of `kb serve`: no request may take more than its share, and no kind of request may starve the rest.

- **Bodies** are read up to a cap per route (a login's is tiny) and refused with 413 past it — before
  anything is parsed, by the declared Content-Length when there is one — and JSON is parsed off the
  event loop, on threads of its own.
- **Heavy work** (a search, a reranked search, embeddings, uploads, logins) goes through a ``Gate`` of
  its kind: ``slots`` requests run at once on threads of their own (never the pool every other route
  shares), ``waiting`` more wait for a slot, and the rest are answered 429 with ``Retry-After`` at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from starlette.requests import Request

from kb.settings import Settings

T = TypeVar("T")

RETRY_AFTER_S = 2  # what a 429 asks the client to wait
PARSE_THREADS = 2  # JSON bodies parsed at once
AUTH_THREADS = 4  # token checks at once (the accounts file is read when it changed)
DRAIN_MAX_BYTES = 16 << 20  # what of a refused body is still read (and dropped), so that the client hears why


class Overload(Exception):
    """A request refused for its size (413), its parameters (400) or because its kind is busy (429)."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        if status == 413:
            self.headers["Connection"] = "close"  # the rest of the body is not read


class Gate:
    """At most ``slots`` of one kind of request run at once and ``waiting`` more wait; past that, 429."""

    def __init__(self, name: str, slots: int, waiting: int) -> None:
        self.name, self.capacity = name, slots + waiting
        self.limiter = anyio.CapacityLimiter(slots)
        self.admitted = 0  # changed only on the event loop: no lock needed

    def enter(self) -> None:
        """Admits one request (Overload 429 when the gate is full); ``leave`` when it is done."""
        if self.admitted >= self.capacity:
            raise Overload(429, f"too many {self.name} requests at once; try again shortly", RETRY_AFTER_S)
        self.admitted += 1

    def leave(self) -> None:
        self.admitted -= 1

    @asynccontextmanager
    async def admit(self) -> AsyncIterator[Gate]:
        self.enter()
        try:
            yield self
        finally:
            self.leave()

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on one of this gate's threads (waiting for a slot)."""
        return await anyio.to_thread.run_sync(fn, *args, limiter=self.limiter)


@dataclass
class Budgets:
    """The caps and gates of one service, from its settings."""

    settings: Settings
    search: Gate
    rerank: Gate
    embed: Gate
    upload: Gate
    login: Gate
    answer: Gate
    parse: anyio.CapacityLimiter
    auth: anyio.CapacityLimiter

    @classmethod
    def from_settings(cls, s: Settings) -> Budgets:
        wait = s.busy_waiting
        return cls(
            s,
            search=Gate("search", s.search_concurrency, max(wait, 4 * s.search_concurrency)),
            rerank=Gate("reranked search", s.rerank_concurrency, wait),
            embed=Gate("embeddings", s.embed_concurrency, wait),
            upload=Gate("upload", s.upload_concurrency, wait),
            login=Gate("login", s.login_concurrency, wait),
            answer=Gate("answer", s.answer_concurrency, wait),
            parse=anyio.CapacityLimiter(PARSE_THREADS),
            auth=anyio.CapacityLimiter(AUTH_THREADS),
        )

    def body_limit(self, path: str) -> tuple[int, str]:
        """The largest JSON body ``path`` takes, in bytes, and the setting that says so."""
        s = self.settings
        if path == "/auth/login":
            return s.login_body_max_bytes, "KB_LOGIN_BODY_MAX_BYTES"
        if path == "/v1/embeddings":
            return s.embed_body_max_mb << 20, "KB_EMBED_BODY_MAX_MB"
        return s.body_max_kb << 10, "KB_BODY_MAX_KB"


def too_large(limit: int, setting: str) -> Overload:
    size = (
        f"{limit >> 20} MB" if limit >= 1 << 20 else f"{limit >> 10} KB" if limit >= 1 << 10 else f"{limit} B"
    )
    return Overload(413, f"request body larger than {size} ({setting})")


async def _refuse(request: Request, limit: int, setting: str, seen: int) -> Overload:
    """The 413, once the rest of the body (up to ``DRAIN_MAX_BYTES``) is read and dropped: a client still
    sending would otherwise get a broken pipe instead of the answer. Longer ones are cut off."""
    while seen <= DRAIN_MAX_BYTES:
        message = await request.receive()
        seen += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    return too_large(limit, setting)


async def read_body(request: Request, limit: int, setting: str) -> bytes:
    """The body, refused (413) as soon as it is known to pass ``limit`` bytes, before any of it is kept."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise await _refuse(request, limit, setting, 0)
    parts, seen = [], 0
    while True:
        message = await request.receive()
        if message["type"] != "http.request":
            raise Overload(400, "the client went away before its request was complete")
        chunk = message.get("body", b"")
        seen += len(chunk)
        if seen > limit:
            raise await _refuse(request, limit, setting, seen)
        parts.append(chunk)
        if not message.get("more_body"):
            return b"".join(parts)


async def read_json(request: Request, budgets: Budgets) -> Any:
    """The JSON body of a request within its route's cap, parsed on a parsing thread."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise Overload(415, "send a JSON body with Content-Type: application/json")
    raw = await read_body(request, *budgets.body_limit(request.url.path))
    try:
        return await anyio.to_thread.run_sync(json.loads, raw, limiter=budgets.parse)
    except ValueError as err:  # UnicodeDecodeError included
        raise Overload(400, f"invalid JSON: {err}") from err


__all__ = ["RETRY_AFTER_S", "Budgets", "Gate", "Overload", "read_body", "read_json", "too_large"]
