"""Named sources through the real service (`kb serve` in a subprocess, the tiny Qwen3 GGUF, the
embedded store): folders side by side, the registry shared with an in-process CLI run and kept over
restarts, sync safety, cancelled jobs, and jobs that a dying service cut off twice."""

from __future__ import annotations

import json
import signal
import time

import pytest

from ingest.store import make_store
from kb.service.client import KbClient
from kb.settings import Settings
from tests.service.test_service import Service, write_docs

pytestmark = pytest.mark.slow  # the module's fixtures start services or build models: `make test` only

JOB_TIMEOUT_S = 120


def finished(client: KbClient, job_id: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["state"] in ("done", "failed", "cancelled"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {job['state']}")


def until_running(client: KbClient, job_id: str, chunks: int = 0) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        job = client.job(job_id)
        if job["state"] == "running" and (job["progress"] or {}).get("chunks", 0) >= chunks:
            return job
        assert job["state"] in ("queued", "running"), job
        time.sleep(0.02)
    raise AssertionError(f"job {job_id} never ran")


def listing(sources: list[dict]) -> list[tuple]:
    return [(s["name"], s["path"], s["files"], s["chunks"], s["watch"]) for s in sources]


@pytest.fixture()
def svc(qwen3_gguf, tmp_path):
    service = Service(qwen3_gguf, tmp_path, KB_EMBED_BATCH_TOKENS="256", KB_WATCH="off")
    yield service
    if service.running:
        service.stop(signal.SIGKILL)


@pytest.mark.slow
def test_two_folders_through_the_service_one_registry_everywhere(svc, tmp_path):
    a, b = tmp_path / "docs-a", tmp_path / "notes"
    write_docs(a, 3, stem="alpha")
    write_docs(b, 2, stem="beta")
    (a / "README.md").write_text("# A\n\nThe albatross handbook.\n")
    (b / "README.md").write_text("# B\n\nThe zeppelin minutes.\n")
    svc.start()
    first = svc.cli("ingest", str(a), "--json")
    second = svc.cli("ingest", str(b), "--json")
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert json.loads(first.stdout)["removed"] == [] and json.loads(second.stdout)["removed"] == []
    assert len(json.loads(second.stdout)["indexed"]) == 3
    sources = svc.client.sources()
    assert listing(sources)[:2] == [
        ("docs-a", str(a.resolve()), 4, 4, True),
        ("notes", str(b.resolve()), 3, 3, True),
    ]
    hits = svc.client.search("zeppelin albatross", k=10, hybrid=True, sources=["notes"])["hits"]
    assert hits and {h["source_name"] for h in hits} == {"notes"}
    assert "notes/README.md" in {h["source"] for h in hits}
    readme = next(h for h in hits if h["source"] == "notes/README.md")
    assert readme["path"] == "README.md"

    svc.stop()
    in_process = svc.cli("sources", "--json")
    assert in_process.returncode == 0, in_process.stderr
    assert listing(json.loads(in_process.stdout)) == listing(sources)
    svc.start()  # the registry survives a restart
    assert listing(svc.client.sources()) == listing(sources)

    removed = svc.cli("source", "remove", "notes")
    assert removed.returncode == 0 and "3 files" in removed.stdout
    assert [s["name"] for s in svc.client.sources()] == ["docs-a", "uploads"]
    assert {d["source_name"] for d in svc.client.documents()} == {"docs-a"}
    assert svc.cli("source", "remove", "notes").returncode == 2  # no such source: a usage error


def test_a_folder_gone_or_emptied_is_never_emptied_by_a_sync(svc, tmp_path):
    docs = tmp_path / "docs"
    write_docs(docs, 4)
    svc.start()
    assert svc.cli("ingest", str(docs)).returncode == 0
    points = svc.client.status()["points"]
    docs.rename(tmp_path / "renamed")
    refused = svc.cli("ingest", "--name", "docs")
    assert refused.returncode == 1 and str(docs) in refused.stderr and "--allow-empty" in refused.stderr
    job = svc.client.jobs()[0]
    assert job["state"] == "failed" and job["error_type"] == "SyncRefused"
    assert svc.client.status()["points"] == points
    (tmp_path / "renamed").rename(docs)
    for f in list(docs.iterdir())[:3]:
        f.unlink()
    refused = svc.cli("ingest", "--name", "docs")
    assert refused.returncode == 1 and "3 of the 4" in refused.stderr
    assert svc.client.jobs()[0]["summary"]["would_remove"] == 3  # the listing counts, the job names them
    assert len(svc.client.job(svc.client.jobs()[0]["id"])["report"]["would_remove"]) == 3
    assert svc.client.status()["points"] == points
    allowed = svc.cli("ingest", "--name", "docs", "--allow-empty", "--json")
    assert allowed.returncode == 0 and len(json.loads(allowed.stdout)["removed"]) == 3


@pytest.mark.slow
def test_a_cancelled_ingest_stops_between_batches_and_the_next_sync_finishes_it(svc, tmp_path):
    docs = tmp_path / "big"
    # ~3 chunks a file, ~2 a batch: far more than can be written between the cancel and its batch end
    names = write_docs(docs, 96, words=80, stem="big")
    svc.start()
    job = svc.client.submit_folder(docs)
    until_running(svc.client, job["id"], chunks=12)
    assert svc.client.cancel_job(job["id"])["cancel_requested"]
    done = finished(svc.client, job["id"])
    assert done["state"] == "cancelled" and done["progress"]["files_done"] < len(names)
    assert svc.cli("jobs", "cancel", job["id"]).returncode == 2  # it has finished
    svc.stop()

    store = make_store(Settings(data_dir=svc.data_dir, _env_file=None))
    try:
        states = store.file_states()
        assert 0 < len(states) < len(names)
        assert all(s.complete for s in states.values())  # every file complete under its hash, or absent
        assert store.count() == sum(s.n_points for s in states.values()) == len(list(store.scroll_points()))
    finally:
        store.close()
    svc.start()
    rest = finished(svc.client, svc.client.submit_folder(docs)["id"])
    assert rest["state"] == "done" and len(rest["report"]["unchanged"]) == len(states)
    assert len(rest["report"]["indexed"]) == len(names) - len(states)


def test_a_job_cut_off_by_two_deaths_of_the_service_is_failed_not_run_again(svc, tmp_path):
    docs = tmp_path / "big"
    write_docs(docs, 40, words=120, stem="big")
    svc.start()
    job = svc.client.submit_folder(docs)
    for _ in range(2):
        until_running(svc.client, job["id"])
        assert svc.stop(signal.SIGKILL) == -signal.SIGKILL
        svc.start()
    failed = svc.client.job(job["id"])
    assert failed["state"] == "failed" and "2 times" in failed["error"]
    listed = svc.cli("jobs")
    assert listed.returncode == 0 and f"{job['id']}  failed" in listed.stdout


def eventually(check, what: str, within_s: float = 10.0):
    """``check()``'s first truthy value within ``within_s`` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(0.1)
    raise AssertionError(f"not within {within_s:g} s: {what}")


@pytest.mark.slow
def test_a_watched_folder_is_followed_file_by_file(qwen3_gguf, tmp_path):
    svc = Service(qwen3_gguf, tmp_path, KB_WATCH_DEBOUNCE_S="1")
    docs = tmp_path / "watched"
    write_docs(docs, 3, stem="w")
    svc.start()
    client = svc.client
    try:
        assert finished(client, client.submit_folder(docs)["id"])["state"] == "done"

        def keys() -> set[str]:
            return {d["source"] for d in client.documents()}

        def new_jobs(seen: set[str]) -> list[dict]:
            return [j for j in client.jobs() if j["id"] not in seen and j["origin"] == "watch"]

        def synced(seen: set[str]) -> list[dict] | None:
            jobs = new_jobs(seen)
            return jobs if jobs and all(j["state"] == "done" for j in jobs) else None

        seen = {j["id"] for j in client.jobs()}
        (docs / "new.md").write_text("# New\n\nThe watched canary is a cobalt lemur.\n")
        eventually(lambda: "watched/new.md" in keys(), "a new file is indexed")
        hits = client.search("cobalt lemur", k=3, hybrid=True)["hits"]
        assert "watched/new.md" in {h["source"] for h in hits}

        seen = {j["id"] for j in client.jobs()}
        (docs / "w001.md").write_text("# Note 1\n\nRewritten: a vermilion okapi.\n")
        (job,) = eventually(lambda: synced(seen), "an edit is synced")
        report = client.job(job["id"])["report"]
        assert report["updated"] == ["watched/w001.md"] and report["indexed"] == []
        assert len(report["unchanged"]) == 3  # not re-embedded: the tokens are the edited file's only
        assert report["chunks"] == 1 and 0 < report["tokens"] < 30

        seen = {j["id"] for j in client.jobs()}
        for i in range(50):  # an editor saving again and again
            (docs / "w002.md").write_text(f"# Note 2\n\nSave number {i} of the draft.\n")
            time.sleep(0.01)
        eventually(lambda: synced(seen), "a burst of saves is synced")
        time.sleep(2.5)  # longer than the quiet period: a second sync would have started by now
        jobs = synced(seen)
        assert (
            jobs and sum(client.job(j["id"])["report"]["updated"].count("watched/w002.md") for j in jobs) == 1
        )
        texts = [h["text"] for h in client.search("Save number draft", k=5, sources=["watched"])["hits"]]
        assert any("Save number 49 of the draft" in t for t in texts)  # the last save is what is indexed

        (docs / "w000.md").rename(docs / "renamed.md")
        eventually(lambda: "watched/renamed.md" in keys() and "watched/w000.md" not in keys(), "a rename")
        (docs / "new.md").unlink()
        eventually(lambda: "watched/new.md" not in keys(), "a deletion")

        assert svc.cli("source", "watch", "watched", "off").returncode == 0
        time.sleep(2.5)  # the watcher reads the registry again
        seen = {j["id"] for j in client.jobs()}
        (docs / "late.md").write_text("# Late\n\nNot watched any more.\n")
        time.sleep(2.5)
        assert not new_jobs(seen) and "watched/late.md" not in keys()
    finally:
        svc.stop()
