"""`kb serve` with team access on, answers from SmolLM2 and the MCP tools at /mcp: a real service in
its own process (MiniLM index), the SDK's streamable-HTTP client, `kb ask` and `kb mcp` through it."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request

import anyio
import httpx2
import pytest
from mcp import ClientSession, StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client

from kb.service.auth import Accounts
from kb.service.client import KbClient, ServiceError
from tests.helpers.answers import index_corpus, smollm2_gguf
from tests.helpers.minilm import build_minilm_gguf
from tests.mcp.test_mcp import check, exercise
from tests.service.test_service import Service, free_port

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

KETTLE_QUESTION = "How long does the kettle take to boil a litre of water?"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    home = tmp_path_factory.mktemp("served")
    _, env = index_corpus(home, free_port())
    accounts = Accounts(home / "data" / "accounts.json")
    reader = accounts.create_token("agent", "reader")
    extra = {
        k: v for k, v in env.items() if k.startswith("KB_") and k not in {"KB_SERVICE_PORT", "KB_DATA_DIR"}
    }
    svc = Service(
        build_minilm_gguf(),
        home,
        **extra,
        KB_AUTH="on",
        KB_ANSWER_CONCURRENCY="1",
        KB_BUSY_WAITING="0",
        KB_LLM_MODEL=str(smollm2_gguf()),
        KB_LLM_CONTEXT="2048",
        KB_ANSWER_MAX_TOKENS="32",
        KB_ANSWER_PASSAGES="3",
    ).start()
    svc.env["KB_API_TOKEN"] = reader  # what `kb ask` and `kb mcp` send to it
    yield svc, reader
    svc.stop()


def test_mcp_over_http_behind_the_token(served):
    svc, reader = served
    url = f"http://127.0.0.1:{svc.port}/mcp"

    async def go():
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {reader}"}, timeout=60) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            return await exercise(session)

    out = anyio.run(go)
    check(out)
    assert out["status"]["where"] == "the service"
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    for token in (None, "forged"):
        req = urllib.request.Request(
            url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        if token:
            req.add_header("Authorization", f"Bearer {token}")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        err.value.close()
        assert err.value.code == 401


def test_kb_mcp_over_stdio_talks_to_the_running_service(served):
    svc, _ = served
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "kb.cli.main", "mcp"], env=svc.env, cwd=svc.home
    )

    async def go():
        async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            status = await session.call_tool("status", {})
            return json.loads(status.content[0].text)

    status = anyio.run(go)
    assert status["where"].startswith("the service at") and status["points"] > 0


def test_ask_streams_server_sent_events_and_checks_the_answer(served):
    svc, reader = served
    events = list(KbClient(svc.client.base_url, timeout=120, token=reader).ask(KETTLE_QUESTION))
    kinds = [e["event"] for e in events]
    assert kinds[0] == "passages" and kinds[-1] == "answer" and set(kinds[1:-1]) <= {"token"}
    assert events[0]["passages"][0]["source"] == "docs/kitchen/kettle.md"
    answer = events[-1]
    assert "grounding" in answer and answer["where"] == "this machine"
    with pytest.raises(ServiceError) as err:  # no token: refused like every other endpoint
        list(KbClient(svc.client.base_url).ask(KETTLE_QUESTION))
    assert err.value.status == 401
    status = KbClient(svc.client.base_url, token=reader).status()["answers"]
    assert status["on"] and status["loaded"] and status["answered"] >= 1


def test_a_client_that_leaves_stops_the_generation(served):
    svc, reader = served
    client = KbClient(svc.client.base_url, timeout=120, token=reader)
    before = client.status()["answers"]
    events = client.ask(KETTLE_QUESTION)
    for event in events:
        if event["event"] == "token":
            break
    events.close()  # the connection closes mid-answer
    deadline = time.monotonic() + 30
    while (answers := client.status()["answers"])["streaming"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert answers["streaming"] == 0
    time.sleep(1)
    after = client.status()["answers"]
    assert after["answered"] == before["answered"]  # the answer was never finished
    assert 1 <= after["pieces"] - before["pieces"] < 32  # stopped well before max_tokens


def test_ask_cli_through_the_service(served):
    svc, _ = served
    out = svc.cli("ask", "What is the capital of France?")
    assert out.returncode == 0, out.stderr
    assert "The documents found do not contain the answer" in out.stdout


def test_an_answer_past_its_slot_gets_429_and_the_slot_frees(served):
    svc, reader = served
    client = KbClient(svc.client.base_url, timeout=120, token=reader)
    deadline = time.monotonic() + 30  # a stream the previous test left may still be closing
    while client.status()["answers"]["streaming"] and time.monotonic() < deadline:
        time.sleep(0.2)
    first = client.ask(KETTLE_QUESTION)
    assert next(first)["event"] == "passages"  # admitted: the one slot is held while it streams
    try:
        with pytest.raises(ServiceError) as err:
            next(client.ask(KETTLE_QUESTION))
        assert err.value.status == 429
    finally:
        first.close()
    deadline = time.monotonic() + 30
    while True:  # once the first has gone, a new question is answered again
        try:
            events = list(client.ask("What is the capital of France?"))
            break
        except ServiceError as again:
            assert again.status == 429 and time.monotonic() < deadline, again
            time.sleep(0.5)
    assert events[-1]["event"] == "answer"
