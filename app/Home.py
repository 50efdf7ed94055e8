"""`streamlit run app/Home.py`: search, library and status pages over `kb serve`."""

from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import pages  # noqa: E402

st.set_page_config(page_title="kb", page_icon="🔎", layout="wide")
nav = st.navigation([
    st.Page(pages.search_page, title="Search", icon="🔎", url_path="search", default=True),
    st.Page(pages.library_page, title="Library", icon="📚", url_path="library"),
    st.Page(pages.status_page, title="Status", icon="⚙️", url_path="status"),
])  # fmt: skip
nav.run()
