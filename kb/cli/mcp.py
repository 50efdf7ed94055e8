"""`kb mcp`: the MCP server over stdio, for agents and desktop assistants (README shows the config).

It works through the running `kb serve` when one serves this store (the store has one owner), and
in this process otherwise; stdout carries the protocol only.
"""

from __future__ import annotations

import argparse
from typing import Any

from kb.cli.backend import Backend, open_backend
from kb.cli.common import EXIT_OK, CommandError, settings_from
from kb.contract import SearchHit
from kb.search.query import SearchRequest


class BackendLibrary:
    """The CLI's backend as the MCP tools' library: its failures become the agent's error messages."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def _do(self, method: str, *args: Any) -> Any:
        from kb.mcp.server import LibraryError

        try:
            return getattr(self.backend, method)(*args)
        except CommandError as err:
            raise LibraryError(str(err)) from None

    def search(self, req: SearchRequest) -> list[SearchHit]:
        return self._do("search", req)

    def get(
        self, source: str, page: int | None, lines: tuple[int, int] | None, max_chars: int
    ) -> dict[str, Any]:
        return self._do("get", source, page, lines, max_chars)

    def documents(self) -> list[dict[str, Any]]:
        return self._do("documents")

    def status(self) -> dict[str, Any]:
        return self._do("status")


def cmd_mcp(args: argparse.Namespace) -> int:
    import anyio

    from kb.mcp.server import build_server

    backend = open_backend(settings_from(args))
    library = BackendLibrary(backend)
    try:
        anyio.run(build_server(lambda ctx: library).run_stdio_async)
    except KeyboardInterrupt:
        pass
    finally:
        backend.close()
    return EXIT_OK


def register_cli(sub) -> None:
    mcp = sub.add_parser("mcp", help="serve the MCP tools over stdio (for agents: see the README)")
    mcp.set_defaults(func=cmd_mcp)
