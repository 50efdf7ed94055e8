"""Smaller holes, each closed: settings that cannot be infinite or redirected by a .env, sessions and
tokens that follow the account, accounts edits that cannot be lost, Origin and Host checks that see
ports and IPv6, and page numbers that stay numbers."""

from __future__ import annotations

import math
import multiprocessing
import urllib.error
import urllib.request

import pytest
from pydantic import ValidationError

from kb.service.auth import Accounts, Sessions
from kb.service.client import KbClient
from kb.service.guards import host_name
from kb.settings import Settings
from tests.service.test_service import GRACEFUL, Service

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

PASSWORD = "correct horse battery"


@pytest.mark.parametrize("name", ["session_hours", "parse_timeout_s", "ocr_page_timeout_s", "login_window_s"])
def test_float_settings_refuse_infinity_and_nan(name):
    for bad in (math.inf, math.nan, "inf"):
        with pytest.raises(ValidationError):
            Settings(**{name: bad}, _env_file=None)


def test_a_dotenv_cannot_redirect_the_service_or_set_its_token(tmp_path, monkeypatch):
    monkeypatch.delenv("KB_SERVICE_URL", raising=False)
    monkeypatch.delenv("KB_API_TOKEN", raising=False)
    env = tmp_path / ".env"
    env.write_text("KB_SERVICE_URL=http://attacker.example:80\nKB_API_TOKEN=kb_x_y\nKB_COLLECTION=other\n")
    settings = Settings(_env_file=env)
    assert settings.service_url is None and settings.api_token is None
    assert settings.collection == "other"  # the rest of the file still counts
    monkeypatch.setenv("KB_API_TOKEN", "kb_from_env")
    assert Settings(_env_file=env).api_token == "kb_from_env"


def test_a_password_change_ends_sessions_and_a_removed_user_takes_its_tokens(tmp_path):
    accounts = Accounts(tmp_path / "accounts.json")
    accounts.set_user("ada", PASSWORD, "editor")
    sessions = Sessions(accounts, hours=1.0)
    login = sessions.login("ada", PASSWORD)
    token = accounts.create_token("ada", "admin")
    tool = accounts.create_token("ci", "reader")
    assert accounts.check_token(token).role == "editor"  # never more than the user it is named after
    accounts.set_user("ada", PASSWORD + "!")
    assert sessions.check(login["token"]) is None and sessions.check_file_token(login["file_token"]) is None
    accounts.remove_user("ada")
    assert accounts.check_token(token) is None and accounts.check_token(tool).name == "ci"


def _add_users(path: str, start: int) -> None:
    accounts = Accounts(path)
    for i in range(start, start + 10):
        accounts.create_token(f"tool{i}", "reader")


def test_concurrent_edits_of_the_accounts_file_lose_nothing(tmp_path):
    path = str(tmp_path / "accounts.json")
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_users, args=(path, n * 10)) for n in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0] * 4
    assert len(Accounts(path).tokens()) == 40


def test_a_same_size_edit_within_the_same_tick_is_seen(tmp_path):
    first, second = Accounts(tmp_path / "accounts.json"), Accounts(tmp_path / "accounts.json")
    first.set_user("ada", PASSWORD, "editor")
    assert second.user("ada")["role"] == "editor"
    first.set_role("ada", "reader")  # same size as before: "editor" → "reader"
    assert second.user("ada")["role"] == "reader"


def test_host_names_with_ports_and_ipv6():
    assert host_name("[::1]:8765") == "::1" and host_name("[::1]") == "::1"
    assert host_name("127.0.0.1:8765") == "127.0.0.1" and host_name("localhost") == "localhost"
    assert host_name("evil.example:8765") == "evil.example" and host_name("[::1") == ""


def test_file_links_carry_only_integer_pages():
    client = KbClient("http://127.0.0.1:1")
    assert client.file_url("a.pdf", 3).endswith("#page=3")
    for bad in ("3) [x](javascript:alert(1)", 0, -1, True, 2.5, None):
        assert "#page" not in client.file_url("a.pdf", bad)


def test_origin_must_name_the_service_port_too(qwen3_gguf, tmp_path):
    svc = Service(qwen3_gguf, tmp_path).start()
    try:
        base = svc.client.base_url
        for origin, expected in ((f"http://127.0.0.1:{svc.port + 1}", 403), ("http://localhost:3000", 403)):
            req = urllib.request.Request(
                base + "/jobs/folder",
                b'{"path": "/nowhere"}',
                {
                    "Content-Type": "application/json",
                    "Origin": origin,
                    "Authorization": f"Bearer {svc.client.token}",
                },
            )
            with pytest.raises(urllib.error.HTTPError) as err:
                urllib.request.urlopen(req, timeout=10)
            err.value.close()
            assert err.value.code == expected, origin
        req = urllib.request.Request(
            base + "/jobs/folder",
            b'{"path": "/nowhere"}',
            {
                "Content-Type": "application/json",
                "Origin": base,
                "Authorization": f"Bearer {svc.client.token}",
            },
        )
        with pytest.raises(urllib.error.HTTPError) as err:  # its own origin passes (and the path is bad)
            urllib.request.urlopen(req, timeout=10)
        err.value.close()
        assert err.value.code == 400
    finally:
        assert svc.stop() in GRACEFUL
