"""A client of `kb serve` (standard library only), and ``find_service`` to tell whether one runs.

The CLI and the app use the service when ``find_service`` finds one serving their store: it owns the
model and the store, which a second process could not open.
"""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode
from urllib.request import Request, urlopen

import numpy as np

from kb.service.local_token import FORWARD_KEY_FILE, FORWARD_KEY_HEADER, file_token, read_token
from kb.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0  # a rerank search may load the reranker first
PROBE_TIMEOUT_S = 0.5
FINISHED = ("done", "failed", "cancelled")


class ServiceError(Exception):
    """The service answered with an error (``status``) or did not answer (``status`` None)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KbClient:
    """``token``: an API token or a login's session token, sent as ``Authorization: Bearer``;
    ``file_token``: the login's token for file links a browser opens."""

    def __init__(
        self,
        base_url: str,
        timeout: float = DEFAULT_TIMEOUT_S,
        token: str | None = None,
        file_token: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.token, self.file_token = token, file_token

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
        raw: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The JSON answer (``raw``: the bytes) or ServiceError."""
        url = self.base_url + path + (f"?{urlencode(params)}" if params else "")
        if body is not None:
            data, content_type = json.dumps(body).encode(), "application/json"
        req = Request(url, data=data, method=method)
        if content_type:
            req.add_header("Content-Type", content_type)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            req.add_header(name, value)
        try:
            with urlopen(req, timeout=self.timeout if timeout is None else timeout) as resp:
                answer = resp.read()
                return answer if raw else json.loads(answer or b"null")
        except HTTPError as err:
            with err:
                message = _message(err.read()) or f"HTTP {err.code}"
            if err.code == 401 and not self.token:
                message += (
                    " (the service has team access on: set KB_API_TOKEN to a token from `kb token create`)"
                )
            raise ServiceError(message, err.code) from None
        except (URLError, OSError, ValueError) as err:  # refused, timed out, not JSON: not a kb service
            raise ServiceError(f"no kb service at {self.base_url}: {getattr(err, 'reason', err)}") from None

    # --- the API ----------------------------------------------------------------------------------
    def health(self, timeout: float | None = None) -> dict[str, Any]:
        return self._request("GET", "/health", timeout=timeout)

    def status(self) -> dict[str, Any]:
        return self._request("GET", "/status")

    def login(
        self,
        username: str,
        password: str,
        client_address: str | None = None,
        forward_key: str | None = None,
    ) -> dict[str, Any]:
        """``{token, file_token, user, role, expires}``; ServiceError 401 on a wrong password, 429 while
        too many have failed. ``client_address``: whom the app logs in for (guesses are limited per
        address), which the service believes only with its ``forward_key`` (``forward_key_of``)."""
        headers = {"X-Forwarded-For": client_address} if client_address else None
        if headers and forward_key:
            headers[FORWARD_KEY_HEADER] = forward_key
        body = {"username": username, "password": password}
        return self._request("POST", "/auth/login", body=body, headers=headers)

    def logout(self) -> None:
        self._request("POST", "/auth/logout")

    def whoami(self) -> dict[str, Any]:
        return self._request("GET", "/auth/me")

    def search(
        self,
        query: str,
        k: int = 10,
        rerank: bool = False,
        hybrid: bool | None = None,
        prefix: str | None = None,
        glob: str | None = None,
        kinds: Sequence[str] = (),
        exts: Sequence[str] = (),
        task: str | None = None,
        sources: Sequence[str] = (),
    ) -> dict[str, Any]:
        """``{"hits": [hit_record, …], "timings_ms": {…}}``; ``hybrid`` None: the service's KB_HYBRID."""
        body = {
            "query": query,
            "k": k,
            "rerank": rerank,
            "hybrid": hybrid,
            "prefix": prefix,
            "glob": glob,
            "kinds": list(kinds),
            "exts": list(exts),
            "sources": list(sources),
            "task": task,
        }
        return self._request("POST", "/search", body=body)

    def ask(
        self, question: str, rerank: bool = False, **filters: Any
    ) -> Generator[dict[str, Any], None, None]:
        """The events of ``POST /ask`` as they arrive (``kb.answer.flow``); closing the iterator closes
        the connection, which stops the generation. An ``error`` event raises ServiceError."""
        body = {"question": question, "rerank": rerank, **{k: v for k, v in filters.items() if v}}
        for key in ("kinds", "exts"):
            if key in body:
                body[key] = list(body[key])
        req = Request(self.base_url + "/ask", data=json.dumps(body).encode(), method="POST")
        req.add_header("Content-Type", "application/json")
        req.add_header("Accept", "text/event-stream")
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            resp = urlopen(req, timeout=self.timeout)
        except HTTPError as err:
            with err:
                raise ServiceError(_message(err.read()) or f"HTTP {err.code}", err.code) from None
        except (URLError, OSError) as err:
            raise ServiceError(f"no kb service at {self.base_url}: {getattr(err, 'reason', err)}") from None
        with resp:
            for raw in resp:
                line = raw.decode("utf-8").rstrip("\r\n")
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("event") == "error":
                    raise ServiceError(event.get("message", "the answer failed"))
                yield event

    def document(
        self,
        source: str,
        page: int | None = None,
        lines: tuple[int, int] | None = None,
        max_chars: int | None = None,
    ) -> dict[str, Any]:
        """A document as indexed (``GET /document``): whole, one page, or lines ``(start, end)``."""
        params: dict[str, Any] = {"source": source}
        if page is not None:
            params["page"] = page
        if lines is not None:
            params["start_line"], params["end_line"] = lines
        if max_chars is not None:
            params["max_chars"] = max_chars
        return self._request("GET", "/document", params=params)

    def submit_folder(
        self,
        path: str | Path | None,
        rebuild: bool = False,
        exclude: Iterable[str] = (),
        origin: str = "cli",
        name: str | None = None,
        allow_removals: bool = False,
    ) -> dict[str, Any]:
        """Queue the sync of a folder (the path is made absolute here; added as the source ``name``,
        by default named after it) or, without a path, of the source ``name``; returns the job."""
        body = {
            "path": str(Path(path).resolve()) if path is not None else None,
            "name": name,
            "rebuild": rebuild,
            "exclude": list(exclude),
            "allow_removals": allow_removals,
            "origin": origin,
        }
        return self._request("POST", "/jobs/folder", body=body)

    def sources(self) -> list[dict[str, Any]]:
        return self._request("GET", "/sources")["sources"]

    def remove_source(self, name: str) -> dict[str, Any]:
        return self._request("DELETE", f"/sources/{quote(name, safe='')}")

    def watch_source(self, name: str, on: bool) -> dict[str, Any]:
        return self._request("POST", f"/sources/{quote(name, safe='')}/watch", body={"on": on})

    def source_access(self, name: str, allow: Sequence[str]) -> dict[str, Any]:
        """Who may read the source: users and groups (empty: every signed-in user)."""
        return self._request("POST", f"/sources/{quote(name, safe='')}/access", body={"allow": list(allow)})

    def cancel_job(self, job_id: str) -> dict[str, Any]:
        return self._request("POST", f"/jobs/{quote(job_id, safe='')}/cancel")

    def upload(self, files: list[tuple[str, bytes]], origin: str = "ui") -> dict[str, Any]:
        """Send (file name, content) pairs; returns ``{"job": …, "files": [{original_name, source…}…]}``.

        The names are metadata: the service stores each file under a name of its own making."""
        data, content_type = _multipart(files, {"origin": origin})
        return self._request("POST", "/jobs/upload", data=data, content_type=content_type)

    def jobs(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The newest jobs, briefly (the report's counts as ``summary``); ``job(id)`` has the report."""
        return self._request("GET", "/jobs", params={"limit": limit} if limit else None)["jobs"]

    def job(self, job_id: str) -> dict[str, Any]:
        return self._request("GET", f"/jobs/{quote(job_id, safe='')}")

    def wait(
        self, job_id: str, on_progress: Callable[[dict[str, Any]], None] | None = None, poll: float = 0.5
    ) -> dict[str, Any]:
        """Poll a job until it is done or failed, passing each state to ``on_progress``; returns the job."""
        while True:
            job = self.job(job_id)
            if on_progress:
                on_progress(job)
            if job["state"] in FINISHED:
                return job
            time.sleep(poll)

    def documents(self) -> list[dict[str, Any]]:
        return self._request("GET", "/documents")["documents"]

    def delete_document(self, source: str) -> dict[str, Any]:
        return self._request("DELETE", "/documents", params={"source": source})

    def file_url(self, source: str, page: Any = None) -> str:
        """Where a browser opens the source file (at ``page`` for PDFs: a positive integer, else ignored)."""
        params = {"source": source, **({"ft": self.file_token} if self.file_token else {})}
        page = page if isinstance(page, int) and not isinstance(page, bool) and page > 0 else None
        return f"{self.base_url}/files?{urlencode(params)}" + (f"#page={page}" if page else "")

    def fetch_file(self, source: str) -> bytes:
        """The source file's bytes, through this client's login (for a browser that cannot reach the
        service itself)."""
        return self._request("GET", "/files", params={"source": source}, raw=True)

    def eval_reports(self, name: str | None = None) -> dict[str, Any]:
        """``{"reports": [{name, title, time, json, md, png}…] newest first, "report": {name, data (its
        JSON), markdown, png} or None}``: the report ``name`` inline, the newest by default."""
        return self._request("GET", "/eval/reports", params={"name": name} if name else None)

    def eval_chart(self, name: str) -> bytes:
        """A report's chart (PNG bytes)."""
        return self._request("GET", f"/eval/reports/{quote(name, safe='')}/chart", raw=True)

    def embeddings(self, texts: Sequence[str]) -> np.ndarray:
        """Document embeddings (bare, as stored chunks are) through the OpenAI-compatible endpoint."""
        answer = self._request(
            "POST", "/v1/embeddings", body={"input": list(texts), "encoding_format": "base64"}
        )
        rows = sorted(answer["data"], key=lambda d: d["index"])
        return np.array([np.frombuffer(base64.b64decode(d["embedding"]), dtype="<f4") for d in rows])


def _message(raw: bytes) -> str:
    try:
        error = json.loads(raw).get("error")
    except (ValueError, AttributeError):
        return raw.decode("utf-8", "replace")[:500]
    return error.get("message", "") if isinstance(error, dict) else str(error or "")


def _multipart(files: list[tuple[str, bytes]], fields: dict[str, str]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for filename, content in files:
        # as browsers do: quote, CR and LF percent-encoded, everything else sent as it is
        escaped = filename.replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{escaped}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def serves_store(health: dict[str, Any], settings: Settings) -> bool:
    """Whether the service answering works on the store these settings name."""
    return (health.get("data_dir"), health.get("qdrant_url"), health.get("collection")) == (
        str(settings.data_dir.resolve()),
        settings.qdrant_url,
        settings.collection,
    )


def credentials(settings: Settings, health: dict[str, Any]) -> str | None:
    """The token to send a service that answered ``health`` to a stranger: ``KB_API_TOKEN`` when it has
    team access on, else the local token in this data folder (when this account may read it)."""
    if health.get("auth"):
        return settings.api_token
    return read_token(settings.data_dir) if health.get("local_token") else None


def find_service(settings: Settings, timeout: float = PROBE_TIMEOUT_S) -> KbClient | None:
    """A client of the service at ``service_url`` if one answers within ``timeout`` and serves this store."""
    client = KbClient(settings.service_base_url)
    try:
        health = client.health(timeout=timeout)
        if isinstance(health, dict) and "data_dir" not in health:  # it wants credentials first
            client.token = credentials(settings, health)
            if client.token is None:
                return client  # it hides which store it serves from callers without a token: its 401 says why
            known = client.health(timeout=timeout)
            if "data_dir" in known or health.get("auth"):
                health = known
            else:  # our data folder's token is not its token: another store's service
                health = {**health, "data_dir": "another data folder"}
    except ServiceError:
        return None
    if isinstance(health, dict) and health.get("auth") and "data_dir" not in health:
        return client  # a wrong KB_API_TOKEN: its 401 says why
    if not isinstance(health, dict) or not serves_store(health, settings):
        log.warning(
            "the kb service at %s serves another store (%s); working in this process",
            client.base_url,
            health.get("data_dir") if isinstance(health, dict) else "?",
        )
        return None
    return client


def local_client(settings: Settings, timeout: float = DEFAULT_TIMEOUT_S) -> KbClient:
    """A client of the service at ``service_url`` with the local token of this data folder, if readable
    (the app and the tests use it; the CLI goes through ``find_service``)."""
    token = read_token(settings.data_dir)
    return KbClient(
        settings.service_base_url, timeout, token=token, file_token=file_token(token) if token else None
    )


def forward_key_of(settings: Settings) -> str | None:
    """The key with which the app may tell the service a browser's address (the service writes it to
    its data folder when team access is on), if this account may read it."""
    return read_token(settings.data_dir, name=FORWARD_KEY_FILE)


__all__ = [
    "KbClient",
    "ServiceError",
    "credentials",
    "find_service",
    "forward_key_of",
    "local_client",
    "serves_store",
]
