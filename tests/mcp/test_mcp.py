"""The MCP server driven by the SDK's own client: `kb mcp` over stdio (in-process library, then
through a running `kb serve`), and the service's ``/mcp`` over streamable HTTP with team access on."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.helpers.answers import CODE, CODE_FILE, PDF_FILE, index_corpus
from tests.service.test_service import free_port

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

TOOLS = {"search", "get", "multi_get", "sources", "status"}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    home = tmp_path_factory.mktemp("mcp")
    corpus, env = index_corpus(home, free_port())
    return home, corpus, env


def payload(result) -> Any:
    assert not result.is_error, result.content[0].text
    return json.loads(result.content[0].text)


async def exercise(session: ClientSession) -> dict[str, Any]:
    """Every tool once, good and bad arguments; what came back, for the assertions."""
    await session.initialize()
    tools = (await session.list_tools()).tools
    out: dict[str, Any] = {"tools": {t.name: t for t in tools}}
    out["search"] = payload(
        await session.call_tool("search", {"query": "how long does the kettle take to boil"})
    )
    out["page"] = payload(await session.call_tool("get", {"source": f"docs/{PDF_FILE}", "page": 2}))
    out["lines"] = payload(
        await session.call_tool("get", {"source": f"docs/{CODE_FILE}", "start_line": 4, "end_line": 6})
    )
    out["multi"] = payload(
        await session.call_tool(
            "multi_get",
            {
                "citations": [{"source": f"docs/{PDF_FILE}", "page": 5}, {"source": "nowhere.md"}],
                "max_chars": 5000,
            },
        )
    )
    out["sources"] = payload(await session.call_tool("sources", {}))
    out["status"] = payload(await session.call_tool("status", {}))
    out["bad"] = [
        await session.call_tool("get", {"source": f"docs/{PDF_FILE}", "page": 0}),
        await session.call_tool("search", {"query": "kettle", "k": "many"}),
        await session.call_tool("get", {"source": "nowhere.md"}),
        await session.call_tool("search", {"query": "kettle", "kinds": ["video"]}),
    ]
    return out


def check(out: dict[str, Any]) -> None:
    assert set(out["tools"]) == TOOLS
    assert all(len(t.description or "") > 60 for t in out["tools"].values())
    assert out["tools"]["search"].annotations.read_only_hint
    top = out["search"]["hits"][0]
    assert top["source"] == "docs/kitchen/kettle.md" and top["citation"].startswith("docs/kitchen/kettle.md")
    assert "beta narwhal" in out["page"]["text"] and out["page"]["page"] == 2 and out["page"]["pages"]
    assert out["lines"]["text"] == "\n".join(CODE.split("\n")[3:6])
    assert (out["lines"]["line_start"], out["lines"]["line_end"]) == (4, 6)
    first, missing = out["multi"]["documents"]
    assert "gamma okapi" in first["text"] and "nowhere.md" in missing["error"]
    assert out["sources"]["by_source"] == {"docs": 5} and out["sources"]["total"] == 5
    assert out["status"]["points"] > 0
    for result in out["bad"]:  # an MCP error the agent reads, and the server still answers
        assert result.is_error and result.content[0].text
    assert "nowhere.md" in out["bad"][2].content[0].text


def run_stdio(home: Path, env: dict[str, str]) -> dict[str, Any]:
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "kb.cli.main", "mcp"], env=env, cwd=home
    )

    async def go() -> dict[str, Any]:
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            return await exercise(session)

    return anyio.run(go)


def test_kb_mcp_over_stdio_in_process(indexed):
    home, _, env = indexed
    out = run_stdio(home, env)
    check(out)
    assert out["status"]["where"] == "this process"
