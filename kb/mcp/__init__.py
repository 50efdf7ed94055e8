"""kb for agents: an MCP server (the official ``mcp`` SDK) with search, get, multi_get, sources and
status tools, over stdio (`kb mcp`) and inside `kb serve` at ``/mcp`` (streamable HTTP)."""
