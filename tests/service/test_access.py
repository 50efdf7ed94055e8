"""Who sees what: sources restricted to users and groups, through a real `kb serve` (child process,
the tiny Qwen3 GGUF, the embedded store) with team access on, real accounts and groups, the CLI,
the MCP tools over HTTP and the app's Library."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from ingest.sources import Source, SourceError
from kb.service.access import EVERYTHING, access_for, checked_allow
from kb.service.auth import Accounts, AuthError, Principal
from kb.service.client import KbClient, ServiceError
from kb.settings import Settings
from tests.helpers.app import library_as
from tests.service.test_service import Service

PASSWORD = "correct horse battery"
ROOT = Path(__file__).resolve().parents[2]
SECRET = "quokka zanzibar salary bands"  # words only the restricted source holds
SECRET_DOC = "payroll/salaries.md"
OPEN_DOC = "handbook/leave.md"


# --- the accounts file and the rule, without a service -------------------------------------------
def test_groups_live_in_the_accounts_file_and_follow_their_members(tmp_path):
    accounts = Accounts(tmp_path / "accounts.json")
    for name in ("gus", "rae"):
        accounts.set_user(name, PASSWORD, "reader")
    accounts.create_token("payroll-bot", "reader")
    accounts.add_to_group("payroll", ["gus", "payroll-bot"])
    assert accounts.groups() == [{"name": "payroll", "members": ["gus", "payroll-bot"]}]
    assert accounts.check_password("gus", PASSWORD).groups == ("payroll",)
    assert accounts.check_password("rae", PASSWORD).groups == ()
    with pytest.raises(AuthError, match="no user or token"):
        accounts.add_to_group("payroll", ["nobody"])
    with pytest.raises(AuthError, match="is a user"):
        accounts.add_to_group("rae", ["gus"])
    with pytest.raises(AuthError, match="is a group"):
        accounts.set_user("payroll", PASSWORD)
    assert accounts.known("payroll") and accounts.known("payroll-bot") and not accounts.known("nobody")
    accounts.remove_user("gus")  # a removed user leaves its groups
    assert accounts.groups_of("gus") == () and accounts.groups()[0]["members"] == ["payroll-bot"]
    accounts.remove_from_group("payroll", ["payroll-bot"])
    accounts.remove_from_group("payroll")
    assert accounts.groups() == []
    with pytest.raises(AuthError, match="no group"):
        accounts.remove_from_group("payroll")


def test_who_may_read_which_source():
    sources = [Source("handbook", "/h"), Source("payroll", "/p", allow=("payroll", "ada"))]
    reader = Principal("rae", "reader", "session")
    member = Principal("gus", "reader", "token", ("payroll",))
    named = Principal("ada", "editor", "session")
    admin = Principal("root", "admin", "session")
    assert access_for(reader, sources).readable == {"handbook", "uploads"}
    # nobody restricted from anything: no restriction at all (also on points of no registered source)
    assert access_for(member, sources) is EVERYTHING and access_for(named, sources) is EVERYTHING
    assert access_for(admin, sources) is EVERYTHING and access_for(None, sources) is EVERYTHING
    assert access_for(reader, sources[:1]) is EVERYTHING
    rae = access_for(reader, sources)
    assert rae.reads(OPEN_DOC) and not rae.reads(SECRET_DOC) and rae.reads("uploads/x.md")
    assert rae.narrow(EVERYTHING.narrow(_filter())).readable == ("handbook", "uploads")
    rows = [{"name": "handbook"}, {"name": "payroll"}, {"name": None}]
    assert rae.only(rows, "name") == [{"name": "handbook"}]
    assert EVERYTHING.only(rows, "name") == rows


def test_an_allow_list_names_only_known_users_and_groups(tmp_path):
    settings = Settings(data_dir=tmp_path, accounts_file=tmp_path / "accounts.json")
    accounts = Accounts(settings.accounts_path)
    accounts.set_user("gus", PASSWORD)
    accounts.add_to_group("payroll", ["gus"])
    assert checked_allow(settings, ["payroll", "gus", "payroll", " "]) == ("payroll", "gus")
    with pytest.raises(SourceError, match="'gsu'"):
        checked_allow(settings, ["gsu"])


def _filter():
    from ingest.store import SearchFilter

    return SearchFilter(kinds=("markdown",))


# --- the service ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def team(qwen3_gguf, tmp_path_factory):
    home = tmp_path_factory.mktemp("team")
    (home / "data").mkdir()
    accounts = Accounts(home / "data" / "accounts.json")
    for name, role in (("ada", "admin"), ("rae", "reader"), ("gus", "reader")):
        accounts.set_user(name, PASSWORD, role)
    tokens = {
        "ada": accounts.create_token("ada", "admin"),
        "rae": accounts.create_token("rae", "reader"),
        "gus": accounts.create_token("gus", "reader"),
    }
    accounts.add_to_group("payroll", ["gus"])
    shared = home / "shared"
    (shared / "handbook").mkdir(parents=True)
    (shared / "handbook" / "leave.md").write_text("# Leave\n\nAsk your manager two weeks ahead.\n")
    (shared / "payroll").mkdir()
    (shared / "payroll" / "salaries.md").write_text(f"# Salaries\n\nThe {SECRET} are confidential.\n")
    service = Service(qwen3_gguf, home, KB_AUTH="on", KB_WATCH="off").start()
    try:
        admin = KbClient(service.client.base_url, timeout=60, token=tokens["ada"])
        jobs = {}
        for folder in ("handbook", "payroll"):
            jobs[folder] = admin.wait(admin.submit_folder(shared / folder)["id"])
            assert jobs[folder]["state"] == "done", jobs[folder]
        yield service, tokens, jobs
    finally:
        service.stop()


def _cli(service: Service, token: str, *args: str) -> subprocess.CompletedProcess:
    env = {**service.env, "KB_SERVICE_URL": service.client.base_url, "KB_API_TOKEN": token}
    cmd = [sys.executable, "-m", "kb.cli.main", *args]
    return subprocess.run(
        cmd, env=env, cwd=service.home, capture_output=True, text=True, timeout=120, check=False
    )


def _login(service: Service, name: str) -> KbClient:
    answer = service.client.login(name, PASSWORD)
    base = service.client.base_url
    return KbClient(base, timeout=60, token=answer["token"], file_token=answer["file_token"])


def _status(call) -> int:
    with pytest.raises(ServiceError) as err:
        call()
    return err.value.status


def _sources(hits: dict) -> set[str]:
    return {h["source_name"] for h in hits["hits"]}


@pytest.mark.slow
def test_a_restricted_source_is_hidden_from_everyone_it_does_not_name(team):
    service, tokens, jobs = team
    ada = _cli(service, tokens["ada"], "source", "access", "payroll", "--allow", "payroll")
    assert ada.returncode == 0 and "readable by payroll" in ada.stdout, ada.stderr
    typo = _cli(service, tokens["ada"], "source", "access", "payroll", "--allow", "payrol")
    assert typo.returncode == 2 and "payrol" in typo.stderr
    denied = _cli(service, tokens["rae"], "source", "access", "payroll", "--clear")
    assert denied.returncode != 0 and "admin" in denied.stderr

    rae, gus, admin = _login(service, "rae"), _login(service, "gus"), _login(service, "ada")
    # the reader: no hit, no count, no page from payroll, whatever the query or the filter
    assert _sources(rae.search(SECRET, k=50, hybrid=True)) == {"handbook"}
    assert _sources(rae.search(SECRET, k=50, hybrid=False)) == {"handbook"}
    assert rae.search(SECRET, sources=["payroll"])["hits"] == []
    assert rae.search(SECRET, glob="payroll/*")["hits"] == []
    assert _status(lambda: rae.document(SECRET_DOC)) == 404
    assert _status(lambda: rae.fetch_file(SECRET_DOC)) == 404
    assert _status(lambda: rae.job(jobs["payroll"]["id"])) == 404
    assert [d["source"] for d in rae.documents()] == [OPEN_DOC]
    assert [s["name"] for s in rae.sources() if s["kind"] == "folder"] == ["handbook"]
    assert {j["source"] for j in rae.jobs()} == {"handbook"}
    status = rae.status()
    assert status["last_ingest"] is None  # the last sync was payroll's: its report names its files
    assert status["points"] == next(s["chunks"] for s in rae.sources() if s["name"] == "handbook")
    # what it may read, it reads
    assert rae.document(OPEN_DOC)["text"].startswith("# Leave")
    assert b"two weeks" in rae.fetch_file(OPEN_DOC)
    listed = json.loads(_cli(service, tokens["rae"], "sources", "--json").stdout)
    assert [s["name"] for s in listed if s["kind"] == "folder"] == ["handbook"]

    # a member of the group, by login and by token, and the admin read both
    for client in (gus, KbClient(service.client.base_url, timeout=60, token=tokens["gus"]), admin):
        hits = client.search(SECRET, k=1, sources=["payroll"])["hits"]
        assert [h["source"] for h in hits] == [SECRET_DOC]
        assert SECRET in client.document(SECRET_DOC)["text"]
        assert {s["name"] for s in client.sources()} >= {"handbook", "payroll"}
    assert SECRET.encode() in gus.fetch_file(SECRET_DOC)
    assert admin.status()["last_ingest"]["job"] == jobs["payroll"]["id"]

    # cleared: every signed-in user reads it again
    assert _cli(service, tokens["ada"], "source", "access", "payroll", "--clear").returncode == 0
    assert [h["source"] for h in rae.search(SECRET, k=1, sources=["payroll"])["hits"]] == [SECRET_DOC]
    assert _cli(service, tokens["ada"], "source", "access", "payroll", "--allow", "payroll").returncode == 0


@pytest.mark.slow
def test_mcp_and_the_library_hide_it_too(team, monkeypatch):
    from streamlit.testing.v1 import AppTest

    service, tokens, _ = team
    admin = KbClient(service.client.base_url, timeout=60, token=tokens["ada"])
    assert admin.source_access("payroll", ["payroll"])["allow"] == ["payroll"]
    url = f"http://127.0.0.1:{service.port}/mcp"

    async def tools(token: str) -> dict:
        async with (
            httpx2.AsyncClient(headers={"Authorization": f"Bearer {token}"}, timeout=60) as http,
            streamable_http_client(url, http_client=http) as (read, write),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            found = await session.call_tool("search", {"query": SECRET, "k": 50})
            listed = await session.call_tool("sources", {})
            got = await session.call_tool("get", {"source": SECRET_DOC})
            return {
                "search": json.loads(found.content[0].text),
                "sources": json.loads(listed.content[0].text),
                "get": got,
            }

    rae = anyio.run(tools, tokens["rae"])
    assert {h["source_name"] for h in rae["search"]["hits"]} == {"handbook"}
    assert rae["sources"]["by_source"] == {"handbook": 1}
    assert rae["get"].is_error and "no indexed document" in rae["get"].content[0].text
    gus = anyio.run(tools, tokens["gus"])
    assert gus["sources"]["by_source"] == {"handbook": 1, "payroll": 1}
    assert not gus["get"].is_error

    monkeypatch.setenv("KB_SERVICE_URL", service.client.base_url)

    def expanders(at: AppTest) -> set[str]:
        return {e.key for e in at.expander if e.key and e.key.startswith("source_")}

    assert expanders(library_as("rae", PASSWORD)) == {"source_handbook"}
    assert expanders(library_as("gus", PASSWORD)) == {"source_handbook", "source_payroll"}
