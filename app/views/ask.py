"""Ask: a question answered from the documents, streamed as it is written, its citations linked to
the files, what the grounding check did not find in the passages marked."""

from __future__ import annotations

from typing import Any

import streamlit as st

from app.answer_render import (
    CURSOR,
    answer_footer,
    answer_markdown,
    cited_passages,
    marked_answer,
    passage_links,
    source_line,
    unsupported_sentences,
)
from app.client import ServiceError, connect, failed
from app.render import escape_md, highlight
from kb.contract import DOCUMENT_KINDS as KINDS
from kb.service.client import KbClient

ASK_TIMEOUT_S = 600.0  # the first answer may load the chat model
LAST_KEY = "ask_last"  # session state: the last question, its passages and its checked answer
OFF_HINT = (
    "Answers are off: this knowledge base is a search engine until the service is given a chat "
    "model. Set `KB_LLM_MODEL` to a local GGUF chat model (`kb models` lists them; "
    "`kb model pull qwen3-4b-chat` fetches one) or `KB_LLM_URL` to an OpenAI-compatible endpoint "
    "(llama-server, Ollama, vLLM), then restart `kb serve`. Search works meanwhile."
)


def passage_cards(passages: list[dict[str, Any]], question: str, links: dict[int, str], key: str) -> None:
    for p in passages:
        with st.container(border=True, key=f"{key}_{p['number']}"):
            st.markdown(source_line(p, links[p["number"]]))
            st.markdown(highlight(p["text"], question))


def show(last: dict[str, Any], links: dict[int, str]) -> None:
    """The checked answer, its sources and the passages the model read."""
    answer, passages, question = last["answer"], last["passages"], last["question"]
    if answer["no_answer"]:
        st.info(escape_md(answer["text"]), icon=":material/search_off:")
        st.caption(escape_md(answer.get("no_answer_reason") or ""))
    elif answer["withheld"]:
        st.warning(escape_md(answer["text"]), icon=":material/gpp_maybe:")
        passage_cards(passages, question, links, "ask_withheld")
        with st.expander("What the model wrote", key="ask_draft"):
            st.markdown(answer_markdown(answer["draft"], links))
    else:
        st.markdown(marked_answer(answer, links))
        if unsupported := unsupported_sentences(answer):
            st.warning(
                f"{len(unsupported)} sentence(s) in red state something its passages do not: check "
                "them against the sources.",
                icon=":material/report:",
            )
        if answer.get("removed_citations"):
            numbers = ", ".join(f"[{n}]" for n in answer["removed_citations"])
            st.caption(escape_md(f"Citations to no passage removed: {numbers}"))
        if cited := cited_passages(answer, passages):
            st.markdown("**Sources**")
            for p in cited:
                st.markdown(source_line(p, links[p["number"]]))
    if passages and not answer["withheld"]:
        with st.expander(f"Passages the model read ({len(passages)})", key="ask_passages"):
            passage_cards(passages, question, links, "ask_passage")
    st.caption(escape_md(answer_footer(answer)))


st.title("Ask")
c = connect()
if c is None:
    st.stop()

with st.form("ask_form", border=False):
    question = st.text_input(
        "Question", key="ask_question", placeholder="Ask in English or 中文 — the answer cites the documents"
    )
    opts = st.columns([1, 2, 2, 1], vertical_alignment="bottom")
    rerank = opts[0].toggle("Rerank", value=False, key="ask_rerank", help="Rerank the passages first.")
    try:
        source_names = [s["name"] for s in c.sources() if s["kind"] == "folder" or s["files"]]
    except ServiceError:
        source_names = []
    sources = opts[1].multiselect("Sources", source_names, key="ask_sources", placeholder="every source")
    kinds = opts[2].multiselect("Kinds", KINDS, key="ask_kinds", placeholder="every kind")
    asked = opts[3].form_submit_button("Ask", key="ask_go", type="primary", icon=":material/forum:")

if asked and question.strip():
    asking = KbClient(c.base_url, timeout=ASK_TIMEOUT_S, token=c.token, file_token=c.file_token)
    area = st.empty()
    passages: list[dict[str, Any]] = []
    links: dict[int, str] = {}
    pieces: list[str] = []
    st.session_state.pop(LAST_KEY, None)
    area.caption("Finding passages and writing the answer …")
    try:
        events = asking.ask(question, rerank=rerank, sources=tuple(sources), kinds=tuple(kinds))
        try:
            for event in events:
                if event["event"] == "passages":
                    passages = event["passages"]
                    links = passage_links(passages, c.file_url)
                elif event["event"] == "token":
                    pieces.append(event["text"])
                    area.markdown(answer_markdown("".join(pieces), links) + CURSOR)
                elif event["event"] == "answer":
                    st.session_state[LAST_KEY] = {"question": question, "passages": passages, "answer": event}
        finally:
            events.close()
    except ServiceError as err:
        area.empty()
        st.session_state.pop(LAST_KEY, None)
        if err.status == 503 and "KB_LLM" in str(err):
            st.info(OFF_HINT, icon=":material/power_off:")
        else:
            failed(err, "answer")
        st.stop()
    area.empty()

last = st.session_state.get(LAST_KEY)
if last is None:
    st.caption(
        "The answer is written from the passages search finds, cites them as [1], [2] linked to the "
        "files, and marks what it states that they do not hold."
    )
    st.stop()
show(last, passage_links(last["passages"], c.file_url))
