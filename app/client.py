"""The UI's one way to `kb serve`: a cached KbClient, and a page-level check that it answers."""

from __future__ import annotations

import streamlit as st

from app.render import escape_md
from ingest.client import KbClient, ServiceError
from ingest.settings import Settings

PROBE_TIMEOUT_S = 2.0
START_HINT = "Start it with `kb serve` (or `make run`, which starts both the service and this app)."


def settings() -> Settings:
    """Read on every run (cheap), so a changed environment or .env is seen without a restart."""
    return Settings()


@st.cache_resource(show_spinner=False)
def client(url: str) -> KbClient:
    return KbClient(url)


def connect() -> KbClient | None:
    """The service's client if it answers; otherwise the page says how to start it and gets None."""
    url = settings().service_base_url
    c = client(url)
    try:
        c.health(timeout=PROBE_TIMEOUT_S)
    except ServiceError:
        st.error(
            f"The kb service is not reachable at {escape_md(url)}. {START_HINT}", icon=":material/cloud_off:"
        )
        return None
    return c


def failed(err: ServiceError, doing: str) -> None:
    """Show a service error where the action was."""
    st.error(f"Could not {doing}: {escape_md(str(err))}", icon=":material/error:")


__all__ = ["ServiceError", "client", "connect", "failed", "settings"]
