"""`kb serve` under abuse, for real: floods of heavy and oversized requests, callers without the local
token, folders that would leak kb's own data or files outside the roots, and a guesser at the login."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kb.service.api import ROUTES
from kb.service.auth import FAILED_LOGINS_MAX, Accounts, AuthError, Sessions, TooManyLogins
from kb.service.client import KbClient, ServiceError, forward_key_of
from kb.service.local_token import FORWARD_KEY_FILE, TOKEN_FILE
from kb.service.ratelimit import MAX_KEYS, NAME_FACTOR, LoginLimiter
from kb.settings import Settings
from tests.helpers import modelgen
from tests.service.test_service import GRACEFUL, Service, post_json, wait_done, write_docs

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

ROOT = Path(__file__).resolve().parents[2]
FULL = os.environ.get("KB_SLOW_TESTS") == "1"
STOP_WITHIN_S = 15.0
SEARCH_WITHIN_S = 2.0
HEALTH_WITHIN_S = 0.2
PASSWORD = "correct horse battery"
MEMORY_BOUND_MB = 1536  # the service's peak resident memory through the flood (tiny models)


def status_of(client: KbClient, method: str, path: str, body: bytes | None = None) -> int:
    try:
        client._request(method, path, data=body, content_type="application/json" if body else None)
    except ServiceError as err:
        return err.status or 0
    return 200


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


# --- the local token -------------------------------------------------------------------------------
def test_without_the_local_token_every_route_is_401(qwen3_gguf, tmp_path):
    svc = Service(qwen3_gguf, tmp_path).start()
    try:
        token_file = svc.data_dir / TOKEN_FILE
        assert token_file.stat().st_mode & 0o777 == 0o600 and svc.client.token
        assert "data_dir" in svc.client.health()  # the owner: nothing changes
        stranger = KbClient(svc.client.base_url, timeout=30)
        assert stranger.health() == {"ok": True, "auth": False, "local_token": True}
        forged = KbClient(svc.client.base_url, timeout=30, token="forged")
        checked = 0
        for route in ROUTES:
            if route.path == "/health":
                continue
            path = route.path.replace("{job_id}", "x").replace("{name}", "x")
            for method in sorted(route.methods - {"HEAD"}):
                body = b"{}" if method == "POST" else None
                for client in (stranger, forged):
                    assert status_of(client, method, path, body) == 401, (method, path, client.token)
                checked += 1
        assert checked >= 14
        with pytest.raises(ServiceError) as err:
            stranger.search("anything")
        assert err.value.status == 401 and TOKEN_FILE in str(err.value)
        # a file link carries the derived read-only token, which opens files and nothing else
        assert status_of(KbClient(svc.client.base_url, token=svc.client.file_token), "GET", "/status") == 401

        # the same token on a restart; a token file others can read is refused
        token = svc.client.token
        assert svc.stop() in GRACEFUL
        svc.start()
        assert svc.client.token == token
        assert svc.stop() in GRACEFUL
        token_file.chmod(0o644)
        out = svc.cli("serve")
        assert out.returncode == 1 and "readable by others" in out.stderr
        if os.getuid() == 0:  # another account on this machine cannot read it at all
            token_file.chmod(0o600)
            other = subprocess.run(
                [shutil.which("cat") or "cat", str(token_file)], user=65534, capture_output=True, check=False
            )
            assert other.returncode != 0 and not other.stdout and b"Permission denied" in other.stderr
    finally:
        if svc.running:
            svc.stop(signal.SIGKILL)


def test_kb_auth_off_is_warned_about_even_on_loopback(qwen3_gguf, tmp_path):
    svc = Service(qwen3_gguf, tmp_path, KB_AUTH="off").start()
    try:
        assert KbClient(svc.client.base_url).status()["points"] == 0  # no token needed: the owner chose so
        assert not (svc.data_dir / TOKEN_FILE).exists()
    finally:
        assert svc.stop() in GRACEFUL
    assert "every account on this machine" in svc.log.read_text()


# --- private files ---------------------------------------------------------------------------------
def test_data_folder_hidden_folders_and_links_out_of_the_roots_never_reach_the_index(qwen3_gguf, tmp_path):
    home, outside = tmp_path / "home", tmp_path / "outside"
    (home / "data").mkdir(parents=True)
    outside.mkdir()
    (outside / "secret.md").write_text("# Secret\n\nThe outside canary sings zanzibar.\n")
    (home / "data" / "accounts.json").write_text('{"users": {"ada": {"hash": "scrypt$quokkahash"}}}')
    docs = home / "docs"
    write_docs(docs, 3, stem="doc")
    (docs / "leak.md").symlink_to(outside / "secret.md")
    (docs / "accounts.json").symlink_to(home / "data" / "accounts.json")
    (docs / "inside.md").symlink_to(docs / "doc000.md")  # a link within the roots stays
    (home / ".ssh").mkdir()
    (home / ".ssh" / "id_rsa").write_text("PRIVATE KEY quokkakey\n")
    svc = Service(qwen3_gguf, home, KB_INGEST_ROOTS=str(home)).start()
    try:
        for path, why in ((home, "contains kb's own data"), (home / ".ssh", "hidden")):
            with pytest.raises(ServiceError) as err:
                svc.client.submit_folder(path)
            assert err.value.status == 403 and why in str(err.value)
        job = wait_done(svc.client, svc.client.submit_folder(docs)["id"])
        assert job["state"] == "done", job
        skipped = {s["path"]: s["reason"] for s in job["report"]["skipped"]}
        assert (
            "outside the folders" in skipped["docs/leak.md"]
            and "data folder" in skipped["docs/accounts.json"]
        )
        assert "docs/inside.md" in job["report"]["indexed"]
        for query in ("zanzibar outside canary", "quokkahash scrypt users", "quokkakey PRIVATE KEY"):
            hits = svc.client.search(query, k=50)["hits"]
            assert {h["path"] for h in hits} <= {"doc000.md", "doc001.md", "doc002.md", "inside.md"}
            assert not any("quokka" in h["text"] or "zanzibar" in h["text"] for h in hits)

        # the folder is checked again when its job runs: replaced by a link out of the roots meanwhile
        write_docs(home / "big", 40, words=120, stem="big")
        write_docs(home / "later", 2, stem="later")
        first = svc.client.submit_folder(home / "big")
        second = svc.client.submit_folder(home / "later")
        (home / "later").rename(home / "later-moved")
        (home / "later").symlink_to(outside, target_is_directory=True)
        assert wait_done(svc.client, first["id"])["state"] == "done"
        late = wait_done(svc.client, second["id"])
        assert late["state"] == "failed" and "outside the folders" in late["error"], late
    finally:
        assert svc.stop() in GRACEFUL


# --- budgets ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def limited(qwen3_gguf, tmp_path_factory):
    reranker = modelgen.build(modelgen.ModelSpec(kind="reranker", seed=1))
    home = tmp_path_factory.mktemp("limited")
    svc = Service(
        qwen3_gguf,
        home,
        KB_RERANK_MODEL=str(reranker),
        KB_RERANK_MAX_CANDIDATES="200",
        KB_RERANK_CONCURRENCY="1",
        KB_BUSY_WAITING="1",
    ).start()
    job = wait_done(
        svc.client, svc.client.submit_folder(write_docs(home / "base", 1) and home / "base")["id"]
    )
    assert job["state"] == "done", job
    write_docs(home / "many", 210, stem="many")
    assert wait_done(svc.client, svc.client.submit_folder(home / "many")["id"])["state"] == "done"
    yield svc
    if svc.running:
        svc.stop(signal.SIGKILL)


def test_oversized_requests_are_refused_before_they_are_parsed(limited):
    client = limited.client
    huge = b'{"query": "' + b"x" * (10 << 20) + b'"}'
    assert status_of(client, "POST", "/search", huge) == 413
    assert status_of(client, "POST", "/v1/embeddings", huge) == 413
    for body, why in (
        ({"query": "x" * 5000}, "KB_QUERY_MAX_CHARS"),
        ({"query": "x", "k": 201}, "k must be"),
        ({"query": "x", "k": 0}, "k must be"),
    ):
        status, answer = post_json(client, "/search", body)
        assert status == 400 and why in answer["error"], answer
    status, answer = post_json(client, "/v1/embeddings", {"input": ["word"] * 257})
    assert status == 400 and "KB_EMBED_MAX_INPUTS" in answer["error"]["message"]
    status, answer = post_json(client, "/v1/embeddings", {"input": ["word " * 1000] * 100})
    assert status == 400 and "KB_EMBED_MAX_TOKENS" in answer["error"]["message"]
    assert client.search("topic term", k=5)["hits"]  # and the service is as it was


def test_heavy_requests_past_their_slots_get_429_with_retry_after(limited):
    def rerank(_: int) -> tuple[int, str | None]:
        try:
            limited.client.search("topic term", k=200, rerank=True)
        except ServiceError as err:
            return err.status or 0, str(err)
        return 200, None

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for s, _ in pool.map(rerank, range(8))]
    assert statuses.count(200) >= 1 and statuses.count(429) >= 1, statuses
    assert set(statuses) <= {200, 429}
    req = {"query": "topic term", "k": 200, "rerank": True}
    with ThreadPoolExecutor(6) as pool:  # the header, as a client sees it
        answers = list(pool.map(lambda _: _post_raw(limited.client, "/search", req), range(6)))
    assert any(status == 429 and headers.get("retry-after") == "2" for status, headers in answers), answers


def _post_raw(client: KbClient, path: str, body: dict) -> tuple[int, dict]:
    import urllib.error
    import urllib.request

    from tests.service.test_service import authorized

    req = authorized(
        client, client.base_url + path, json.dumps(body).encode(), **{"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}
    except urllib.error.HTTPError as err:
        with err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}


def run_flood(limited: Service, seconds: float, rerankers: int, bodies: int, embedders: int) -> None:
    """The flood from another process while this one searches, checks health and ingests; then a stop."""
    svc, client = limited, limited.client
    names = write_docs(
        svc.home / "many", 30, words=60, stem=f"during{rerankers}-"
    )  # new files beside the old
    args = [client.base_url, client.token, str(seconds), str(rerankers), str(bodies), str(embedders)]
    flood = subprocess.Popen(
        [sys.executable, "-m", "tests.helpers.flood", *args], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        time.sleep(min(2.0, seconds / 4))  # the flood is on
        job = client.submit_folder(svc.home / "many")
        searches, healths = [], []
        while flood.poll() is None:
            t = time.perf_counter()
            assert "data_dir" in client.health(timeout=5)
            healths.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert client.search("topic7 term", k=5)["hits"]
            searches.append(time.perf_counter() - t)
            time.sleep(0.05)
        counts = json.loads(flood.communicate(timeout=120)[0])
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.communicate()
    done = wait_done(client, job["id"])
    print(
        f"\nflood {counts}; {len(searches)} searches, slowest {max(searches):.2f} s; "
        f"slowest health {max(healths) * 1000:.0f} ms; peak memory {peak_rss_mb(svc.proc.pid):.0f} MB"
    )
    assert len(searches) >= 3
    assert max(searches) < SEARCH_WITHIN_S
    # /health within 200 ms for 9 probes in 10; on 2 shared cores the scheduler alone can add a stray 100 ms
    assert sorted(healths)[int(len(healths) * 0.9)] < HEALTH_WITHIN_S and max(healths) < 5 * HEALTH_WITHIN_S
    # nothing lost: every file of the folder is in the index, complete (a sync the folder's watch began may
    # have indexed some first, so this job may find them unchanged)
    want = {f"many/{n}" for n in names}
    report = done["report"]
    assert done["state"] == "done" and want <= set(report["indexed"] + report["unchanged"]), report
    stored = {d["source"]: d for d in client.documents() if d["source"] in want}
    assert set(stored) == want and all(d["complete"] for d in stored.values())
    assert set(counts["body"]) <= {"413", "error"} and set(counts["embed"]) <= {"400", "413", "429", "error"}
    assert counts["rerank"].get("200") and counts["rerank"].get("429")
    assert peak_rss_mb(svc.proc.pid) < MEMORY_BOUND_MB
    started = time.monotonic()
    assert svc.stop() in GRACEFUL
    assert time.monotonic() - started < STOP_WITHIN_S


def test_a_flood_stalls_no_one_and_a_stop_still_stops(limited):
    """Sized for the suite (the issue's full flood: KB_SLOW_TESTS=1 runs the next test)."""
    run_flood(limited, seconds=8, rerankers=8, bodies=8, embedders=4)
    limited.start()


@pytest.mark.slow
@pytest.mark.skipif(not FULL, reason="the full flood takes minutes: KB_SLOW_TESTS=1")
def test_the_full_flood(limited):
    run_flood(limited, seconds=60, rerankers=64, bodies=64, embedders=32)
    limited.start()


# --- logins ----------------------------------------------------------------------------------------
def test_login_limiter_holds_five_guesses_per_window_under_a_hundred_parallel_attempts(tmp_path):
    accounts = Accounts(tmp_path / "accounts.json")
    accounts.set_user("ada", PASSWORD, "admin")
    sessions = Sessions(accounts, hours=1.0)
    checked = []

    def guess(i: int) -> str:
        try:
            sessions.login("ada", f"guess number {i}", "10.0.0.66")
        except TooManyLogins:
            return "limited"
        except AuthError:
            checked.append(i)
            return "wrong"
        return "in"

    with ThreadPoolExecutor(100) as pool:
        outcomes = list(pool.map(guess, range(100)))
    assert (
        outcomes.count("wrong") == FAILED_LOGINS_MAX and outcomes.count("limited") == 100 - FAILED_LOGINS_MAX
    )
    with pytest.raises(TooManyLogins):  # the guesser's address waits the window out, right password or not
        sessions.login("ada", PASSWORD, "10.0.0.66")
    assert (
        sessions.login("ada", PASSWORD, "10.0.0.7")["role"] == "admin"
    )  # the admin elsewhere is not locked out
    # names made up by a guesser do not grow the tables without end
    for i in range(200):
        with pytest.raises(AuthError):
            sessions.login(f"nobody{i}", "x", f"10.1.{i // 250}.{i % 250}")
    assert len(sessions.limiter._pairs.rows) <= MAX_KEYS


def test_many_addresses_cannot_lock_the_admin_out():
    now = [0.0]
    limiter = LoginLimiter(5, 300.0, clock=lambda: now[0])
    for i in range(5 * NAME_FACTOR):  # a guesser spread over many addresses uses up the name's budget
        wait, _ = limiter.reserve(f"10.0.{i}.1", "ada")
        assert wait is None
    assert limiter.reserve("10.0.0.1", "ada")[0] is not None  # addresses that failed wait
    assert limiter.reserve("192.168.1.5", "ada")[0] is None  # one that never failed is let through
    for _ in range(5):
        limiter.reserve("10.9.9.9", f"name{_}")
    wait, _ = limiter.reserve("10.9.9.9", "other")  # an address spraying names backs off
    assert wait is not None and 0 < wait <= 1.0
    now[0] += 301
    assert limiter.reserve("10.0.0.1", "ada")[0] is None  # a window later, everyone may try again


def test_service_login_body_is_tiny_and_guesses_get_429(qwen3_gguf, tmp_path):
    (tmp_path / "data").mkdir()
    Accounts(tmp_path / "data" / "accounts.json").set_user("ada", PASSWORD, "admin")
    svc = Service(qwen3_gguf, tmp_path, KB_AUTH="on").start()
    try:
        client = svc.client
        huge = json.dumps({"username": "ada", "password": "x" * 4096}).encode()
        assert status_of(client, "POST", "/auth/login", huge) == 413
        statuses = []
        for i in range(7):
            try:
                client.login("ada", f"wrong guess {i}")
            except ServiceError as err:
                statuses.append(err.status)
        assert statuses == [401] * FAILED_LOGINS_MAX + [429, 429]
        # another local process forging X-Forwarded-For is still counted by its own address
        with pytest.raises(ServiceError) as forged:
            client.login("ada", PASSWORD, client_address="10.0.0.8", forward_key="a guess")
        assert forged.value.status == 429
        # the app, which reads the forward key in the data folder, speaks for a browser: it gets in
        key_file = svc.data_dir / FORWARD_KEY_FILE
        assert key_file.stat().st_mode & 0o777 == 0o600
        key = forward_key_of(Settings(data_dir=svc.data_dir))
        assert client.login("ada", PASSWORD, client_address="10.0.0.8", forward_key=key)["role"] == "admin"
    finally:
        assert svc.stop() in GRACEFUL
