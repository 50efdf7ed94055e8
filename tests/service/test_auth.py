"""Team access: the accounts file, login sessions, and `kb serve` refusing whoever has not logged in.

The service runs for real (a child process, the tiny Qwen3 GGUF, the embedded store) with
``KB_AUTH=on``; every route is tried without a token, with a forged one, and with each role.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from kb.service.api import PUBLIC, ROUTES
from kb.service.auth import FAILED_LOGINS_MAX, Accounts, AuthError, Sessions
from kb.service.client import KbClient, ServiceError
from tests.helpers.app import library_as
from tests.service.test_service import Service, free_port, kb_env

PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]


# --- the accounts file ---------------------------------------------------------------------------
def test_passwords_are_salted_hashes_and_checked(tmp_path):
    accounts = Accounts(tmp_path / "accounts.json")
    accounts.set_user("alice", PASSWORD, "admin")
    accounts.set_user("bob", PASSWORD, "reader")
    raw = (tmp_path / "accounts.json").read_text()
    assert PASSWORD not in raw
    hashes = {u["hash"] for u in json.loads(raw)["users"].values()}
    assert len(hashes) == 2, "the same password must hash differently (salt)"
    assert all(h.startswith("scrypt$") for h in hashes)
    assert stat.S_IMODE((tmp_path / "accounts.json").stat().st_mode) == 0o600
    assert accounts.check_password("alice", PASSWORD).role == "admin"
    assert accounts.check_password("alice", PASSWORD + "x") is None
    assert accounts.check_password("nobody", PASSWORD) is None
    with pytest.raises(AuthError):
        accounts.set_user("carol", "short")
    with pytest.raises(AuthError):
        accounts.set_user("../carol", PASSWORD)
    with pytest.raises(AuthError):
        accounts.set_user("carol", PASSWORD, "root")
    accounts.set_role("bob", "editor")
    # another process (`kb user …`) edits the file: a reader sees it without a restart
    other = Accounts(tmp_path / "accounts.json")
    assert other.check_password("bob", PASSWORD).role == "editor"
    accounts.remove_user("bob")
    time.sleep(0.01)
    assert other.check_password("bob", PASSWORD) is None


def test_api_tokens_are_kept_as_digests_and_revocable(tmp_path):
    accounts = Accounts(tmp_path / "accounts.json")
    token = accounts.create_token("ci", "editor")
    assert token.startswith("kb_")
    secret = token.rsplit("_", 1)[1]
    assert secret not in (tmp_path / "accounts.json").read_text()
    assert accounts.check_token(token).role == "editor"
    assert accounts.check_token(token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    assert accounts.check_token("kb_nope_nope") is None
    [listed] = accounts.tokens()
    accounts.revoke_token(listed["id"])
    assert accounts.check_token(token) is None


def test_sessions_expire_lock_out_guessers_and_follow_the_account(tmp_path):
    accounts = Accounts(tmp_path / "accounts.json")
    accounts.set_user("alice", PASSWORD, "editor")
    sessions = Sessions(accounts, hours=1.0)
    login = sessions.login("alice", PASSWORD)
    assert sessions.check(login["token"]).role == "editor"
    assert sessions.check_file_token(login["file_token"]).role == "reader"  # file links read, nothing more
    assert sessions.check(login["file_token"]) is None
    accounts.set_role("alice", "reader")
    assert sessions.check(login["token"]).role == "reader"  # a role change applies at once
    sessions.logout(login["token"])
    assert sessions.check(login["token"]) is None
    assert sessions.check_file_token(login["file_token"]) is None

    for _ in range(FAILED_LOGINS_MAX):
        with pytest.raises(AuthError, match="wrong"):
            sessions.login("alice", "guess-guess")
    with pytest.raises(AuthError, match="too many"):
        sessions.login("alice", PASSWORD)  # even the right password, for a while

    short = Sessions(accounts, hours=0.2 / 3600)
    login = short.login("alice", PASSWORD)
    time.sleep(0.3)
    assert short.check(login["token"]) is None
    login = Sessions(accounts, hours=1.0).login("alice", PASSWORD)
    accounts.remove_user("alice")
    time.sleep(0.01)
    assert sessions.check(login["token"]) is None


# --- the service ---------------------------------------------------------------------------------
def _call(url: str, method: str = "GET", token: str | None = None, body: bytes | None = None) -> int:
    req = urllib.request.Request(url, data=body, method=method)
    if body is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status
    except urllib.error.HTTPError as err:
        err.close()
        return err.code


@pytest.fixture(scope="module")
def guarded(qwen3_gguf, tmp_path_factory):
    home = tmp_path_factory.mktemp("auth")
    (home / "data").mkdir()
    accounts = Accounts(home / "data" / "accounts.json")
    for name, role in (("ada", "admin"), ("eve", "editor"), ("rae", "reader")):
        accounts.set_user(name, PASSWORD, role)
    token = accounts.create_token("script", "editor")
    roots = home / "shared"
    (roots / "handbook").mkdir(parents=True)
    (roots / "handbook" / "leave.md").write_text("# Leave\n\nAsk your manager two weeks ahead.\n")
    (home / "private").mkdir()
    (home / "private" / "salaries.md").write_text("# Salaries\n\nConfidential.\n")
    service = Service(qwen3_gguf, home, KB_AUTH="on", KB_INGEST_ROOTS=str(roots)).start()
    try:
        yield service, token
    finally:
        service.stop()


def _login(service: Service, name: str) -> KbClient:
    answer = service.client.login(name, PASSWORD)
    return KbClient(
        service.client.base_url, timeout=30, token=answer["token"], file_token=answer["file_token"]
    )


def test_every_route_wants_a_login(guarded):
    service, _ = guarded
    base = service.client.base_url
    health = service.client.health()
    assert health == {"ok": True, "auth": True}  # not even which folder it serves
    checked = 0
    for route in ROUTES:
        if route.path in PUBLIC:
            continue
        path = route.path.replace("{job_id}", "x").replace("{name}", "x")
        for method in sorted(route.methods - {"HEAD"}):
            body = b"{}" if method == "POST" else None
            for token in (None, "forged", "kb_0123456789ab_forged"):
                assert _call(base + path, method, token, body) == 401, (method, path, token)
            checked += 1
    assert checked >= 10
    with pytest.raises(ServiceError) as err:
        service.client.search("anything")
    assert err.value.status == 401 and "KB_API_TOKEN" in str(err.value)
    with pytest.raises(ServiceError) as err:
        service.client.login("rae", "not the password")
    assert err.value.status == 401
    assert service.proc.poll() is None


def test_roles_decide_what_a_login_may_do(guarded, tmp_path):
    service, _ = guarded
    reader, editor, admin = (_login(service, n) for n in ("rae", "eve", "ada"))
    assert reader.whoami() == {"user": "rae", "role": "reader"}
    assert "data_dir" in reader.health()
    reader.search("leave")  # readers search
    for attempt in (
        lambda c: c.upload([("a.md", b"# A\n")]),
        lambda c: c.delete_document("x.md"),
        lambda c: c.submit_folder(service.home / "shared"),
    ):
        with pytest.raises(ServiceError) as err:
            attempt(reader)
        assert err.value.status == 403 and "role" in str(err.value)

    # an editor uploads and ingests under the configured roots, nowhere else; a rebuild is an admin's
    job = editor.wait(editor.upload([("notes.md", b"# Notes\n\nThe canary is blue.\n")])["job"]["id"])
    assert job["state"] == "done", job
    job = editor.wait(editor.submit_folder(service.home / "shared" / "handbook")["id"])
    assert job["state"] == "done", job
    for path in (service.home / "private", service.home / "shared" / "handbook" / ".." / ".." / "private"):
        with pytest.raises(ServiceError) as err:
            editor.submit_folder(path)
        assert err.value.status == 403, path
    link = service.home / "shared" / "escape"
    link.symlink_to(service.home / "private")
    with pytest.raises(ServiceError) as err:
        admin.submit_folder(link)  # roots bind admins too, and symlinks are followed before the check
    assert err.value.status == 403
    with pytest.raises(ServiceError) as err:
        editor.submit_folder(service.home / "shared" / "handbook", rebuild=True)
    assert err.value.status == 403

    # file links: the login's file token opens them; without it, nothing
    source = next(d["source"] for d in reader.documents() if d.get("original_name") == "notes.md")
    url = reader.file_url(source)
    assert "ft=" in url
    with urllib.request.urlopen(url, timeout=30) as resp:
        assert b"canary is blue" in resp.read()
    assert _call(url.split("&ft=")[0]) == 401
    assert b"canary is blue" in reader.fetch_file(source)  # what the app's Download button sends
    reader.logout()
    with pytest.raises(ServiceError) as err:
        reader.search("leave")
    assert err.value.status == 401
    assert _call(url) == 401


def test_api_token_drives_the_cli_through_the_service(guarded):
    service, token = guarded
    env = {**service.env, "KB_SERVICE_URL": service.client.base_url}
    cmd = [sys.executable, "-m", "kb.cli.main", "search", "manager", "--json"]
    out = subprocess.run(
        cmd,
        env={**env, "KB_API_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=service.home,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert any(h["source"].endswith("leave.md") for h in json.loads(out.stdout))
    out = subprocess.run(
        cmd, env=env, capture_output=True, text=True, timeout=120, cwd=service.home, check=False
    )
    assert out.returncode != 0 and "KB_API_TOKEN" in out.stderr


@pytest.mark.slow
@pytest.mark.parametrize("env", [{"KB_AUTH": "on"}, {"KB_SERVICE_HOST": "0.0.0.0"}])
def test_serve_will_not_listen_with_team_access_and_no_accounts(qwen3_gguf, tmp_path, env):
    full = {**kb_env(qwen3_gguf, tmp_path / "data", free_port()), **env}
    out = subprocess.run(
        [sys.executable, "-m", "kb.cli.main", "serve"],
        env=full,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 1
    assert "kb user add" in out.stderr and "accounts" in out.stderr


@pytest.mark.slow
def test_user_and_token_commands_edit_the_accounts_file(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("KB_")}, "KB_DATA_DIR": str(tmp_path)}

    def kb(*args: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "kb.cli.main", *args],
            input=stdin,
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    assert (
        kb("user", "add", "ada", "--role", "admin", "--password-stdin", stdin=PASSWORD + "\n").returncode == 0
    )
    assert kb("user", "add", "ada", "--password-stdin", stdin=PASSWORD + "\n").returncode == 1
    assert kb("user", "add", "bo", "--password-stdin", stdin="short\n").returncode == 1
    token = kb("token", "create", "ci", "--role", "reader").stdout.strip()
    accounts = Accounts(tmp_path / "accounts.json")
    assert accounts.check_password("ada", PASSWORD).role == "admin"
    assert accounts.check_token(token).name == "ci"
    assert "ada\tadmin" in kb("user", "list").stdout
    assert token not in kb("token", "list").stdout
    assert kb("user", "role", "ada", "reader").returncode == 0
    assert kb("token", "revoke", accounts.tokens()[0]["id"]).returncode == 0
    accounts = Accounts(tmp_path / "accounts.json")
    assert accounts.check_password("ada", PASSWORD).role == "reader" and accounts.check_token(token) is None


# --- the app -------------------------------------------------------------------------------------
def test_app_shows_only_the_login_until_signed_in(guarded, monkeypatch):
    from streamlit.testing.v1 import AppTest

    service, _ = guarded
    monkeypatch.setenv("KB_SERVICE_URL", service.client.base_url)
    at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert [t.label for t in at.text_input] == ["User name", "Password"]  # no query box, no upload
    at.text_input(key="login_user").input("rae")
    at.text_input(key="login_password").input("wrong password")
    at.button[0].click().run()
    assert any("wrong user name or password" in e.value for e in at.error)
    assert [t.label for t in at.text_input] == ["User name", "Password"]
    at.text_input(key="login_password").input(PASSWORD)
    at.button[0].click().run()
    assert not at.exception, at.exception
    at.text_input(key="search_query").input("manager").run()
    assert not at.exception, at.exception
    assert any("rae (reader)" in c.value.replace("\\", "") for c in at.sidebar.caption)
    at.sidebar.button(key="logout").click().run()
    assert [t.label for t in at.text_input] == ["User name", "Password"]


@pytest.mark.slow
def test_service_refuses_a_lan_bind_without_team_access_loudly(qwen3_gguf, tmp_path):
    """KB_AUTH=off on a LAN address is an explicit choice: allowed, with a warning."""
    port = free_port()
    env = {**kb_env(qwen3_gguf, tmp_path / "data", port), "KB_SERVICE_HOST": "0.0.0.0", "KB_AUTH": "off"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "kb.cli.main", "serve"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = KbClient(f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 60
        while True:
            try:
                assert client.health(timeout=0.5)["auth"] is False
                break
            except ServiceError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert "team access off" in err


@pytest.mark.slow
def test_app_on_a_lan_address_refuses_a_service_without_team_access(qwen3_gguf, tmp_path, monkeypatch):
    from streamlit import config
    from streamlit.testing.v1 import AppTest

    service = Service(qwen3_gguf, tmp_path).start()
    before = config.get_option("server.address")
    try:
        monkeypatch.setenv("KB_SERVICE_URL", service.client.base_url)
        monkeypatch.setenv("KB_DATA_DIR", str(service.data_dir))  # where the app finds the local token
        config.set_option("server.address", "0.0.0.0")
        at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=60).run()
        assert any("team access off" in e.value for e in at.error)
        assert not at.text_input  # nothing to search with, nothing to upload
        config.set_option("server.address", "127.0.0.1")
        at = AppTest.from_file(str(ROOT / "app" / "Home.py"), default_timeout=60).run()
        assert not at.error and at.text_input(key="search_query")
    finally:
        config.set_option("server.address", before)
        service.stop()


def test_library_offers_a_reader_no_upload_folder_or_delete(guarded, monkeypatch):

    service, _ = guarded
    monkeypatch.setenv("KB_SERVICE_URL", service.client.base_url)

    reader = library_as("rae", PASSWORD)
    keys = {w.key for w in [*reader.text_input, *reader.multiselect, *reader.checkbox]}
    assert not keys & {"folder_path", "delete_sources", "folder_rebuild"}
    assert reader.dataframe  # the documents are listed
    editor = library_as("eve", PASSWORD)
    keys = {w.key for w in [*editor.text_input, *editor.multiselect, *editor.checkbox]}
    assert {
        "folder_path",
        "delete_sources",
    } <= keys and "folder_rebuild" not in keys  # a rebuild is an admin's
    admin = library_as("ada", PASSWORD)
    assert "folder_rebuild" in {w.key for w in admin.checkbox}
