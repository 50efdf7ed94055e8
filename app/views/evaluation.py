"""Evaluation: the reports `kb eval` wrote (newest first), with the metrics table and the chart."""

from __future__ import annotations

import streamlit as st

from app.client import ServiceError, connect, failed
from app.render import escape_md, eval_rows

NO_REPORTS = (
    "No evaluation report yet. Run `make eval`, or "
    "`kb eval data/eval/traps.jsonl --corpus data/eval/traps` (a test set of your own works the same "
    "way); the reports are kept under eval/reports in the data folder."
)

st.title("Evaluation")
c = connect()
if c is None:
    st.stop()
try:
    listing = c.eval_reports()
except ServiceError as err:
    failed(err, "list the evaluation reports")
    st.stop()

reports = {r["name"]: r for r in listing["reports"]}
if not reports:
    st.info(NO_REPORTS, icon=":material/insights:")
    st.stop()


def label(name: str) -> str:
    return f"{reports[name]['title']} — {reports[name]['time'].replace('T', ' ')}"


name = st.selectbox("Report", list(reports), format_func=label, key="eval_report")
shown = listing["report"]
if shown is None or shown["name"] != name:  # the newest comes with the list; another is one more call
    try:
        shown = c.eval_reports(name)["report"]
    except ServiceError as err:
        failed(err, "read the report")
        st.stop()

report = shown["data"]
st.caption(
    escape_md(
        f"{report.get('n_queries', '?')} queries over {report.get('corpus', '?')} · "
        f"created {report.get('created', '?')}"
    )
)
st.dataframe(eval_rows(report), key="eval_metrics", hide_index=True, width="stretch")
if shown.get("png"):
    try:
        st.image(c.eval_chart(name), caption="Retrieval quality and search latency per configuration")
    except ServiceError as err:
        failed(err, "load the chart")
for warning in report.get("warnings") or ():
    st.warning(escape_md(str(warning)), icon=":material/warning:")
if shown.get("markdown"):
    with st.expander("Markdown report", key="eval_markdown"):
        st.code(shown["markdown"], language="markdown")
