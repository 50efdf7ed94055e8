"""Library: upload files or add a folder on the server as a source, follow (and cancel) every job live,
list the sources and, inside each, its documents; remove a source or delete documents."""

from __future__ import annotations

import time

import streamlit as st

from app.client import ServiceError, can, connect, failed, role
from app.render import (
    ACTIVE_STATES,
    PAGE_COLUMNS,
    document_rows,
    documents_by_source,
    escape_md,
    job_fraction,
    job_label,
    poll_wait,
    report_summary,
    source_label,
    upload_rows,
)
from kb.service.client import KbClient

POLL_S = 1.0  # how often the jobs panel asks the service while a job runs and moves
POLL_MAX_S = 8.0  # ... backing off to this while a running job does not move
IDLE_POLL_S = 30.0  # how often it looks for jobs started elsewhere while none runs
POLL = "jobs_poll"  # session state: the last listing, when to ask again, the wait, what moved
RECENT_JOBS = 10  # finished jobs listed under the running ones
BATCH = "upload_batch"  # session state: the last upload of this browser session and its job
ACTIVE = "active_job_ids"  # session state: the jobs running at the previous poll
DOC_COLUMNS = ("name", "kind", "chunks", *PAGE_COLUMNS, "from", "complete", "source")
FULL_RUN = "library_full_run"  # session state: True while the whole page runs, False in the panel's own runs
PAGE_HELP = {  # PDFs only; blank for other files
    "pages": "Pages in the PDF",
    "text layer": "Pages read from the PDF's own text layer",
    "fallback": "Pages pypdf could not read, read by the fallback extractor (PDFium)",
    "OCR": "Pages recognised from the page image (scans, fonts without a character map)",
    "unreadable": "Pages nothing could read: not indexed",
}

st.title("Library")
c = connect()
if c is None:
    st.stop()


def upload_form(c: KbClient) -> None:
    with st.form("upload_form", clear_on_submit=True, border=False):
        files = st.file_uploader(
            "Upload documents (PDF, Markdown, code, text)", accept_multiple_files=True, key="upload_files"
        )
        send = st.form_submit_button("Upload and index", icon=":material/upload:", key="upload_go")
    if send and not files:
        st.warning("Choose files first (or wait until they have finished uploading).")
    if not (send and files):
        return
    with st.spinner(f"Sending {len(files)} file{'s' if len(files) > 1 else ''} to the service …"):
        try:
            answer = c.upload([(f.name, f.getvalue()) for f in files])
        except ServiceError as err:
            failed(err, "upload")
            return
    st.session_state[BATCH] = {
        "job": answer["job"]["id"],
        "files": answer["files"],
        "rejected": answer.get("rejected", []),
        "seen": [],
    }


def folder_form(c: KbClient) -> None:
    with st.form("folder_form", border=False):
        folder = st.text_input("Add a folder on the server", key="folder_path", placeholder="/srv/docs")
        name = st.text_input("Source name", key="folder_name", placeholder="default: the folder's name")
        rebuild = can("admin") and st.checkbox("Rebuild the collection from scratch", key="folder_rebuild")
        go = st.form_submit_button("Index folder", icon=":material/folder_open:", key="folder_go")
    if go and folder.strip():
        try:
            job = c.submit_folder(folder.strip(), rebuild=rebuild, origin="ui", name=name.strip() or None)
        except ServiceError as err:
            failed(err, "start indexing")
            return
        st.toast(f"Queued {escape_md(job['path'])}", icon=":material/schedule:")


def poll(c: KbClient, now: bool = False) -> list[dict]:
    """The jobs listing (brief: no reports), asked of the service when due (or ``now``), else the last
    one: every second while a job moves, backing off while it does not (``poll_wait``)."""
    last = st.session_state.get(POLL)
    if last and not now and time.monotonic() < last["next"]:
        return last["jobs"]
    jobs = c.jobs()
    moving = [(j["id"], j["state"], j.get("progress")) for j in jobs if j["state"] in ACTIVE_STATES]
    wait = poll_wait(
        last["wait"] if last else POLL_S, moving != (last or {}).get("moving"), POLL_S, POLL_MAX_S
    )
    st.session_state[POLL] = {
        "jobs": jobs,
        "next": time.monotonic() + wait - POLL_S / 2,
        "wait": wait,
        "moving": moving,
    }
    return jobs


def upload_job(c: KbClient, batch: dict, listed: dict | None) -> dict | None:
    """This session's upload job: as listed while it runs, then once in full (the report says what
    became of each file)."""
    if batch.get("final"):
        return batch["final"]
    if listed is not None and listed["state"] in ACTIVE_STATES:
        return listed
    try:
        job = c.job(batch["job"])
    except ServiceError:
        return listed
    if job["state"] not in ACTIVE_STATES:
        batch["final"] = job
    return job


def jobs_panel(c: KbClient) -> None:
    """Every job, whoever started it (this page, another browser, the CLI, the watcher), polled while
    the page is open: often while one runs, rarely while none does."""
    try:
        jobs = poll(c)
    except ServiceError as err:
        failed(err, "list the jobs")
        return
    by_id = {j["id"]: j for j in jobs}
    batch = st.session_state.get(BATCH)
    if batch:
        job = upload_job(c, batch, by_id.get(batch["job"]))
        current = ((job or {}).get("progress") or {}).get("current")
        if current and current not in batch["seen"]:
            batch["seen"].append(current)
        with st.container(border=True, key="upload_status"):
            st.markdown("**Your upload**")
            if job and job["state"] in ACTIVE_STATES:
                st.progress(job_fraction(job), text=escape_md(job_label(job)))
            rows = upload_rows(batch, job, batch["seen"])
            st.table([{k: escape_md(v) for k, v in row.items()} for row in rows], hide_index=True)
            if job and job["state"] == "done":
                st.success(escape_md(report_summary(job.get("report"))), icon=":material/check_circle:")
            elif job and job["state"] == "failed":
                st.error(escape_md(job.get("error") or "the job failed"))

    active = [j for j in jobs if j["state"] in ACTIVE_STATES]
    st.subheader("Jobs")
    if not active:
        st.caption("No job is running.")
    for j in active:
        bar, stop = st.columns([6, 1], vertical_alignment="bottom")
        bar.progress(job_fraction(j), text=escape_md(job_label(j)))
        editor = can("editor") and not j.get("cancel_requested")
        if editor and stop.button("Cancel", key=f"cancel_{j['id']}", icon=":material/stop_circle:"):
            try:
                c.cancel_job(j["id"])
            except ServiceError as err:
                failed(err, "cancel the job")
    finished = [j for j in jobs if j["state"] not in ACTIVE_STATES][:RECENT_JOBS]
    if finished:
        with st.expander(f"Recent jobs ({len(finished)})", key="jobs_recent"):
            for j in finished:
                detail = report_summary(j.get("summary")) if j["state"] == "done" else (j.get("error") or "")
                if j["state"] == "failed" and (j.get("summary") or {}).get("would_remove"):
                    detail += " — " + report_summary(j["summary"])
                st.caption(escape_md(f"{j.get('updated', '')} · {job_label(j)} — {detail}"))

    ids = sorted(j["id"] for j in active)
    before = st.session_state.get(ACTIVE)
    st.session_state[ACTIVE] = ids
    # a job ended (the document list below has changed) or started (the panel polls faster): redraw all
    if before is not None and set(before) != set(ids) and not st.session_state.get(FULL_RUN):
        st.rerun()


def sources_panel(c: KbClient) -> None:
    """The sources as the first level; each expands to its documents."""
    st.subheader("Sources")
    try:
        sources, docs = c.sources(), c.documents()
    except ServiceError as err:
        failed(err, "list the sources")
        return
    shown = [s for s in sources if s["kind"] == "folder" or s["files"]]
    if not shown:
        st.info("Nothing indexed yet: upload files or add a folder.")
        return
    grouped = documents_by_source(docs)
    st.caption(f"{len(shown)} sources, {len(docs)} documents, {sum(d.get('chunks', 0) for d in docs)} chunks")
    for src in shown:
        # a lone source opens at once: there is nothing to choose between
        with st.expander(escape_md(source_label(src)), expanded=len(shown) == 1, key=f"source_{src['name']}"):
            source_documents(src["name"], grouped.get(src["name"], []))
            if can("editor") and src["kind"] == "folder":
                remove_source(c, src)
    if can("editor"):
        delete_documents(c, docs)


def source_documents(name: str, docs: list[dict]) -> None:
    if not docs:
        st.caption("No documents indexed from this source.")
        return
    counts = {col: st.column_config.NumberColumn(format="%d", help=text) for col, text in PAGE_HELP.items()}
    counts["unreadable"] = st.column_config.TextColumn(help=PAGE_HELP["unreadable"])
    st.dataframe(
        document_rows(docs),
        key=f"documents_{name}",
        hide_index=True,
        width="stretch",
        column_order=DOC_COLUMNS,
        column_config={
            "name": st.column_config.TextColumn(width="large"),
            "chunks": st.column_config.NumberColumn(format="%d"),
            **counts,
        },
    )


def remove_source(c: KbClient, src: dict) -> None:
    name = src["name"]
    with st.popover("Remove source", icon=":material/delete:", key=f"remove_popover_{name}"):
        st.markdown(
            escape_md(
                f"Delete the {src['files']} documents of {name} from the index and forget the source? "
                "The folder itself is not touched."
            )
        )
        if st.button("Remove for good", type="primary", key=f"remove_source_{name}"):
            with st.spinner(f"Removing {name} …"):
                try:
                    c.remove_source(name)
                except ServiceError as err:
                    failed(err, f"remove {escape_md(name)}")
                    return
            st.rerun()


def delete_documents(c: KbClient, docs: list[dict]) -> None:
    rows = document_rows(docs)
    names = {r["source"]: f"{r['name']}  ({r['source']})" for r in rows}
    doomed = st.multiselect(
        "Documents to delete",
        list(names),
        format_func=names.__getitem__,
        key="delete_sources",
        placeholder="Choose documents",
    )
    with st.popover("Delete", icon=":material/delete:", disabled=not doomed, key="delete_popover"):
        st.markdown(f"Remove {len(doomed)} document(s) from the index (uploaded files are deleted too)?")
        if st.button("Delete for good", type="primary", key="delete_go"):
            with st.spinner(f"Deleting {len(doomed)} document(s) …"):
                for source in doomed:
                    try:
                        c.delete_document(source)
                    except ServiceError as err:
                        failed(err, f"delete {escape_md(source)}")
                        return
            st.session_state.pop("delete_sources", None)
            st.rerun()


st.session_state[FULL_RUN] = True
if can("editor"):  # readers search and read; the service refuses them the rest anyway
    left, right = st.columns(2)
    with left:
        upload_form(c)
    with right:
        folder_form(c)
else:
    st.caption(escape_md(f"Signed in as a {role()}: you can search and read; an editor adds and deletes."))
try:
    poll(c, now=True)  # a full run asks afresh, and what runs sets the pace of the panel
except ServiceError:
    pass  # the panel says so
running = any(j["state"] in ACTIVE_STATES for j in st.session_state.get(POLL, {}).get("jobs", []))
st.fragment(jobs_panel, run_every=POLL_S if running else IDLE_POLL_S)(c)
sources_panel(c)
st.session_state[FULL_RUN] = False
