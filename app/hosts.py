"""Which Host names the app answers to: DNS rebinding must not reach it.

A web page on another site can point its own name at 127.0.0.1 and then talk to this app from the
user's browser as a same-origin page; the app would act for it (as admin, when the service has team
access off). The Host header is what such a page cannot fake: the app runs no page for a Host that
is not one of its names — the loopback names, the address it listens on (when that is one address,
not every interface) and ``browser.serverAddress`` (the name a reverse proxy serves it under).

Listening on every interface (``0.0.0.0``), its names are unknown and any is answered: the app then
wants team access on in the service (``client.exposed``), so each browser session logs in, and a
rebound page gets no further than the login form, as anyone on the network would.
"""

from __future__ import annotations

import streamlit as st

from app.render import escape_md
from kb.settings import LOOPBACK_HOSTS

WILDCARD_ADDRESSES = {"", "0.0.0.0", "::"}


def host_name(host: str) -> str:
    """The name of a Host header without its port (``[::1]:8501`` → ``::1``), lowercased."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def allowed_names(address: str | None, server_address: str | None) -> set[str] | None:
    """The Host names answered, or None for any (listening on every interface)."""
    if (address or "").strip() in WILDCARD_ADDRESSES:
        return None
    names = {*LOOPBACK_HOSTS, address or ""}
    if server_address:
        names.add(host_name(server_address))
    return {n.lower() for n in names if n}


def refuse_foreign_host() -> None:
    """Stop this run, before any page, when the browser reached the app under a name not its own."""
    host = st.context.headers.get("Host")
    if host is None:  # no browser request behind this run (a test harness): nothing to rebind
        return
    names = allowed_names(st.get_option("server.address"), st.get_option("browser.serverAddress"))
    if names is None or host_name(host) in names:
        return
    st.error(
        f"This app does not answer to the name {escape_md(host_name(host))}. Open it at the address "
        "it was started on (or set `browser.serverAddress` to the name a proxy serves it under).",
        icon=":material/block:",
    )
    st.stop()


__all__ = ["allowed_names", "host_name", "refuse_foreign_host"]
