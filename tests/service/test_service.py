"""`kb serve` for real: the service in its own process on a free port, the tiny Qwen3 GGUF, the
embedded store under a temporary data folder, and the CLI and the client talking to it."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from ingest.pipeline import owns
from kb.cli.main import main as kb_main
from kb.contract import UPLOAD_SOURCE
from kb.service.client import KbClient, ServiceError
from kb.service.core import UPLOAD_NAME, UPLOAD_SCOPE, safe_upload_name
from kb.service.local_token import file_token, read_token
from kb.tools.evaluate import REPORT_DIR
from tests.helpers import modelgen
from tests.helpers.evalreports import PNG_MAGIC, backdate, write_sample

START_TIMEOUT_S = 60
JOB_TIMEOUT_S = 60
GRACEFUL = (0, -signal.SIGTERM)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kb_env(model: Path, data_dir: Path, port: int) -> dict[str, str]:
    """The environment of every kb process here: no KB_* of the caller's, a tiny fast model."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KB_")}
    return {
        **env,
        "KB_EMBED_MODEL": str(model),
        "KB_N_CTX": "4096",
        "KB_N_BATCH": "512",
        "KB_N_UBATCH": "512",
        "KB_DATA_DIR": str(data_dir),
        "KB_SERVICE_PORT": str(port),
        "KB_PARSE_WORKERS": "1",
        "KB_CHUNK_TOKENS": "128",
        "KB_CHUNK_OVERLAP": "16",
    }


class Service:
    """`python -m kb.cli.main serve` as a child process."""

    def __init__(self, model: Path, home: Path, **env: str) -> None:
        self.home, self.data_dir, self.port = home, home / "data", free_port()
        self.env = {**kb_env(model, self.data_dir, self.port), **env}
        self.client = KbClient(f"http://127.0.0.1:{self.port}", timeout=30)
        self.proc: subprocess.Popen | None = None
        self.log = home / "serve.log"

    def start(self) -> Service:
        with self.log.open("a") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "kb.cli.main", "serve"],
                cwd=self.home,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"kb serve exited {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                self.client.health(timeout=0.5)
                self.trust()
                return self
            except ServiceError:
                time.sleep(0.1)
        self.stop(signal.SIGKILL)
        raise AssertionError(f"kb serve did not answer:\n{self.log.read_text()}")

    def trust(self) -> None:
        """Give the client the local token the service wrote (none with team access on)."""
        token = read_token(self.data_dir)
        self.client.token, self.client.file_token = token, token and file_token(token)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """The exit status; uvicorn re-raises SIGTERM after its graceful shutdown, hence -SIGTERM."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout=30)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "kb.cli.main", *args],
            cwd=self.home,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


@pytest.fixture(scope="module")
def service(qwen3_gguf, tmp_path_factory):
    reranker = modelgen.build(modelgen.ModelSpec(kind="reranker", seed=1))
    svc = Service(
        qwen3_gguf, tmp_path_factory.mktemp("service"), KB_RERANK_MODEL=str(reranker), KB_UPLOAD_MAX_MB="1"
    ).start()
    yield svc
    assert svc.stop() in GRACEFUL, svc.log.read_text()


@pytest.fixture()
def own_service(qwen3_gguf, tmp_path):
    """A service of the test's own, which it stops and starts; killed if the test leaves it running."""
    svc = Service(qwen3_gguf, tmp_path)
    yield svc
    if svc.running:
        svc.stop(signal.SIGKILL)


def write_docs(root: Path, n: int, words: int = 12, stem: str = "note") -> list[str]:
    """Markdown files; sources are relative to the folder, so each test picks its own ``stem``."""
    root.mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(n):
        name = f"{stem}{i:03d}.md"
        body = " ".join(f"term{(i * 31 + j) % 997} topic{i}" for j in range(words))
        (root / name).write_text(f"# Note {i}\n\nNote {i} is about topic{i}. {body}\n", encoding="utf-8")
        names.append(name)
    return names


def wait_done(client: KbClient, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} still {job['state']}")


def authorized(
    client: KbClient, url: str, data: bytes | None = None, **headers: str
) -> urllib.request.Request:
    """A request to the service carrying the client's token (the local token: team access off)."""
    return urllib.request.Request(url, data, {**headers, "Authorization": f"Bearer {client.token}"})


def post_json(client: KbClient, path: str, body: dict) -> tuple[int, dict]:
    req = authorized(
        client, client.base_url + path, json.dumps(body).encode(), **{"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        with err:
            return err.code, json.loads(err.read())


def test_upload_names_are_generated_and_scopes_separate_uploads_from_folders():
    for hostile in [*HOSTILE_NAMES, "", "a" * 300 + ".md", "x.tar.gz", "résumé 2024.PDF", "..", "a/b/.."]:
        name = safe_upload_name(hostile)
        assert UPLOAD_NAME.fullmatch(name) and "/" not in name and ".." not in name and name.isprintable()
    assert safe_upload_name("notes.MD").endswith("-notes.md")
    assert safe_upload_name("résumé 2024.PDF").endswith("-résumé_2024.pdf")
    assert safe_upload_name("a.md") != safe_upload_name("a.md")
    assert owns("docs", "docs/a.md") and not owns("docs", UPLOAD_SCOPE + "x.md")
    assert owns(UPLOAD_SOURCE, UPLOAD_SCOPE + "x.md") and not owns("docs", "docs2/a.md")


def test_status_describes_the_loaded_model_and_store(service):
    st = service.client.status()
    assert st["data_dir"] == str(service.data_dir.resolve())
    assert st["dim"] == 64 and st["device"] in ("CPU", "GPU") and isinstance(st["patched_engine"], bool)
    assert st["model"].endswith(".gguf") and 0 < st["model_load_s"] < 60
    assert isinstance(st["points"], int) and isinstance(st["jobs"], dict)
    assert "vram" in st and (st["device"] == "GPU" or st["vram"] is None)


def test_folder_job_runs_to_done_with_report_and_documents(service, tmp_path):
    names = write_docs(tmp_path / "docs", 4)
    (tmp_path / "docs" / "blob.bin").write_bytes(b"\x00\x01" * 64)
    job = service.client.submit_folder(tmp_path / "docs", origin="ui")
    assert (
        job["state"] == "queued"
        and job["origin"] == "ui"
        and job["path"] == str((tmp_path / "docs").resolve())
    )
    done = service.client.wait(job["id"], poll=0.1)
    assert done["state"] == "done", done["error"]
    report = done["report"]
    names = [f"docs/{n}" for n in names]
    assert report["indexed"] == names and report["chunks"] >= 4 and report["tokens"] > 0
    assert [s["path"] for s in report["skipped"]] == ["docs/blob.bin"]
    p = done["progress"]
    assert p["files_done"] == p["files_total"] == 5 and p["chunks"] == report["chunks"]
    assert service.client.status()["last_ingest"]["job"] == job["id"]
    docs = {d["source"]: d for d in service.client.documents()}
    assert (
        set(docs) >= set(names)
        and docs["docs/note000.md"]["kind"] == "markdown"
        and docs["docs/note000.md"]["complete"]
        and (docs["docs/note000.md"]["source_name"], docs["docs/note000.md"]["path"])
        == ("docs", "note000.md")
    )
    hits = service.client.search("topic2", k=3, hybrid=True)["hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3] and {h["source"] for h in hits} <= set(names)
    with urllib.request.urlopen(service.client.file_url("docs/note001.md")) as resp:
        assert resp.read() == (tmp_path / "docs" / "note001.md").read_bytes()
    for outside in ("../secret.txt", "/etc/hostname", "docs/../../secret.txt"):
        (tmp_path / "secret.txt").write_text("secret")
        with pytest.raises(ServiceError) as err:
            service.client._request("GET", "/files", params={"source": outside})
        assert err.value.status in (403, 404)
    with pytest.raises(ServiceError) as err:  # kb's own data is not a folder to ingest
        service.client.submit_folder(service.data_dir / "uploads")
    assert err.value.status == 400


def test_eval_reports_are_listed_with_the_newest_inline_and_charts_served(service):
    client = service.client
    assert client.eval_reports() == {"reports": [], "report": None}
    out = service.data_dir / REPORT_DIR
    old = backdate(out, write_sample(out, "older", ("small",)))
    new = write_sample(out)
    answer = client.eval_reports()
    assert [r["name"] for r in answer["reports"]] == [new, old]
    inline = answer["report"]
    assert inline["name"] == new and inline["data"] == json.loads((out / f"{new}.json").read_text())
    assert inline["markdown"] == (out / f"{new}.md").read_text() and inline["png"].endswith(f"{new}.png")
    assert [r["config"]["name"] for r in client.eval_reports(old)["report"]["data"]["results"]] == ["small"]
    assert client.eval_chart(old) == (out / f"{old}.png").read_bytes()
    with urllib.request.urlopen(authorized(client, f"{client.base_url}/eval/reports/{new}/chart")) as resp:
        assert resp.read()[:8] == PNG_MAGIC and resp.headers["Content-Type"] == "image/png"
        assert resp.headers["Content-Security-Policy"] == "sandbox"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    (service.data_dir / "secret.json").write_text("{}")  # what "../../secret" would name
    for bad in ("../x", "a/b", "..", "../../secret", ".hidden", "missing"):
        with pytest.raises(ServiceError) as err:
            client.eval_reports(bad)
        assert err.value.status == (404 if bad == "missing" else 400), bad
        with pytest.raises(ServiceError) as err:  # a name with a slash matches no route at all
            client.eval_chart(bad)
        assert err.value.status in (400, 404), bad
    for name in ("../x", "a/b", "..%2F..%2Fsecret"):
        with pytest.raises(urllib.error.HTTPError) as http:
            urllib.request.urlopen(authorized(client, f"{client.base_url}/eval/reports/{name}/chart"))
        http.value.close()
        assert http.value.code in (400, 404), name


def test_cli_ingest_goes_through_the_running_service(service, tmp_path):
    names = write_docs(tmp_path / "cli-docs", 3, stem="cli")
    # the job the CLI submitted is the proof it went through the service (which also holds the store's lock)
    out = service.cli("ingest", str(tmp_path / "cli-docs"), "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["indexed"] == [f"cli-docs/{n}" for n in names]
    cli_jobs = [j for j in service.client.jobs() if j["path"] == str((tmp_path / "cli-docs").resolve())]
    assert len(cli_jobs) == 1 and cli_jobs[0]["origin"] == "cli" and cli_jobs[0]["state"] == "done"
    assert service.client.job(cli_jobs[0]["id"])["report"] == report  # the listing is brief; one job is whole
    missing = service.cli("ingest", str(tmp_path / "nowhere"))
    assert missing.returncode == 1 and "not a folder" in missing.stderr


def test_searches_answer_during_a_running_ingest(service, tmp_path):
    write_docs(tmp_path / "big", 40, words=120, stem="big")  # ~25k tokens: two embed batches and store writes
    job = service.client.submit_folder(tmp_path / "big")
    while service.client.job(job["id"])["state"] == "queued":
        time.sleep(0.02)
    latencies, during, while_writing = [], 0, 0
    while True:
        t = time.perf_counter()
        result = service.client.search("topic7 term", k=5, hybrid=True)
        latencies.append(time.perf_counter() - t)
        assert "hits" in result and set(result["timings_ms"]) >= {"embed", "store"}
        state = service.client.job(job["id"])
        if state["state"] != "running":
            break
        during += 1
        while_writing += state["progress"].get("chunks", 0) > 0
    assert state["state"] == "done", state["error"]
    ms = np.array(latencies) * 1000
    print(
        f"\n{during} searches during the ingest ({while_writing} while chunks were being written): p50 "
        f"{np.median(ms):.1f} ms, p95 {np.percentile(ms, 95):.1f} ms, max {ms.max():.1f} ms"
    )
    assert during >= 5  # a search blocked for the whole job would only return once it was done
    assert np.median(ms) < 1000


def test_concurrent_searches_agree_and_rerank_loads_once(service):
    def dense(**kw) -> dict:  # dense only: fused scores have ties, in no stable order
        return service.client.search("topic3 term", hybrid=False, **kw)

    first = dense(k=5)["hits"]
    assert first and not service.client.status()["reranker_loaded"]
    with ThreadPoolExecutor(8) as pool:  # the query context is shared: a race would change or crash results
        many = list(pool.map(lambda i: dense(k=5)["hits"], range(24)))
    assert all(hits == first for hits in many)
    with ThreadPoolExecutor(3) as pool:
        reranked = list(pool.map(lambda i: dense(k=3, rerank=True), range(3)))
    assert all(r["hits"] == reranked[0]["hits"] for r in reranked) and "rerank" in reranked[0]["timings_ms"]
    assert all("rerank_score" in h and "retrieval_score" in h for h in reranked[0]["hits"])
    assert service.client.status()["reranker_loaded"]


def test_openai_embeddings_equal_the_document_embedder(service, qwen3_embedder):
    texts = ["Tomatoes need full sun.", "向量数据库用于存储嵌入向量。", "def f(x):\n    return x"]
    status, answer = post_json(service.client, "/v1/embeddings", {"input": texts, "model": "any"})
    assert status == 200 and answer["object"] == "list" and answer["model"].endswith(".gguf")
    assert [d["index"] for d in answer["data"]] == [0, 1, 2] and answer["data"][0]["object"] == "embedding"
    got = np.array([d["embedding"] for d in answer["data"]], dtype=np.float32)
    want = qwen3_embedder.embed_documents(texts)
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got, want, atol=2e-4)
    assert answer["usage"]["prompt_tokens"] == sum(qwen3_embedder.count_tokens(t) for t in texts)
    np.testing.assert_allclose(service.client.embeddings(texts), got, atol=1e-6)  # base64 path
    status, one = post_json(service.client, "/v1/embeddings", {"input": texts[0], "dimensions": 32})
    cut = np.array(one["data"][0]["embedding"])
    assert status == 200 and cut.shape == (32,) and abs(np.linalg.norm(cut) - 1) < 1e-5
    status, bad = post_json(service.client, "/v1/embeddings", {"input": [[1, 2, 3]]})
    assert status == 400 and bad["error"]["type"] == "invalid_request_error"


HOSTILE_NAMES = [
    "../../etc/passwd",
    "CON",
    "a\x01b\x1b[31m.md",
    "..\\..\\boot.ini",
    "/abs/notes.txt",
    "....",
    "nul.txt.",
    "\u202eevil\u202dtxt.md",
]


def test_hostile_upload_names_stay_under_uploads_with_generated_names(service):
    files = [
        (name, f"# Upload {i}\n\nuploaded text number {i}\n".encode()) for i, name in enumerate(HOSTILE_NAMES)
    ]
    answer = service.client.upload(files)
    assert [f["original_name"] for f in answer["files"]] == HOSTILE_NAMES
    uploads = service.data_dir / "uploads"
    stored = []
    for f in answer["files"]:
        assert f["source"].startswith(UPLOAD_SCOPE)
        name = f["source"][len(UPLOAD_SCOPE) :]
        assert UPLOAD_NAME.fullmatch(name) and name.isprintable() and (uploads / name).is_file()
        stored.append(name)
    assert sorted(p.name for p in uploads.rglob("*")) == sorted(stored)  # nothing else, no subfolders
    assert not (service.home / "etc").exists() and not (service.data_dir / "etc").exists()
    assert wait_done(service.client, answer["job"]["id"])["state"] == "done"
    docs = {d["source"]: d for d in service.client.documents()}
    for f in answer["files"]:
        assert docs[f["source"]]["original_name"] == f["original_name"]
        assert docs[f["source"]]["origin"] == "upload"
    with urllib.request.urlopen(service.client.file_url(answer["files"][0]["source"])) as resp:
        assert resp.read() == files[0][1]
        assert resp.headers["content-disposition"] == 'inline; filename="passwd"'  # the name's last part only
    again = service.client.upload([*files[:1], ("clip.MP4", b"\x00\x00\x00\x18ftypmp42")])
    assert again["files"][0]["duplicate"] and again["files"][0]["source"] == answer["files"][0]["source"]
    assert [r["original_name"] for r in again["rejected"]] == ["clip.MP4"]
    assert len(list(uploads.iterdir())) == len(HOSTILE_NAMES)  # neither the duplicate nor the image stored
    with pytest.raises(ServiceError) as err:
        service.client.upload([("only.zip", b"PK")])
    assert err.value.status == 400 and "unsupported" in str(err.value)
    with pytest.raises(ServiceError) as err:  # KB_UPLOAD_MAX_MB=1; the client hears it, no broken pipe
        service.client.upload([("big.txt", b"a" * (3 << 20))])
    assert err.value.status == 413 and len(list(uploads.iterdir())) == len(HOSTILE_NAMES)
    for sneaky in (UPLOAD_SCOPE + "../jobs.sqlite", UPLOAD_SCOPE + stored[0] + "/../../jobs.sqlite"):
        with pytest.raises(ServiceError) as err:
            service.client._request("GET", "/files", params={"source": sneaky})
        assert err.value.status == 404


def test_delete_document_removes_points_and_upload(service):
    answer = service.client.upload([("delete-me.md", b"# Delete me\n\ntext to be deleted\n")])
    assert wait_done(service.client, answer["job"]["id"])["state"] == "done"
    source = answer["files"][0]["source"]
    before = service.client.status()["points"]
    assert source in {d["source"] for d in service.client.documents()}
    result = service.client.delete_document(source)
    assert result["deleted"] == source and result["points"] >= 1 and result["file_removed"]
    assert source not in {d["source"] for d in service.client.documents()}
    assert service.client.status()["points"] == before - result["points"]
    assert not (service.data_dir / "uploads" / source[len(UPLOAD_SCOPE) :]).exists()
    with pytest.raises(ServiceError) as err:
        service.client.delete_document(source)
    assert err.value.status == 404


def test_cross_site_writes_and_foreign_hosts_are_refused(service):
    headers = {"Content-Type": "application/json", "Origin": "https://evil.example"}
    req = urllib.request.Request(service.client.base_url + "/jobs/folder", b'{"path": "/"}', headers)
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    err.value.close()
    assert err.value.code == 403
    req = urllib.request.Request(service.client.base_url + "/status", headers={"Host": "evil.example"})
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=10)
    err.value.close()
    assert err.value.code == 400


def job_states(svc: Service) -> dict[str, str]:
    db = sqlite3.connect(svc.data_dir / "jobs.sqlite")
    try:
        return dict(db.execute("SELECT id, state FROM jobs").fetchall())
    finally:
        db.close()


@pytest.mark.slow
def test_jobs_resume_after_crash_and_stop_and_cli_paths_agree(own_service, tmp_path, monkeypatch, capsys):
    svc = own_service.start()
    names = [f"docs/{n}" for n in write_docs(tmp_path / "docs", 12, stem="kept")]
    first = svc.client.submit_folder(tmp_path / "docs")
    second = svc.client.upload([("late.md", b"# Late\n\nqueued behind the folder\n")])["job"]
    while svc.client.job(first["id"])["state"] == "queued":
        time.sleep(0.02)
    assert svc.stop(signal.SIGKILL) == -signal.SIGKILL  # a crash: the running job is left "running"
    assert job_states(svc) == {first["id"]: "running", second["id"]: "queued"}
    svc.start()
    resumed, late = wait_done(svc.client, first["id"]), wait_done(svc.client, second["id"])
    assert resumed["state"] == late["state"] == "done"
    assert sorted(resumed["report"]["indexed"] + resumed["report"]["unchanged"]) == names
    assert late["report"]["indexed"] == [
        d["source"] for d in svc.client.documents() if d["origin"] == "upload"
    ]

    (tmp_path / "docs" / "kept000.md").write_text("# Kept 0\n\nrewritten while the service was down\n")
    third = svc.client.submit_folder(tmp_path / "docs")
    while svc.client.job(third["id"])["state"] == "queued":
        time.sleep(0.02)
    assert svc.stop() in GRACEFUL  # graceful: the running job is cut off and goes back to the queue
    assert job_states(svc)[third["id"]] == "queued"
    svc.start()
    rerun = wait_done(svc.client, third["id"])["report"]
    assert sorted(rerun["updated"] + rerun["unchanged"]) == names and rerun["removed"] == []
    assert late["report"]["indexed"][0] in {d["source"] for d in svc.client.documents()}  # uploads outlive it

    # the same commands through the service and in this process print the same
    for key, value in svc.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    search_args = ["search", "topic7 term", "--k", "5", "--no-hybrid", "--json"]  # dense: no ties to order
    ingest_args = ["ingest", str(tmp_path / "docs"), "--json"]
    assert kb_main(search_args) == 0 and kb_main(ingest_args) == 0
    via_service = capsys.readouterr().out
    assert svc.stop() in GRACEFUL
    assert kb_main(search_args) == 0 and kb_main(ingest_args) == 0
    in_process = capsys.readouterr().out

    def comparable(out: str) -> list:
        """The JSON documents printed, one after the other, without the ingest's duration."""
        decoder, values, i, out = json.JSONDecoder(), [], 0, out.strip()
        while i < len(out):
            value, i = decoder.raw_decode(out, i)
            values.append(
                {k: v for k, v in value.items() if k != "seconds"} if isinstance(value, dict) else value
            )
            while i < len(out) and out[i].isspace():
                i += 1
        return values

    assert comparable(via_service) == comparable(in_process)
    assert len(comparable(in_process)[0]) == 5 and comparable(in_process)[1]["unchanged"] == names
