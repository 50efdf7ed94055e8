"""`streamlit run app/Home.py`: search, library and status pages over `kb serve`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import pages  # noqa: E402

st.set_page_config(page_title="kb", page_icon=":material/search:", layout="wide")
nav = st.navigation([
    st.Page(pages.search_page, title="Search", icon=":material/search:", default=True),
    st.Page(pages.library_page, title="Library", icon=":material/library_books:", url_path="library"),
    st.Page(pages.status_page, title="Status", icon=":material/monitor_heart:", url_path="status"),
])  # fmt: skip
nav.run()
