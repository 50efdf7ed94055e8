"""The three pages. Thin: widgets call the service client and render what it returns."""

from __future__ import annotations

import time

import streamlit as st

from app.render import display_name, escape_md, highlight, location, score_line
from ingest.client import KbClient, ServiceError
from ingest.settings import Settings

KINDS = ["pdf", "markdown", "code", "text"]
POLL_S = 1.0


def settings() -> Settings:
    return Settings()  # cheap; read on every run so a changed environment is seen


@st.cache_resource
def client(url: str) -> KbClient:
    return KbClient(url)


def service() -> KbClient | None:
    url = settings().service_base_url
    c = client(url)
    try:
        c.health(timeout=2)
    except (ServiceError, OSError):
        st.error(f"The kb service is not reachable at {url}. Start it with `kb serve` (or `make run`).")
        return None
    return c


def search_page() -> None:
    st.title("Search")
    c = service()
    if c is None:
        return
    query = st.text_input("Query", key="search_query", placeholder="Ask in English or 中文 …")
    cols = st.columns(4)
    k = cols[0].number_input("Results", 1, 50, 10, key="search_k")
    hybrid = cols[1].toggle("Hybrid (lexical + semantic)", value=settings().hybrid, key="search_hybrid")
    rerank = cols[2].toggle("Rerank", value=False, key="search_rerank")
    with cols[3].popover("Filters"):
        prefix = st.text_input("Path prefix", key="search_prefix")
        kinds = st.multiselect("Kinds", KINDS, key="search_kinds")
        exts = st.text_input("Extensions (comma-separated)", key="search_exts")
    if not query.strip():
        return
    with st.spinner("Searching …"):
        try:
            result = c.search(query, k=int(k), rerank=rerank, hybrid=hybrid, prefix=prefix or None,
                              kinds=tuple(kinds), exts=tuple(e.strip() for e in exts.split(",") if e.strip()))  # fmt: skip
        except ServiceError as err:
            st.error(str(err))
            return
    hits = result["hits"]
    timing = " · ".join(f"{k} {v:.0f} ms" for k, v in result.get("timings_ms", {}).items())
    st.caption(f"{len(hits)} results" + (f" — {timing}" if timing else ""))
    for hit in hits:
        with st.container(border=True, key=f"hit_{hit['rank']}"):
            name = display_name(hit["source"])
            st.markdown(f"**{hit['rank']}. [{escape_md(name)}]({c.file_url(hit['source'], hit.get('page'))})** "
                        f"— {escape_md(location(hit))}")  # fmt: skip
            st.caption(f"{hit['source']} · {score_line(hit)}")
            st.markdown(highlight(hit["text"], query))


def library_page() -> None:
    st.title("Library")
    c = service()
    if c is None:
        return
    left, right = st.columns(2)
    with left:
        files = st.file_uploader("Upload documents", accept_multiple_files=True, key="upload_files")
        if st.button("Upload and index", key="upload_go", disabled=not files):
            bar = st.progress(0.0, text="uploading …")
            try:
                answer = c.upload([(f.name, f.getvalue()) for f in files])
            except ServiceError as err:
                st.error(str(err))
            else:
                for r in answer.get("rejected", []):
                    st.warning(f"{r.get('name')}: {r.get('reason')}")
                _follow(c, answer["job"]["id"], bar)
    with right:
        folder = st.text_input("Index a folder on the server", key="folder_path", placeholder="/srv/docs")
        if st.button("Index folder", key="folder_go", disabled=not folder):
            try:
                job = c.submit_folder(folder, origin="ui")
            except ServiceError as err:
                st.error(str(err))
            else:
                _follow(c, job["id"], st.progress(0.0, text="queued"))
    st.subheader("Jobs")
    _jobs(c)
    st.subheader("Documents")
    docs = c.documents()
    if not docs:
        st.info("Nothing indexed yet.")
    for d in docs:
        cols = st.columns([6, 1, 1, 1])
        cols[0].markdown(f"`{d['source']}`")
        cols[1].write(d.get("kind", ""))
        cols[2].write(f"{d.get('chunks', 0)} chunks")
        if cols[3].button("Delete", key=f"delete_{d['source']}"):
            c.delete_document(d["source"])
            st.rerun()


def _follow(c: KbClient, job_id: str, bar) -> None:
    """Show a job's progress until it ends (the page stays responsive between polls)."""
    while True:
        job = c.job(job_id)
        p = job.get("progress") or {}
        total = p.get("files_total") or 0
        frac = (p.get("files_done", 0) / total) if total else 0.0
        bar.progress(min(1.0, frac), text=f"{job['state']}: {p.get('files_done', 0)}/{total} files, "
                                          f"{p.get('chunks', 0)} chunks")  # fmt: skip
        if job["state"] in ("done", "failed"):
            break
        time.sleep(POLL_S)
    if job["state"] == "failed":
        st.error(job.get("error") or "job failed")
        return
    report = job.get("report") or {}
    st.success(f"indexed {len(report.get('indexed', []))}, updated {len(report.get('updated', []))}, "
               f"unchanged {len(report.get('unchanged', []))}, skipped {len(report.get('skipped', []))}")  # fmt: skip
    for s in report.get("skipped", []):
        st.warning(f"{s['path']}: {s['reason']}")


def _jobs(c: KbClient) -> None:
    jobs = c.jobs()
    if not jobs:
        st.caption("No jobs yet.")
        return
    for job in jobs[:20]:
        p = job.get("progress") or {}
        total = p.get("files_total") or 0
        label = (f"{job['state']} · {job.get('origin', '')} · {p.get('files_done', 0)}/{total} files · "
                 f"{p.get('chunks', 0)} chunks")  # fmt: skip
        if job["state"] == "running" and total:
            st.progress(min(1.0, p.get("files_done", 0) / total), text=label)
        else:
            st.caption(f"job {job['id']}: {label}")


def status_page() -> None:
    st.title("Status")
    c = service()
    if c is None:
        return
    s = c.status()
    cols = st.columns(4)
    cols[0].metric("Device", s.get("device", "?"))
    cols[1].metric("Dimension", s.get("dim", "?"))
    cols[2].metric("Chunks", s.get("points", s.get("collection_size", "?")))
    cols[3].metric("Model load", f"{s.get('model_load_s', 0):.1f} s")
    st.write({k: v for k, v in s.items() if k not in {"last_ingest"}})
    if s.get("last_ingest"):
        st.subheader("Last ingest")
        st.json(s["last_ingest"])
