"""Search: a query, its options and filters; the hits as cards with the query's terms marked."""

from __future__ import annotations

import functools

import streamlit as st

from app.client import ServiceError, connect, failed, settings
from app.render import (
    UPLOAD_SCOPE,
    card_title,
    display_name,
    escape_md,
    heading_trail,
    highlight,
    parse_exts,
    score_line,
)
from kb.contract import DOCUMENT_KINDS as KINDS
from kb.contract import MAX_K
from kb.service.client import KbClient

DEFAULT_K = 10
NAMES_TTL_S = 30  # how long the uploads' original names are kept between searches


@st.cache_data(ttl=NAMES_TTL_S, show_spinner=False)
def original_names(base_url: str, token: str | None) -> dict[str, str]:
    """source → the name an upload had on the user's disk (hits carry only the stored name)."""
    docs = KbClient(base_url, token=token).documents()
    return {d["source"]: d["original_name"] for d in docs if d.get("original_name")}


st.title("Search")
c = connect()
if c is None:
    st.stop()

query = st.text_input("Query", key="search_query", placeholder="Ask in English or 中文 … (Enter to search)")
opts = st.columns([1, 1, 1, 1], vertical_alignment="bottom")
k = opts[0].number_input("Results", min_value=1, max_value=MAX_K, value=DEFAULT_K, key="search_k")
hybrid = opts[1].toggle(
    "Hybrid",
    value=settings().hybrid,
    key="search_hybrid",
    help="Fuse keyword (CJK-aware) matching with the meaning vectors.",
)
rerank = opts[2].toggle(
    "Rerank",
    value=False,
    key="search_rerank",
    help="Reorder the best candidates with the reranker model (slower; loads it once).",
)
with opts[3].popover("Filters", icon=":material/filter_list:", key="search_filters"):
    prefix = st.text_input("Path prefix", key="search_prefix", placeholder="docs/handbook/")
    kinds = st.multiselect("Kinds", KINDS, key="search_kinds")
    exts = st.text_input("Extensions", key="search_exts", placeholder="pdf, md")
    try:
        source_names = [s["name"] for s in c.sources() if s["kind"] == "folder" or s["files"]]
    except ServiceError:
        source_names = []
    sources = st.multiselect("Sources", source_names, key="search_sources", placeholder="every source")

if not query.strip():
    st.caption("Type a question or a few words; results show the file, the page or lines, and the passage.")
    st.stop()

with st.spinner("Loading the reranker and searching …" if rerank else "Searching …"):
    try:
        result = c.search(
            query,
            k=int(k),
            rerank=rerank,
            hybrid=hybrid,
            prefix=prefix.strip() or None,
            kinds=tuple(kinds),
            exts=parse_exts(exts),
            sources=tuple(sources),
        )
    except ServiceError as err:
        failed(err, "search")
        st.stop()

hits = result["hits"]
names: dict[str, str] = {}
if any(h["source"].startswith(UPLOAD_SCOPE) for h in hits):
    try:
        names = original_names(c.base_url, c.token)
        if any(h["source"].startswith(UPLOAD_SCOPE) and h["source"] not in names for h in hits):
            original_names.clear()  # uploaded since the names were read
            names = original_names(c.base_url, c.token)
    except ServiceError:
        pass  # the stored names will do
timing = " · ".join(f"{name} {ms:.0f} ms" for name, ms in result.get("timings_ms", {}).items())
st.caption(f"{len(hits)} results" + (f" — {timing}" if timing else ""))
if not hits:
    st.info("Nothing matches. Try other words, turn hybrid on, or loosen the filters.")

for hit in hits:
    with st.container(border=True, key=f"hit_{hit['rank']}"):
        name = display_name(hit["source"], names.get(hit["source"]))
        st.markdown(card_title(hit, name, c.file_url(hit["source"], hit.get("page"))))
        about = (heading_trail(hit), hit["source"], hit.get("kind") or "", score_line(hit))
        st.caption(escape_md(" · ".join(x for x in about if x)))
        st.download_button(
            "Download",
            data=functools.partial(c.fetch_file, hit["source"]),
            file_name=name,
            key=f"hit_download_{hit['rank']}",
            on_click="ignore",
            type="tertiary",
            icon=":material/download:",
        )
        short, whole = highlight(hit["text"], query), highlight(hit["text"], query, limit=None)
        st.markdown(short)
        if short != whole:
            with st.expander("Whole passage", key=f"hit_full_{hit['rank']}"):
                st.markdown(whole)
