"""`streamlit run app/Home.py`: the search, ask, library, evaluation and status pages over `kb serve`.

The app is a thin client: the service owns the model and the store; every page talks to it
through ``app.client`` and renders with ``app.render``.
"""

# ruff: noqa: N999 — the entry point's name is what `streamlit run app/Home.py` shows
from __future__ import annotations

import sys
from pathlib import Path

import streamlit as st

APP_DIR = Path(__file__).resolve().parent
if str(APP_DIR.parent) not in sys.path:  # `streamlit run` puts app/ on the path, not the checkout
    sys.path.insert(0, str(APP_DIR.parent))

from app.hosts import refuse_foreign_host  # after the path is set

st.set_page_config(page_title="kb", page_icon=":material/search:", layout="wide")
refuse_foreign_host()  # before any page: DNS rebinding must not reach the app
nav = st.navigation(
    [
        st.Page(APP_DIR / "views" / "search.py", title="Search", icon=":material/search:", default=True),
        st.Page(APP_DIR / "views" / "ask.py", title="Ask", icon=":material/forum:"),
        st.Page(APP_DIR / "views" / "library.py", title="Library", icon=":material/library_books:"),
        st.Page(APP_DIR / "views" / "evaluation.py", title="Evaluation", icon=":material/insights:"),
        st.Page(APP_DIR / "views" / "status.py", title="Status", icon=":material/monitor_heart:"),
    ]
)
nav.run()
