"""Answers through an OpenAI-compatible endpoint: llama-cpp-python's own server
(``python -m llama_cpp.server``) with SmolLM2, started by the test, as ``KB_LLM_URL`` of `kb ask`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from kb.answer.citations import drop_unknown
from kb.answer.grounding import numbers_in
from kb.answer.prompt import NO_ANSWER
from kb.cli.backend import LocalBackend
from kb.cli.main import main as kb_main
from kb.settings import Settings
from tests.helpers.answers import index_corpus, smollm2_gguf
from tests.service.test_service import free_port

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

KETTLE_QUESTION = "How long does the kettle take to boil a litre of water?"
API_KEY = "sk-test-endpoint-key"
START_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def endpoint(tmp_path_factory):
    """The server's base URL (``…/v1``); it wants ``API_KEY``."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(smollm2_gguf()), "--host", "127.0.0.1",
             "--port", str(port), "--n_ctx", "2048", "--api_key", API_KEY],
            stdout=out,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            req = urllib.request.Request(url + "/models", headers={"Authorization": f"Bearer {API_KEY}"})
            try:
                with urllib.request.urlopen(req, timeout=1):
                    break
            except (urllib.error.URLError, OSError):
                assert proc.poll() is None, log.read_text()
                assert time.monotonic() < deadline, "llama_cpp.server did not start:\n" + log.read_text()
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def through_endpoint(endpoint, tmp_path_factory):
    """A MiniLM index of the answer corpus and `kb`'s environment pointing answers at the server."""
    _, env = index_corpus(tmp_path_factory.mktemp("openai"), free_port())  # no kb service: in-process
    env = {k: v for k, v in env.items() if k.startswith("KB_")}
    env.update(
        KB_LLM_URL=endpoint,
        KB_LLM_API_KEY=API_KEY,
        KB_LLM_CONTEXT="2048",
        KB_ANSWER_MAX_TOKENS="32",
        KB_ANSWER_PASSAGES="3",
    )
    with pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        yield endpoint


@pytest.mark.slow
def test_kb_ask_streams_a_checked_answer_from_the_endpoint(through_endpoint, capsys):
    backend = LocalBackend(Settings(_env_file=None))
    try:
        events = list(backend.ask(KETTLE_QUESTION, None, False))
    finally:
        backend.close()
    kinds = [e["event"] for e in events]
    assert kinds[0] == "passages" and kinds[-1] == "answer" and set(kinds[1:-1]) == {"token"}, kinds
    assert len(kinds) > 3  # the endpoint's stream arrives in pieces, not as one block
    passages, answer = events[0]["passages"], events[-1]
    assert passages[0]["source"] == "docs/kitchen/kettle.md"
    streamed = "".join(e["text"] for e in events[1:-1])
    assert drop_unknown(streamed.strip(), [p["number"] for p in passages])[0] == answer["draft"]
    assert answer["generator"] == f"default model at {through_endpoint}"
    assert answer["where"] == "this machine"  # a loopback endpoint: nothing left the machine
    # the grounding check ran on the endpoint's words: a number is flagged iff no passage it cites has it
    by_number = {p["number"]: p for p in passages}
    sentences = answer["grounding"]["sentences"]
    assert sentences and answer["grounding"]["checked"] == sum(s["supported"] is not None for s in sentences)
    for s in sentences:
        pool = [by_number[n]["text"] for n in (s["citations"] or list(by_number))]
        for claim in s["unsupported"]:
            if claim.isdigit():
                assert not any(claim in numbers_in(t) for t in pool), (claim, s)
    for c in answer["citations"]:
        p = by_number[c["number"]]
        assert (c["source"], c["line_start"], c["page"]) == (p["source"], p["line_start"], p["page"])

    assert kb_main(["ask", "--json", KETTLE_QUESTION]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["draft"] == answer["draft"]  # greedy: the same answer through the CLI
    assert printed["passages"] == passages and printed["grounding"] == answer["grounding"]


def test_nothing_relevant_never_reaches_the_endpoint_and_a_bad_key_is_reported(
    through_endpoint, monkeypatch, capsys
):
    monkeypatch.setenv("KB_LLM_API_KEY", "wrong")  # any call to the endpoint would now fail
    assert kb_main(["ask", "What is the capital of France?"]) == 0
    assert NO_ANSWER["en"] in capsys.readouterr().out
    assert kb_main(["ask", KETTLE_QUESTION]) == 1
    err = capsys.readouterr().err
    assert f"{through_endpoint} answered HTTP 401" in err
