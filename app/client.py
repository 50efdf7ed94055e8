"""The UI's one way to `kb serve`: a client per browser session, a page-level check that the service
answers, and the login form when the service has team access on.

The app never holds an API token of its own: with team access on, each browser session logs in, and
the service checks every request against that session's role.
"""

from __future__ import annotations

import streamlit as st

from app.render import escape_md
from kb.service.client import KbClient, ServiceError, forward_key_of, local_client
from kb.settings import Settings

PROBE_TIMEOUT_S = 2.0
START_HINT = "Start it with `kb serve` (or `make run`, which starts both the service and this app)."
LOGIN_KEY = "kb_login"  # session state: the service's answer to the login (token, file_token, user, role)


def settings() -> Settings:
    """Read on every run (cheap), so a changed environment or .env is seen without a restart."""
    return Settings()


def role() -> str:
    """This session's role ("admin" when the service has no team access)."""
    login = st.session_state.get(LOGIN_KEY)
    return login["role"] if login else "admin"


def can(needed: str) -> bool:
    from kb.contract import role_at_least

    return role_at_least(role(), needed)


def exposed() -> bool:
    """Whether this app listens on more than the loopback interface."""
    from kb.settings import LOOPBACK_HOSTS

    return (st.get_option("server.address") or "0.0.0.0") not in LOOPBACK_HOSTS  # unset: every interface


def _login_form(c: KbClient) -> None:
    st.title("Sign in")
    st.caption("This knowledge base is shared: sign in with the account your admin made (`kb user add`).")
    with st.form("login_form"):
        name = st.text_input("User name", key="login_user")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", icon=":material/login:")
    if submitted:
        address = st.context.ip_address  # the browser's: the service limits guesses per address
        try:
            st.session_state[LOGIN_KEY] = c.login(
                name,
                password,
                client_address=address if isinstance(address, str) else None,
                forward_key=forward_key_of(settings()),
            )
        except ServiceError as err:
            st.error(escape_md(str(err)), icon=":material/lock:")
            return
        st.rerun()


def _account_box(c: KbClient) -> None:
    login = st.session_state[LOGIN_KEY]
    with st.sidebar:
        st.caption(escape_md(f"Signed in as {login['user']} ({login['role']})"))
        if st.button("Sign out", icon=":material/logout:", key="logout"):
            try:
                c.logout()
            except ServiceError:
                pass
            del st.session_state[LOGIN_KEY]
            st.rerun()


def connect() -> KbClient | None:
    """The service's client if it answers (and this session is signed in where it must be);
    otherwise the page shows why (or the login form) and gets None."""
    s = settings()
    url = s.service_base_url
    login = st.session_state.get(LOGIN_KEY)
    # signed in: the session's tokens; otherwise the local token of the data folder, when this account may read it
    c = KbClient(url, token=login["token"], file_token=login["file_token"]) if login else local_client(s)
    try:
        health = c.health(timeout=PROBE_TIMEOUT_S)
    except ServiceError:
        st.error(
            f"The kb service is not reachable at {escape_md(url)}. {START_HINT}", icon=":material/cloud_off:"
        )
        return None
    if not health.get("auth") and exposed():
        st.error(
            "This app listens beyond localhost but the kb service has team access off, so anyone on "
            "the network could read and change the knowledge base. Start the service with KB_AUTH=on "
            "(`make run HOST=…` does) and add accounts with `kb user add`.",
            icon=":material/lock_open:",
        )
        return None
    if health.get("local_token") and "data_dir" not in health:
        st.error(
            "The kb service wants its local token, which this app cannot read: run the app as the account "
            "that runs `kb serve`, with the same KB_DATA_DIR.",
            icon=":material/lock:",
        )
        return None
    if health.get("auth") and "data_dir" not in health:  # team access on, and this session not signed in
        st.session_state.pop(LOGIN_KEY, None)
        _login_form(KbClient(url))
        return None
    if login and not health.get("auth"):  # team access was turned off since
        st.session_state.pop(LOGIN_KEY, None)
    elif login:
        _account_box(c)
    return c


def failed(err: ServiceError, doing: str) -> None:
    """Show a service error where the action was (a lapsed login goes back to the form)."""
    if err.status == 401 and st.session_state.pop(LOGIN_KEY, None):
        st.rerun()
    st.error(f"Could not {doing}: {escape_md(str(err))}", icon=":material/error:")


__all__ = ["ServiceError", "can", "connect", "failed", "role", "settings"]
