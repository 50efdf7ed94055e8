"""The MCP tools inside `kb serve` at ``/mcp`` (streamable HTTP, stateless, JSON responses).

The route sits behind the service's own middleware, so the same token and role checks apply as to
every other endpoint; each tool call reads through the service narrowed to what its caller may see.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.types import ASGIApp

from ingest.store.base import SearchFilter, StoreError
from kb.contract import SearchHit
from kb.mcp.server import LibraryError, build_server
from kb.search.query import SearchRequest
from kb.service.access import Access
from kb.service.core import InvalidRequest, KbService, NotFound, Refused

# the service's failures an agent is told about (others are the SDK's "error executing tool")
EXPECTED = (InvalidRequest, NotFound, Refused, StoreError, ValueError)


class ServiceLibrary:
    """KbService as the tools' library, for one caller."""

    def __init__(self, kb: KbService, access: Access) -> None:
        self.kb, self.access = kb, access

    def search(self, req: SearchRequest) -> list[SearchHit]:
        req = dataclasses.replace(req, filter=self.access.narrow(req.filter or SearchFilter()))
        try:
            return self.kb.search(req).hits
        except EXPECTED as err:
            raise LibraryError(str(err)) from None

    def get(
        self, source: str, page: int | None, lines: tuple[int, int] | None, max_chars: int
    ) -> dict[str, Any]:
        if not self.access.reads(source):  # as if it did not exist
            raise LibraryError(f"no indexed document {source!r}")
        try:
            return self.kb.read_document(source, page, lines, max_chars).to_json()
        except EXPECTED as err:
            raise LibraryError(str(err)) from None

    def documents(self) -> list[dict[str, Any]]:
        return self.access.only(self.kb.documents(), "source_name")

    def status(self) -> dict[str, Any]:
        return {"where": "the service", **self.kb.status(self.access)}


def mcp_app(
    resolve: Callable[[Request], tuple[KbService, Access]],
) -> tuple[ASGIApp, Callable[[], AbstractAsyncContextManager[Any]]]:
    """The ASGI app serving ``/mcp`` and the lifespan it needs (its session manager's task group)."""

    def library_for(ctx: Context) -> ServiceLibrary:
        request = ctx.request_context.request
        if not isinstance(request, Request):
            raise LibraryError("no HTTP request behind this call")
        return ServiceLibrary(*resolve(request))

    server = build_server(library_for)
    # Host and Origin are checked by the service's middleware already (DNS rebinding, cross-site writes)
    app = server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return app, lambda: app.router.lifespan_context(app)
