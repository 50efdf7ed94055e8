"""The jobs listing stays small however many jobs and however long their reports: `GET /jobs` gives the
newest few with the reports' counts, `GET /jobs/{id}` one job with its whole report."""

from __future__ import annotations

import json
import urllib.request

import pytest

from kb.service.client import ServiceError
from kb.service.jobs import LIST_LIMIT, LISTED, JobQueue
from tests.service.test_service import GRACEFUL, Service

JOBS = 30
FILES = 500  # files each job's report names


def test_the_listing_is_brief_and_bounded_and_one_job_has_its_report(qwen3_gguf, tmp_path):
    queue = JobQueue(
        tmp_path / "data" / "jobs.sqlite"
    )  # jobs finished before this start, as the service records them
    for i in range(JOBS):
        job = queue.submit("folder", f"/srv/docs{i}", "cli", source=f"docs{i}")
        assert queue.claim().id == job.id
        names = [f"docs{i}/file{n:04}.md" for n in range(FILES)]
        report = {"indexed": [], "unchanged": names, "skipped": [], "chunks": 0, "seconds": 0.5}
        queue.finish(job.id, report, {"files_done": FILES, "files_total": FILES})
    queue.close()
    svc = Service(qwen3_gguf, tmp_path).start()
    try:
        client = svc.client
        req = urllib.request.Request(
            client.base_url + "/jobs", headers={"Authorization": f"Bearer {client.token}"}
        )
        with urllib.request.urlopen(req, timeout=10) as resp:
            raw = resp.read()
        listed = json.loads(raw)["jobs"]
        assert len(listed) == LISTED and len(raw) < 1000 * LISTED  # not 30 reports of 500 names
        newest = listed[0]
        assert newest["source"] == f"docs{JOBS - 1}" and "report" not in newest
        assert newest["summary"] == {
            "indexed": 0,
            "unchanged": FILES,
            "skipped": 0,
            "chunks": 0,
            "seconds": 0.5,
        }
        assert len(client.jobs(limit=LIST_LIMIT)) == JOBS
        with pytest.raises(ServiceError) as too_many:
            client.jobs(limit=LIST_LIMIT + 1)
        assert too_many.value.status == 400
        assert len(client.job(newest["id"])["report"]["unchanged"]) == FILES
    finally:
        assert svc.stop() in GRACEFUL
