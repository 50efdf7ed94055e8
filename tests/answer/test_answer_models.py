"""Answers generated for real: SmolLM2-135M-Instruct and a tiny random Qwen3 chat GGUF through
llama-cpp-python, over a MiniLM index in the embedded store, in this process (`kb ask` without a
service)."""

from __future__ import annotations

import pytest

from kb.answer.citations import drop_unknown
from kb.answer.generate import LocalGenerator, make_generator
from kb.answer.grounding import numbers_in
from kb.answer.passages import pack
from kb.answer.prompt import NO_ANSWER, build_messages
from kb.cli.backend import LocalBackend, SyncRequest
from kb.cli.common import CommandError
from kb.cli.main import main as kb_main
from kb.settings import Settings
from tests.helpers.answers import KETTLE, qwen3_chat_gguf, smollm2_gguf, write_answer_corpus
from tests.helpers.minilm import build_minilm_gguf
from tests.service.test_service import free_port

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

KETTLE_QUESTION = "How long does the kettle take to boil a litre of water?"
ENV = {
    "KB_N_CTX": "512",
    "KB_N_BATCH": "512",
    "KB_N_UBATCH": "512",
    "KB_CHUNK_TOKENS": "128",
    "KB_CHUNK_OVERLAP": "16",
    "KB_PARSE_WORKERS": "1",
    "KB_LLM_CONTEXT": "2048",
    "KB_ANSWER_MAX_TOKENS": "32",
    "KB_ANSWER_PASSAGES": "3",
}


@pytest.fixture(scope="module")
def indexed(tmp_path_factory):
    """A MiniLM index of the answer corpus, and the environment `kb` runs under (no service)."""
    home = tmp_path_factory.mktemp("answers")
    corpus = write_answer_corpus(home / "docs")
    env = {
        **ENV,
        "KB_EMBED_MODEL": str(build_minilm_gguf()),
        "KB_DATA_DIR": str(home / "data"),
        "KB_SERVICE_PORT": str(free_port()),  # no service there: everything in this process
        "KB_LLM_MODEL": str(smollm2_gguf()),
    }
    mp = pytest.MonkeyPatch()
    for k, v in env.items():
        mp.setenv(k, v)
    backend = LocalBackend(Settings(_env_file=None))
    backend.ingest(SyncRequest(root=corpus.root), on_progress=lambda p: None)
    backend.close()  # the embedded store admits one owner: each test opens its own
    yield corpus
    mp.undo()


@pytest.fixture
def backend(indexed):
    local = LocalBackend(Settings(_env_file=None))
    yield local
    local.close()


def events_of(backend, question: str) -> list[dict]:
    return list(backend.ask(question, None, False))


def test_smollm2_answers_from_the_passages_with_checked_citations(backend):
    events = events_of(backend, KETTLE_QUESTION)
    kinds = [e["event"] for e in events]
    assert kinds[0] == "passages" and kinds[-1] == "answer" and set(kinds[1:-1]) == {"token"}, kinds
    passages, answer = events[0]["passages"], events[-1]
    assert passages[0]["source"] == "docs/kitchen/kettle.md" and passages[0]["number"] == 1
    streamed = "".join(e["text"] for e in events[1:-1])
    # the stream is the answer, in order: the checked text is the streamed one, unknown citations removed
    assert drop_unknown(streamed.strip(), list(range(1, len(passages) + 1)))[0] == answer["draft"]
    # the check is consistent with what the model wrote: a number is flagged iff no cited passage has it
    by_number = {p["number"]: p for p in passages}
    for s in answer["grounding"]["sentences"]:
        pool = [by_number[n]["text"] for n in (s["citations"] or list(by_number))]
        for claim in s["unsupported"]:
            if claim.isdigit():
                assert not any(claim in numbers_in(t) for t in pool), (claim, s)
    for c in answer["citations"]:  # every mapped citation names the file and place of its passage
        p = by_number[c["number"]]
        assert (c["source"], c["line_start"], c["page"]) == (p["source"], p["line_start"], p["page"])
    assert answer["where"] == "this machine" and answer["timings"]["first_token_ms"] is not None


def test_nothing_relevant_says_so_without_the_model(backend):
    events = events_of(backend, "What is the capital of France?")
    assert [e["event"] for e in events] == ["passages", "answer"]
    answer = events[-1]
    assert answer["no_answer"] and answer["text"] == NO_ANSWER["en"]
    assert answer["best_score"] < Settings(_env_file=None).answer_min_score
    assert "timings" not in answer  # no generation happened


def test_kb_ask_prints_the_streamed_answer_and_its_sources(indexed, capsys):
    assert kb_main(["ask", KETTLE_QUESTION]) == 0
    out = capsys.readouterr().out
    assert "Sources:" in out or "Not found in the passages" in out or "withheld" in out
    assert kb_main(["ask", "What is the capital of France?"]) == 0
    assert NO_ANSWER["en"] in capsys.readouterr().out


def test_answers_off_say_how_to_turn_them_on(indexed, monkeypatch, capsys):
    monkeypatch.delenv("KB_LLM_MODEL")
    assert make_generator(Settings(_env_file=None)) is None
    assert kb_main(["ask", KETTLE_QUESTION]) == 1
    assert "KB_LLM_MODEL" in capsys.readouterr().err
    backend = LocalBackend(Settings(_env_file=None))
    with pytest.raises(CommandError, match="KB_LLM_URL"):
        list(backend.ask(KETTLE_QUESTION, None, False))
    backend.close()


def test_closing_the_stream_stops_generation_and_frees_the_model():
    gen = LocalGenerator(smollm2_gguf(), context=2048, gpu=False)
    try:
        passages = pack(_hits(), 1500, gen.count_tokens)
        messages = build_messages(KETTLE_QUESTION, passages)
        stream = gen.stream(messages, max_tokens=200)
        first = next(stream)
        assert first
        stream.close()  # a client gone: the completion is closed and the model is free again
        assert gen._lock.acquire(timeout=1)
        gen._lock.release()
        again = list(gen.stream(messages, max_tokens=4))
        assert 1 <= len(again) <= 4
    finally:
        gen.close()


def _hits():
    from kb.contract import SearchHit

    return [SearchHit(rank=1, id="k", score=0.9, source="kitchen/kettle.md", kind="markdown", text=KETTLE)]


def test_qwen3_chat_template_renders_the_passages_and_turns_thinking_off():
    gen = LocalGenerator(qwen3_chat_gguf(), context=1024, gpu=False, no_think=True)
    try:
        passages = pack(_hits(), 500, gen.count_tokens)
        prompt = gen.render(build_messages(KETTLE_QUESTION, passages))
        assert prompt.startswith("<|im_start|>system\nYou answer questions using only")
        assert "<|im_start|>user\nPassages:\n\n[1] (kitchen/kettle.md)\n" + KETTLE in prompt
        assert prompt.count("[1] (") == 1 and "[2] (" not in prompt
        assert prompt.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
        # random weights echo the prompt's last token (blank lines here, which an answer drops): a
        # short user turn shows the stream itself, bounded by max_tokens and the same each time (greedy)
        hello = [{"role": "user", "content": "hi"}]
        pieces = list(gen.stream(hello, max_tokens=6))
        assert 1 <= len(pieces) <= 6 and "".join(pieces).strip()
        assert pieces == list(gen.stream(hello, max_tokens=6))
        assert gen.count_tokens(prompt) + 40 <= gen.context
    finally:
        gen.close()
