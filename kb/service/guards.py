"""What stands before every route of `kb serve`, as ASGI middleware: the Host a loopback bind answers to,
writes from other sites' pages, and the local token (team access off)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from kb.service.local_token import TOKEN_FILE, file_token, same

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
FILE_TOKEN_PATHS = {"/files"}


def bearer(headers: Headers) -> str | None:
    scheme, _, token = headers.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def host_name(host: str) -> str:
    """The name of a Host header without its port (``[::1]:8765`` → ``::1``)."""
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class LoopbackHosts:
    """On a loopback bind only loopback names are answered (DNS rebinding: a site that points its own
    name at 127.0.0.1 must not reach the service through the user's browser). IPv6 included."""

    def __init__(self, app: ASGIApp, hosts: set[str]) -> None:
        self.app, self.hosts = app, hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        checked = scope["type"] in ("http", "websocket")
        if checked and host_name(Headers(scope=scope).get("host", "")) not in self.hosts:
            await JSONResponse({"error": "invalid host header"}, 400)(scope, receive, send)
            return
        await self.app(scope, receive, send)


class SameOriginWrites:
    """Refuses writes a web page on another site makes through the user's browser: an Origin must name
    one of the service's own host names *and* its port (another local web server is another site)."""

    def __init__(self, app: ASGIApp, hosts: set[str], port: int) -> None:
        self.app, self.hosts, self.port = app, hosts, port

    def _allowed(self, origin: str) -> bool:
        try:
            parts = urlsplit(origin)
            port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
        except ValueError:
            return False
        return parts.hostname in self.hosts and port == self.port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            origin = Headers(scope=scope).get("origin")
            if origin and not self._allowed(origin):
                await JSONResponse({"error": "cross-site request refused"}, 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class LocalTokenGate:
    """Team access off: every request but a bare ``/health`` carries the local token (``local_token.py``);
    ``/files`` also takes the read-only file token derived from it (``?ft=``), for browser links."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app, self.token, self.file_token = app, token, file_token(token)

    def _admits(self, scope: Scope) -> bool:
        if same(bearer(Headers(scope=scope)), self.token):
            return True
        if scope["path"] in FILE_TOKEN_PATHS:
            given = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("ft", [None])[-1]
            return same(given, self.file_token)
        return False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._admits(scope):
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/health":  # that a kb service is here, nothing about this machine
            response = JSONResponse({"ok": True, "auth": False, "local_token": True})
        else:
            message = (
                f"this service wants its local token (the file {TOKEN_FILE} in its data folder, readable "
                "only by the account that started it): run kb as that account"
            )
            response = JSONResponse({"error": message}, 401, headers={"WWW-Authenticate": "Bearer"})
        await response(scope, receive, send)


__all__ = ["LocalTokenGate", "LoopbackHosts", "SameOriginWrites", "bearer", "host_name"]
