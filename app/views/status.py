"""Status: the model the service loaded, where it runs (and the GPU memory in use), the collection, and
the last ingest report."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from app.client import ServiceError, connect, failed
from app.render import escape_md, report_summary, vram_label

st.title("Status")
c = connect()
if c is None:
    st.stop()
st.button("Refresh", icon=":material/refresh:", key="status_refresh")
try:
    s = c.status()
except ServiceError as err:
    failed(err, "read the status")
    st.stop()

dim = s.get("dim", "?")
native = s.get("native_dim")
model = Path(str(s.get("model_path") or "?")).name
engine = "patched llama.cpp" if s.get("patched_engine") else "stock llama.cpp"
recipe = f" · recipe {s['recipe']}" if s.get("recipe") else ""
st.markdown(
    f"**Model** {escape_md(model)}{escape_md(recipe)} · {engine}", help=escape_md(str(s.get("model", "")))
)
cols = st.columns([1, 2, 1, 1, 1])  # the VRAM figure is the longest
cols[0].metric("Device", str(s.get("device", "?")))
cols[1].metric("VRAM", vram_label(s), help=escape_md(str((s.get("vram") or {}).get("gpu", ""))) or None)
cols[2].metric("Dimension", f"{dim}" + (f" of {native}" if native and native != dim else ""))
cols[3].metric("Chunks stored", f"{s.get('points', 0):,}")
cols[4].metric("Model load", f"{s.get('model_load_s', 0.0):.1f} s")

details = {
    "data folder": s.get("data_dir"),
    "Qdrant": s.get("qdrant_url") or "embedded",
    "collection": s.get("collection"),
    "contexts": s.get("contexts"),
    "longest input (tokens)": s.get("max_tokens"),
    "reranker loaded": s.get("reranker_loaded"),
    "jobs": ", ".join(f"{n} {state}" for state, n in (s.get("jobs") or {}).items()) or "none",
}
st.table(
    [{"": escape_md(k), "value": escape_md(str(v))} for k, v in details.items() if v is not None],
    hide_index=True,
    hide_header=True,
)

st.subheader("Last ingest")
last = s.get("last_ingest")
if not last:
    st.info("Nothing has been ingested through this service yet.")
else:
    report = last.get("report") or {}
    what = "uploads" if last.get("kind") == "upload" else f"folder {last.get('path', '?')}"
    st.markdown(escape_md(f"{what} — finished {last.get('finished', '?')}"))
    st.success(escape_md(report_summary(report)), icon=":material/check_circle:")
    if report.get("skipped"):
        st.markdown("**Skipped**")
        st.dataframe(report["skipped"], key="status_skipped", hide_index=True, width="stretch")
    if report.get("warnings"):
        st.markdown("**Warnings**")
        st.dataframe(report["warnings"], key="status_warnings", hide_index=True, width="stretch")
with st.expander("Everything the service reports", key="status_raw"):
    st.json(s)
