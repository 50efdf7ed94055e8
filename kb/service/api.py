"""`kb serve`: the JSON API over the one process owning the model and the store (``owner.py``).

Qdrant's embedded engine admits one process and the model should load once, so the app and the CLI
use this service when it runs (``client.py``). Endpoints (JSON unless said):

- ``GET /health`` (cheap: which store it serves), ``GET /status`` (model, device, dim, points, model
  load time, patched engine, jobs by state, last ingest report)
- ``POST /search`` {query, k, rerank, hybrid, prefix, glob, kinds, exts, sources, task} →
  {hits: [SearchHit.to_json()…], timings_ms}
- ``POST /jobs/folder`` {path (absolute) and/or name, rebuild, exclude, allow_removals, origin
  cli|ui|api} → the queued sync of that folder (added as the source ``name``, by default named after
  the folder) or of the registered source ``name``; ``POST /jobs/upload`` (multipart files, optional
  field origin) → {job, files}; ``GET /jobs[?limit=]`` (the newest 20, or up to 100: state
  queued|running|done|failed|cancelled, progress, the report's counts as ``summary``, error, origin,
  times), ``GET /jobs/{id}`` (the same with the whole report),
  ``POST /jobs/{id}/cancel``
- ``GET /sources`` (name, path, files, chunks, OCR'd pages, last sync, watched), ``DELETE
  /sources/{name}`` (its points, then the source), ``POST /sources/{name}/watch`` {on},
  ``POST /sources/{name}/access`` {allow: users and groups; empty: everyone} (admins)
- ``GET /documents``, ``DELETE /documents?source=``, ``GET /files?source=name/path`` (the file
  itself, from the uploads or its source's folder, never from outside them)
- ``GET /eval/reports[?name=]`` (the `kb eval` reports, newest first, with one report's JSON),
  ``GET /eval/reports/{name}/chart`` (its PNG)
- ``POST /v1/embeddings`` (OpenAI-compatible, float or base64, optional dimensions): every input is
  embedded as a *document*, bare, the way stored chunks are; a query wants ``/search``, which adds
  the query instruction.

It binds 127.0.0.1 by default, only loopback Host names are accepted on a loopback bind (DNS
rebinding), and writes carrying another site's Origin are refused (a web page driving the browser).
With team access on (``KB_AUTH``; on by default when it listens beyond localhost) every endpoint but
``/health`` and ``POST /auth/login`` wants ``Authorization: Bearer <token>``: an API token (``kb token
create``) or the session token a login returns (``POST /auth/login`` {username, password} → {token,
file_token, user, role, expires}; ``POST /auth/logout``; ``GET /auth/me``). ``/files`` also takes
``?ft=<file_token>``, so that a browser can open a link. Readers search and read; editors upload,
delete and ingest folders under ``KB_INGEST_ROOTS``; admins also ingest any folder (when no roots are
set) and rebuild (``auth.py``). A source restricted to some users and groups is hidden from everyone
else but admins, on every route (``access.py``, applied here by ``caller_access``).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import anyio.to_thread
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ingest.model.download import ModelUnavailable
from ingest.model.embedder import InputTooLong
from ingest.sources import SourceError, UnknownSource
from ingest.store import SearchFilter, StoreError
from kb.answer.flow import AnswersOff, EmptyQuestion
from kb.answer.generate import GeneratorError
from kb.contract import MAX_K
from kb.search.document import MAX_CHARS
from kb.search.query import RERANK_CANDIDATES, SearchRequest
from kb.service.access import EVERYTHING, Access, access_for
from kb.service.auth import Accounts, AuthError, Principal, Sessions, TooManyLogins, role_at_least
from kb.service.core import Closing, InvalidRequest, KbService, NotFound, Refused
from kb.service.guards import FILE_TOKEN_PATHS, LocalTokenGate, LoopbackHosts, SameOriginWrites, bearer
from kb.service.jobs import LIST_LIMIT, LISTED, ORIGINS, JobNotActive
from kb.service.limits import Budgets, Overload, read_json
from kb.service.local_token import FORWARD_KEY_FILE, FORWARD_KEY_HEADER, ensure_token, same
from kb.service.mcp import mcp_app
from kb.settings import Settings

MAX_UPLOAD_FILES = 1000
DRAIN_MAX_BYTES = 1 << 30  # what of a refused upload is still read, so that the client hears the refusal
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
FILE_HEADERS = {"Content-Security-Policy": "sandbox", "X-Content-Type-Options": "nosniff"}


class ApiError(Exception):
    """A request the API answers with this status and message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _kb(request: Request) -> KbService:
    return request.app.state.kb


def _budgets(request: Request) -> Budgets:
    return request.app.state.budgets


async def _json(request: Request) -> dict[str, Any]:
    body = await read_json(request, _budgets(request))
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, default: Any = None) -> Any:
    value = body.get(name)
    if value is None:
        return default
    if kind is list:
        value = [value] if isinstance(value, str) else value
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    elif isinstance(value, kind) and (kind is bool or not isinstance(value, bool)):
        return value
    raise ApiError(400, f"{name} must be {'a list of strings' if kind is list else kind.__name__}")


def _origin(body: dict[str, Any]) -> str:
    origin = _field(body, "origin", str, "api")
    if origin not in ORIGINS:
        raise ApiError(400, f"origin must be one of {', '.join(ORIGINS)}")
    return origin


def _principal(request: Request) -> Principal | None:
    """Who is asking (None when team access is off)."""
    return request.scope.get("kb_principal")


def _require(request: Request, role: str, doing: str) -> None:
    who = _principal(request)
    if request.app.state.sessions is not None and (who is None or not role_at_least(who.role, role)):
        raise ApiError(
            403, f"{doing} needs the {role} role" + (f"; {who.name} is a {who.role}" if who else "")
        )


async def health(request: Request) -> Response:
    kb, sessions = _kb(request), request.app.state.sessions
    if sessions is not None and _principal(request) is None:  # nothing about this machine to strangers
        return JSONResponse({"ok": True, "auth": True})
    return JSONResponse({**kb.health(), "auth": sessions is not None})


async def login(request: Request) -> Response:
    sessions: Sessions | None = request.app.state.sessions
    if sessions is None:
        raise ApiError(400, "team access is off (KB_AUTH): no login needed")
    body = await _json(request)
    name, password = _field(body, "username", str, ""), _field(body, "password", str, "")
    gate = _budgets(request).login
    try:
        async with gate.admit():
            return JSONResponse(await gate.run(sessions.login, name, password, client_address(request)))
    except TooManyLogins as err:
        raise Overload(429, str(err), max(1, math.ceil(err.retry_after))) from None
    except AuthError as err:
        raise ApiError(401, str(err)) from None


def client_address(request: Request) -> str:
    """The caller's address; for the app on this machine, the browser's address it forwards, believed
    only with the forward key of the data folder (``local_token.FORWARD_KEY_FILE``), which another
    account cannot read: anyone else forging ``X-Forwarded-For`` is counted by their own address."""
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for")
    key = request.app.state.forward_key
    if forwarded and peer in LOOPBACK and key and same(request.headers.get(FORWARD_KEY_HEADER), key):
        return forwarded.rsplit(",", 1)[-1].strip()[:64]
    return peer


async def logout(request: Request) -> Response:
    sessions: Sessions | None = request.app.state.sessions
    token = bearer(request.headers)
    if sessions is not None and token:
        sessions.logout(token)
    return JSONResponse({"ok": True})


async def whoami(request: Request) -> Response:
    who = _principal(request)
    return JSONResponse({"user": who.name, "role": who.role} if who else {"user": None, "role": "admin"})


async def status(request: Request) -> Response:
    return JSONResponse(await run_in_threadpool(_kb(request).status, _access(request)))


def caller_access(who: Principal | None, kb: KbService) -> Access:
    """What ``who`` may read: the one place every route (and /mcp) applies who asks to what they see."""
    return EVERYTHING if who is None else access_for(who, kb.sources.all())


def _access(request: Request) -> Access:
    return caller_access(_principal(request), _kb(request))


def visible(request: Request, flt: SearchFilter) -> SearchFilter:
    """``flt`` narrowed, in the store's query, to the sources the caller may read."""
    return _access(request).narrow(flt)


def _search_filter(request: Request, body: dict[str, Any]) -> SearchFilter:
    flt = SearchFilter(
        source_prefix=_field(body, "prefix", str),
        source_glob=_field(body, "glob", str),
        kinds=tuple(_field(body, "kinds", list, [])),
        exts=tuple(_field(body, "exts", list, [])),
        sources=tuple(_field(body, "sources", list, [])),
    )
    return visible(request, flt)


async def search_endpoint(request: Request) -> Response:
    body = await _json(request)
    query = _field(body, "query", str)
    if query is None:
        raise ApiError(400, "query is required")
    kb = _kb(request)
    s, budgets = kb.settings, _budgets(request)
    if len(query) > s.query_max_chars:
        raise ApiError(400, f"query longer than {s.query_max_chars} characters (KB_QUERY_MAX_CHARS)")
    k, rerank = _field(body, "k", int, 10), _field(body, "rerank", bool, False)
    if not 1 <= k <= MAX_K:
        raise ApiError(400, f"k must be 1..{MAX_K}")
    if rerank and max(k, RERANK_CANDIDATES) > s.rerank_max_candidates:
        raise ApiError(
            400, f"a reranked search scores at most {s.rerank_max_candidates} (KB_RERANK_MAX_CANDIDATES)"
        )
    flt = _search_filter(request, body)
    task = _field(body, "task", str)
    if task is not None and len(task) > s.query_max_chars:
        raise ApiError(400, f"task longer than {s.query_max_chars} characters (KB_QUERY_MAX_CHARS)")
    req = SearchRequest(
        query,
        k=k,
        rerank=rerank,
        hybrid=_field(body, "hybrid", bool, s.hybrid),
        filter=flt,
        task=task,
        candidates=min(RERANK_CANDIDATES, s.rerank_max_candidates),
    )
    gate = budgets.rerank if rerank else budgets.search
    async with gate.admit():
        result = await gate.run(kb.search, req)
    return JSONResponse(result.to_json())


def _sse(event: dict[str, Any]) -> str:
    return f"event: {event['event']}\ndata: {json.dumps(event, ensure_ascii=False)}\n\n"


async def ask_endpoint(request: Request) -> Response:
    """An answer as server-sent events (``kb.answer.flow``); a client that leaves stops the generation."""
    body = await _json(request)
    question = _field(body, "question", str)
    if not question:
        raise ApiError(400, "question is required")
    limit = _kb(request).settings.query_max_chars
    if len(question) > limit:
        raise ApiError(400, f"question longer than {limit} characters (KB_QUERY_MAX_CHARS)")
    flt, rerank = _search_filter(request, body), _field(body, "rerank", bool, False)
    gate = _budgets(request).answer  # held while the answer streams: past its slots and waiting room, 429
    gate.enter()
    events = _kb(request).answers.events(question, flt, rerank)
    try:
        first = await gate.run(next, events)  # refusals (answers off, no question) as HTTP errors
    except BaseException:
        await run_in_threadpool(events.close)
        gate.leave()
        raise

    async def stream() -> AsyncIterator[str]:
        try:
            yield _sse(first)
            while (event := await gate.run(next, events, None)) is not None:
                yield _sse(event)
        except (GeneratorError, ModelUnavailable) as err:
            yield _sse({"event": "error", "message": str(err)})
        finally:
            with anyio.CancelScope(shield=True):  # also when the client went away
                await run_in_threadpool(events.close)
            gate.leave()

    return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


async def document_endpoint(request: Request) -> Response:
    """``GET /document?source=&page=&start_line=&end_line=&max_chars=``: a document as indexed."""
    params = request.query_params
    source = _source(request)

    def number(name: str) -> int | None:
        value = params.get(name)
        if value is None:
            return None
        if not value.isdigit():
            raise ApiError(400, f"{name} must be a positive whole number")
        return int(value)

    start, end = number("start_line"), number("end_line")
    lines = None if start is None and end is None else (start or 1, end or start or 1)
    _check_visible(request, source)
    doc = await run_in_threadpool(
        _kb(request).read_document,
        source,
        number("page"),
        lines,
        min(number("max_chars") or MAX_CHARS, MAX_CHARS),
    )
    return JSONResponse(doc.to_json())


def _check_visible(request: Request, source: str) -> None:
    """Refuses a document the caller may not read, as if it did not exist: the same rule as search's."""
    if not _access(request).reads(source):
        raise ApiError(404, f"no indexed document {source!r}")


def _check_source(request: Request, name: str) -> None:
    """Refuses a source the caller may not read, as if it did not exist."""
    if not _access(request).reads_source(name):
        raise ApiError(404, f"no source named {name!r} (`kb sources` lists them)")


async def submit_folder(request: Request) -> Response:
    body = await _json(request)
    path, name = _field(body, "path", str), _field(body, "name", str)
    if not path and not name:
        raise ApiError(400, "path (a folder) or name (a source) is required")
    rebuild = _field(body, "rebuild", bool, False)
    kb = _kb(request)
    roots = kb.settings.ingest_roots
    _require(
        request,
        "admin" if rebuild or (path and not roots) else "editor",
        "a rebuild" if rebuild else "ingesting a server folder" if path else "syncing a source",
    )
    if name:
        _check_source(request, name)
    if path and (taken := kb.source_at(path)) is not None:
        _check_source(request, taken.name)
    job = await run_in_threadpool(
        kb.submit_folder,
        path or None,
        rebuild,
        _field(body, "exclude", list, []),
        _origin(body),
        name,
        _field(body, "allow_removals", bool, False),
    )
    return JSONResponse(job.as_dict(), status_code=202)


async def list_sources(request: Request) -> Response:
    sources = await run_in_threadpool(_kb(request).list_sources)
    return JSONResponse({"sources": _access(request).only(sources, "name")})


async def remove_source(request: Request) -> Response:
    _require(request, "editor", "removing a source")
    _check_source(request, request.path_params["name"])
    return JSONResponse(await run_in_threadpool(_kb(request).remove_source, request.path_params["name"]))


async def watch_source(request: Request) -> Response:
    _require(request, "editor", "changing a source")
    _check_source(request, request.path_params["name"])
    on = _field(await _json(request), "on", bool)
    if on is None:
        raise ApiError(400, "on (true or false) is required")
    return JSONResponse(await run_in_threadpool(_kb(request).set_watch, request.path_params["name"], on))


async def source_access(request: Request) -> Response:
    """``{allow: [users and groups]}``: who may read the source (empty: every signed-in user)."""
    _require(request, "admin", "changing who may read a source")
    allow = _field(await _json(request), "allow", list)
    if allow is None:
        raise ApiError(400, "allow (a list of user and group names; empty for everyone) is required")
    kb, name = _kb(request), request.path_params["name"]
    return JSONResponse(await run_in_threadpool(kb.set_access, name, allow))


async def cancel_job(request: Request) -> Response:
    _require(request, "editor", "cancelling a job")
    await _readable_job(request)
    return JSONResponse(await run_in_threadpool(_kb(request).cancel_job, request.path_params["job_id"]))


class _TooLarge(Exception):
    pass


async def _capped(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise _TooLarge
        yield chunk


async def _too_large(request: Request, limit_mb: int) -> ApiError:
    """The 413, once the rest of the body is read and dropped (up to a bound): a client still sending
    would otherwise get a broken pipe instead of the answer."""
    drained = 0
    while drained <= DRAIN_MAX_BYTES:
        message = await request.receive()
        drained += len(message.get("body", b""))
        if message["type"] != "http.request" or not message.get("more_body"):
            break
    return ApiError(413, f"upload larger than {limit_mb} MB (KB_UPLOAD_MAX_MB)")


async def submit_upload(request: Request) -> Response:
    _require(request, "editor", "uploading")
    async with _budgets(request).upload.admit():
        return await _upload(request)


async def _upload(request: Request) -> Response:
    kb = _kb(request)
    limit_mb = kb.settings.upload_max_mb
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ApiError(415, "send the files as multipart/form-data")
    if int(request.headers.get("content-length") or 0) > limit_mb << 20:
        raise await _too_large(request, limit_mb)
    parser = MultiPartParser(
        request.headers, _capped(request.stream(), limit_mb << 20), max_files=MAX_UPLOAD_FILES
    )
    try:
        form = await parser.parse()
    except MultiPartException as err:
        raise ApiError(400, err.message) from err
    except _TooLarge:  # a body without (or with a false) Content-Length
        raise await _too_large(request, limit_mb) from None
    try:
        files = [v for _, v in form.multi_items() if isinstance(v, UploadFile)]
        if not files:
            raise ApiError(400, "no files in the upload")
        origin = _origin({"origin": form.get("origin")} if isinstance(form.get("origin"), str) else {})
        named = [(f.filename or "upload", f.file) for f in files]
        result = await _budgets(request).upload.run(kb.store_uploads, named, origin)
    finally:
        await form.close()
    return JSONResponse(result, status_code=202)


async def list_jobs(request: Request) -> Response:
    """The newest jobs, briefly (``Job.brief``: counts, not reports); ``?limit=`` up to LIST_LIMIT. Jobs of
    sources the caller may not read are left out (their summaries count that source's files)."""
    limit = request.query_params.get("limit", str(LISTED))
    if not limit.isdigit() or not 1 <= int(limit) <= LIST_LIMIT:
        raise ApiError(400, f"limit must be 1..{LIST_LIMIT}")
    jobs = await run_in_threadpool(_kb(request).queue.recent, int(limit))
    return JSONResponse({"jobs": _access(request).only([j.brief() for j in jobs], "source")})


async def _readable_job(request: Request) -> dict[str, Any]:
    """The job of the path, if it syncs a source the caller may read (its report names the files)."""
    job = await run_in_threadpool(_kb(request).queue.get, request.path_params["job_id"])
    if job is None or not _access(request).reads_source(job.source or ""):
        raise ApiError(404, "no such job")
    return job.as_dict()


async def get_job(request: Request) -> Response:
    return JSONResponse(await _readable_job(request))


def _source(request: Request) -> str:
    source = request.query_params.get("source")
    if not source:
        raise ApiError(400, "source is required")
    return source


async def documents(request: Request) -> Response:
    kb = _kb(request)
    if request.method == "DELETE":
        _require(request, "editor", "deleting a document")
        _check_visible(request, _source(request))
        return JSONResponse(await run_in_threadpool(kb.delete_document, _source(request)))
    docs = await run_in_threadpool(kb.documents)
    return JSONResponse({"documents": _access(request).only(docs, "source_name")})


async def files(request: Request) -> Response:
    _check_visible(request, _source(request))
    path, name = await run_in_threadpool(_kb(request).file_for, _source(request))
    pdf = path.suffix.lower() == ".pdf"
    return FileResponse(
        path,
        media_type="application/pdf" if pdf else "text/plain; charset=utf-8",
        filename=name,
        content_disposition_type="inline",
        headers=FILE_HEADERS,
    )


async def eval_reports(request: Request) -> Response:
    """The `kb eval` reports, newest first, and one of them inline (``?name=``; default the newest)."""
    kb = _kb(request)
    reports = await run_in_threadpool(kb.eval_reports)
    name = request.query_params.get("name") or (reports[0]["name"] if reports else None)
    report = await run_in_threadpool(kb.eval_report, name) if name else None
    if report is not None:  # the chart itself: /eval/reports/{name}/chart
        report = {**report, "png": report["png"] and str(report["png"])}
    return JSONResponse({"reports": reports, "report": report})


async def eval_chart(request: Request) -> Response:
    path = await run_in_threadpool(_kb(request).eval_chart, request.path_params["name"])
    return FileResponse(path, media_type="image/png", headers=FILE_HEADERS)


async def openai_embeddings(request: Request) -> Response:
    kb, gate = _kb(request), _budgets(request).embed
    s = kb.settings
    body = await _json(request)
    texts = body.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not (isinstance(texts, list) and texts and all(isinstance(t, str) for t in texts)):
        raise ApiError(400, "input must be a string or a non-empty list of strings (no token arrays)")
    if len(texts) > s.embed_max_inputs:
        raise ApiError(400, f"at most {s.embed_max_inputs} inputs per request (KB_EMBED_MAX_INPUTS)")
    encoding = _field(body, "encoding_format", str, "float")
    if encoding not in ("float", "base64"):
        raise ApiError(400, "encoding_format must be float or base64")
    dims = _field(body, "dimensions", int)
    if dims is not None and not 0 < dims <= kb.embedder.dim:
        raise ApiError(400, f"dimensions must be 1..{kb.embedder.dim}")
    async with gate.admit():
        counts = await gate.run(kb.count_tokens, texts)
        tokens = sum(counts)
        if tokens > s.embed_max_tokens:
            raise ApiError(
                400, f"{tokens} tokens in one request; at most {s.embed_max_tokens} (KB_EMBED_MAX_TOKENS)"
            )
        vectors: list[Any] = []
        for batch in _batches(texts, counts, s.embed_batch_tokens):
            if await request.is_disconnected():  # nobody to answer: the rest is not embedded
                return Response(status_code=499)
            vectors.extend(await gate.run(kb.embeddings, batch, dims))
    as_base64 = encoding == "base64"
    data = [
        {
            "object": "embedding",
            "index": i,
            "embedding": base64.b64encode(v.astype("<f4").tobytes()).decode() if as_base64 else v.tolist(),
        }
        for i, v in enumerate(vectors)
    ]
    return JSONResponse(
        {
            "object": "list",
            "data": data,
            "model": kb.settings.embed_model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )


def _batches(texts: list[str], counts: list[int], budget: int) -> list[list[str]]:
    """Consecutive texts in batches of at most ``budget`` tokens (a longer text alone)."""
    batches: list[list[str]] = [[]]
    used = 0
    for text, n in zip(texts, counts, strict=True):
        if batches[-1] and used + n > budget:
            batches.append([])
            used = 0
        batches[-1].append(text)
        used += n
    return batches


# named errors of the library, as HTTP statuses (ApiError carries its own)
STATUS_OF: dict[type[Exception], int] = {
    InvalidRequest: 400,
    InputTooLong: 400,
    SourceError: 400,
    Refused: 403,
    NotFound: 404,
    UnknownSource: 404,
    JobNotActive: 409,
    EmptyQuestion: 400,
    AnswersOff: 503,
    GeneratorError: 502,
    StoreError: 503,
    ModelUnavailable: 503,
    Closing: 503,
}


async def _error(request: Request, exc: Exception) -> Response:
    headers = exc.headers if isinstance(exc, Overload) else {}
    if isinstance(exc, ApiError | Overload):
        status_code, message = exc.status, exc.message
    else:  # the first listed class it is an instance of (FingerprintMismatch is a StoreError)
        status_code = next(code for kind, code in STATUS_OF.items() if isinstance(exc, kind))
        message = str(exc)
    if request.url.path.startswith("/v1/"):  # the OpenAI error shape
        kind = "invalid_request_error" if status_code < 500 else "server_error"
        error = {"message": message, "type": kind, "param": None, "code": None}
        return JSONResponse({"error": error}, status_code, headers=headers)
    return JSONResponse({"error": message}, status_code, headers=headers)


PUBLIC = {"/health", "/auth/login", "/auth/logout"}


class _RequireLogin:
    """Team access: nobody past this without a valid token (``PUBLIC`` paths aside); the principal
    goes into the scope for the handlers' role checks."""

    def __init__(self, app: ASGIApp, sessions: Sessions, budgets: Budgets) -> None:
        self.app, self.sessions, self.threads = app, sessions, budgets.auth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        token = bearer(request.headers)
        who = (
            await anyio.to_thread.run_sync(self.sessions.check, token, limiter=self.threads)
            if token
            else None
        )
        if who is None and scope["path"] in FILE_TOKEN_PATHS and request.query_params.get("ft"):
            who = self.sessions.check_file_token(request.query_params["ft"])
        if who is None and scope["path"] not in PUBLIC:
            message = "invalid or expired token: log in again" if token else "log in or send an API token"
            response = JSONResponse({"error": message}, 401, headers={"WWW-Authenticate": "Bearer"})
            await response(scope, receive, send)
            return
        scope["kb_principal"] = who
        await self.app(scope, receive, send)


ROUTES = [
    Route("/health", health),
    Route("/auth/login", login, methods=["POST"]),
    Route("/auth/logout", logout, methods=["POST"]),
    Route("/auth/me", whoami),
    Route("/status", status),
    Route("/search", search_endpoint, methods=["POST"]),
    Route("/ask", ask_endpoint, methods=["POST"]),
    Route("/document", document_endpoint),
    Route("/jobs/folder", submit_folder, methods=["POST"]),
    Route("/jobs/upload", submit_upload, methods=["POST"]),
    Route("/jobs", list_jobs),
    Route("/jobs/{job_id}", get_job),
    Route("/jobs/{job_id}/cancel", cancel_job, methods=["POST"]),
    Route("/sources", list_sources),
    Route("/sources/{name}", remove_source, methods=["DELETE"]),
    Route("/sources/{name}/watch", watch_source, methods=["POST"]),
    Route("/sources/{name}/access", source_access, methods=["POST"]),
    Route("/documents", documents, methods=["GET", "DELETE"]),
    Route("/files", files),
    Route("/eval/reports", eval_reports),
    Route("/eval/reports/{name}/chart", eval_chart),
    Route("/v1/embeddings", openai_embeddings, methods=["POST"]),
]


def create_app(settings: Settings, service: KbService | None = None) -> Starlette:
    """The API over a KbService opened at startup (or the one given) and closed at shutdown."""

    def for_caller(request: Request) -> tuple[KbService, Access]:  # the outer app: /mcp runs in a sub-app
        return app.state.kb, caller_access(_principal(request), app.state.kb)

    mcp, mcp_lifespan = mcp_app(for_caller)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        kb: KbService = service if service is not None else await run_in_threadpool(KbService, settings)
        kb.start()
        app.state.kb = kb
        try:
            async with mcp_lifespan():
                yield
        finally:
            await run_in_threadpool(kb.close)

    sessions, budgets = sessions_for(settings), Budgets.from_settings(settings)
    hosts = LOOPBACK | {settings.service_host}
    middleware = [Middleware(SameOriginWrites, hosts=hosts, port=settings.service_port)]
    if settings.service_host in LOOPBACK:  # DNS rebinding: only loopback names reach a loopback bind
        middleware.insert(0, Middleware(LoopbackHosts, hosts=LOOPBACK))
    if sessions is not None:
        middleware.append(Middleware(_RequireLogin, sessions=sessions, budgets=budgets))
    elif settings.access == "local":  # another account on this machine cannot read the token file
        middleware.append(Middleware(LocalTokenGate, token=ensure_token(settings.data_dir)))
    handlers: dict[Any, Any] = {ApiError: _error, Overload: _error, **{kind: _error for kind in STATUS_OF}}
    routes = [*ROUTES, Route("/mcp", mcp, methods=["GET", "POST", "DELETE"])]
    app = Starlette(routes=routes, middleware=middleware, lifespan=lifespan, exception_handlers=handlers)
    app.state.sessions, app.state.budgets = sessions, budgets
    # the app logs users in for their browsers: the key that lets it say from which address
    app.state.forward_key = (
        ensure_token(settings.data_dir, FORWARD_KEY_FILE) if sessions is not None else None
    )
    return app


class NoAccounts(RuntimeError):
    """Team access is on and nobody could log in."""


def sessions_for(settings: Settings) -> Sessions | None:
    """The login sessions when team access is on (NoAccounts when the accounts file is empty)."""
    if not settings.auth_enabled:
        return None
    accounts = Accounts(settings.accounts_path)
    if accounts.empty():
        raise NoAccounts(
            f"team access is on (KB_AUTH={settings.auth}, listening on {settings.service_host}) but "
            f"{settings.accounts_path} has no accounts: add one with `kb user add NAME --role admin`"
        )
    return Sessions(accounts, settings.session_hours)


__all__ = ["ApiError", "NoAccounts", "create_app", "sessions_for"]
