"""The MCP tools over a ``Library``: what an agent may ask of the index, bounded.

The same server runs over stdio (`kb mcp`: the library is the CLI's backend, in this process or
through the running service) and inside the service at ``/mcp`` (the library is the service itself,
narrowed to what the caller may read). ``library_for(ctx)`` picks the library of each call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Protocol

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from ingest.store.base import SearchFilter
from kb.contract import DOCUMENT_KINDS, MAX_K, SearchHit, split_source
from kb.search.query import SearchRequest

SERVER_NAME = "kb"
MAX_GET_CHARS = 20_000  # one get returns at most this much text
DEFAULT_GET_CHARS = 8_000
MAX_MULTI_GET = 10  # citations one multi_get reads
MAX_MULTI_GET_CHARS = 40_000  # all of them together
MAX_SOURCES = 500  # documents one sources call lists
INSTRUCTIONS = (
    "kb is a private knowledge base of the team's PDFs, Markdown, code and text. Use `search` to find "
    "passages (each hit has a citation: source, page or lines); `get` to read more around a hit (a PDF "
    "page, a line range of a file, or a whole document, bounded); `multi_get` to read several citations "
    "at once; `sources` to see what is indexed; `status` to check the index and the models."
)
READ_ONLY = ToolAnnotations.model_validate(
    {"readOnlyHint": True, "destructiveHint": False, "idempotentHint": True, "openWorldHint": False}
)


class LibraryError(Exception):
    """A request the library refuses or cannot serve; the agent reads the message."""


class Library(Protocol):
    def search(self, req: SearchRequest) -> list[SearchHit]: ...

    def get(
        self, source: str, page: int | None, lines: tuple[int, int] | None, max_chars: int
    ) -> dict[str, Any]: ...

    def documents(self) -> list[dict[str, Any]]: ...

    def status(self) -> dict[str, Any]: ...


class Citation(BaseModel):
    source: str = Field(description="the document's path as search returns it")
    page: int | None = Field(None, ge=1, description="a PDF page (1-based)")
    start_line: int | None = Field(None, ge=1, description="first line of a range (1-based)")
    end_line: int | None = Field(None, ge=1, description="last line of a range (inclusive)")


def _lines(start: int | None, end: int | None) -> tuple[int, int] | None:
    if start is None and end is None:
        return None
    start = start or 1
    end = end or start
    if end < start:
        raise ToolError(f"end_line ({end}) is before start_line ({start})")
    return start, end


def hit_json(h: SearchHit) -> dict[str, Any]:
    """A hit for an agent: its citation first, then the text."""
    out = {"citation": f"{h.source}" + (f", {h.locator}" if h.locator else ""), **h.to_json()}
    out.pop("id", None)
    return out


def documents_per_source(documents: list[dict[str, Any]]) -> dict[str, int]:
    """Documents per source (a document's key is ``name/path``; uploads are the source ``uploads``)."""
    counts: dict[str, int] = {}
    for d in documents:
        name = split_source(d["source"])[0]
        counts[name] = counts.get(name, 0) + 1
    return dict(sorted(counts.items()))


def build_server(library_for: Callable[[Context], Library]) -> MCPServer:
    """The MCP server with kb's tools; ``library_for`` gives the library a call works on."""
    server = MCPServer(SERVER_NAME, instructions=INSTRUCTIONS, log_level="WARNING")

    async def call(ctx: Context, method: str, *args: Any) -> Any:
        library = library_for(ctx)
        try:
            return await anyio.to_thread.run_sync(lambda: getattr(library, method)(*args))
        except LibraryError as err:
            raise ToolError(str(err)) from None

    @server.tool(annotations=READ_ONLY)
    async def search(
        query: Annotated[str, Field(min_length=1, description="what to look for, in any language")],
        ctx: Context,
        k: Annotated[int, Field(ge=1, le=MAX_K, description="how many hits")] = 10,
        prefix: Annotated[
            str | None, Field(description="only documents under this folder or path prefix")
        ] = None,
        glob: Annotated[str | None, Field(description="only documents whose path matches (fnmatch)")] = None,
        kinds: Annotated[
            list[str] | None, Field(description=f"only these kinds: {', '.join(DOCUMENT_KINDS)}")
        ] = None,
        exts: Annotated[
            list[str] | None, Field(description="only these file extensions, e.g. ['py']")
        ] = None,
        rerank: Annotated[bool, Field(description="rerank with the cross-encoder (better, slower)")] = False,
        hybrid: Annotated[
            bool, Field(description="fuse keyword matching with meaning (exact names, codes)")
        ] = True,
    ) -> dict[str, Any]:
        """Search the knowledge base by meaning (and keywords with hybrid). Returns hits, best first,
        each with a citation (source and page or lines) and the passage text. Use it first; then
        `get` to read around a hit."""
        bad = sorted(set(kinds or ()) - set(DOCUMENT_KINDS))
        if bad:
            raise ToolError(f"unknown kinds {bad}; use {list(DOCUMENT_KINDS)}")
        flt = SearchFilter(prefix, glob, tuple(kinds or ()), tuple(exts or ()))
        hits = await call(ctx, "search", SearchRequest(query, k=k, rerank=rerank, hybrid=hybrid, filter=flt))
        return {"hits": [hit_json(h) for h in hits]}

    @server.tool(annotations=READ_ONLY)
    async def get(
        source: Annotated[str, Field(min_length=1, description="the document's path as search returns it")],
        ctx: Context,
        page: Annotated[int | None, Field(ge=1, description="one PDF page (1-based)")] = None,
        start_line: Annotated[int | None, Field(ge=1, description="first line to read (1-based)")] = None,
        end_line: Annotated[int | None, Field(ge=1, description="last line to read (inclusive)")] = None,
        max_chars: Annotated[int, Field(ge=100, le=MAX_GET_CHARS, description="most text to return")] = (
            DEFAULT_GET_CHARS
        ),
    ) -> dict[str, Any]:
        """Read a document as indexed: one page of a PDF (`page`), a line range of a code, text or
        Markdown file (`start_line`, `end_line`), or from its start. The text is cut at `max_chars`
        (`truncated` says so); `pages` lists a PDF's pages with text."""
        return await call(ctx, "get", source, page, _lines(start_line, end_line), max_chars)

    @server.tool(annotations=READ_ONLY)
    async def multi_get(
        citations: Annotated[
            list[Citation],
            Field(min_length=1, max_length=MAX_MULTI_GET, description="the passages to read"),
        ],
        ctx: Context,
        max_chars: Annotated[
            int, Field(ge=100, le=MAX_MULTI_GET_CHARS, description="most text over all of them")
        ] = 20_000,
    ) -> dict[str, Any]:
        """Read several citations at once (a page or line range each, or a whole document), sharing
        `max_chars` between them in order. A citation that cannot be read gets its error in place."""
        out, left = [], max_chars
        for c in citations:
            if left <= 0:
                out.append({"source": c.source, "error": "max_chars used up by the citations before"})
                continue
            try:
                doc = await call(ctx, "get", c.source, c.page, _lines(c.start_line, c.end_line), left)
            except ToolError as err:
                out.append({"source": c.source, "error": str(err)})
                continue
            left -= len(doc["text"])
            out.append(doc)
        return {"documents": out}

    @server.tool(annotations=READ_ONLY)
    async def sources(ctx: Context) -> dict[str, Any]:
        """What is indexed: documents per source (a named folder, or `uploads`), and the documents
        (`source/path`, kind, chunks; the first 500). Use a source's name as `prefix` in `search`."""
        documents = await call(ctx, "documents")
        listed = [
            {k: d.get(k) for k in ("source", "kind", "chunks", "complete")} for d in documents[:MAX_SOURCES]
        ]
        return {
            "by_source": documents_per_source(documents),
            "documents": listed,
            "total": len(documents),
            "truncated": len(documents) > MAX_SOURCES,
        }

    @server.tool(annotations=READ_ONLY)
    async def status(ctx: Context) -> dict[str, Any]:
        """The index and models: embedding model, points, documents, and whether answers are on and
        where they are generated."""
        return await call(ctx, "status")

    return server
