"""The `kb eval` report folder as the service reads it: the listing, safe lookups by name, and the
metrics table the Evaluation page shows."""

from __future__ import annotations

import json
import os

import pytest

from app.render import eval_rows
from kb.tools.evaluate import list_reports, report_file
from tests.helpers.evalreports import OLD_STAMP, PNG_MAGIC, backdate, write_sample

BAD_NAMES = ("", "../secret", "..", "a/b", "a\\b", ".hidden", "x\0y")
COLUMNS = ["config", "Top-1", "Top-3", "Top-5", "R@10", "MRR@10", "nDCG@10", "P50 ms", "P99 ms"]


def test_reports_are_listed_newest_first_with_their_files(tmp_path):
    assert list_reports(tmp_path / "none") == [] and list_reports(tmp_path) == []
    old = backdate(tmp_path, write_sample(tmp_path, "older", ("small",)))
    new = write_sample(tmp_path, "traps-en")
    (tmp_path / ".index-tmp").mkdir()  # a run's temporary index, and stray files: not reports
    (tmp_path / ".hidden.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("x")
    listed = list_reports(tmp_path)
    assert [r["name"] for r in listed] == [new, old]
    assert [r["title"] for r in listed] == ["traps-en", "older"]
    assert listed[1]["time"] == "2024-01-01T12:00:00"
    assert all(r[s] == str(tmp_path / f"{r['name']}.{s}") for r in listed for s in ("json", "md", "png"))
    (tmp_path / f"{old}.png").unlink()
    assert list_reports(tmp_path)[1]["png"] is None


def test_report_files_are_found_by_bare_name_only(tmp_path):
    reports = tmp_path / "reports"
    name = write_sample(reports)
    report = json.loads(report_file(reports, name, ".json").read_text())
    assert report["results"][0]["config"]["name"] == "dense"
    assert report_file(reports, name, ".png").read_bytes()[:8] == PNG_MAGIC
    (tmp_path / "secret.json").write_text("{}")
    for bad in (*BAD_NAMES, f"{name}/..", str(tmp_path / "secret")):
        with pytest.raises(ValueError):
            report_file(reports, bad, ".json")
    with pytest.raises(FileNotFoundError):
        report_file(reports, f"missing-{OLD_STAMP}", ".json")
    os.symlink(tmp_path / "secret.json", reports / "leak.json")  # a link out of the folder is not served
    with pytest.raises(FileNotFoundError):
        report_file(reports, "leak", ".json")
    assert [r["name"] for r in list_reports(reports)] == [name]


def test_metrics_table_has_one_row_per_configuration(tmp_path):
    report = json.loads((tmp_path / f"{write_sample(tmp_path)}.json").read_text())
    rows = eval_rows(report)
    assert [r["config"] for r in rows] == ["dense", "hybrid"]
    assert list(rows[0]) == COLUMNS
    assert rows[1]["nDCG@10"] == 0.75 and rows[0]["P99 ms"] == 40.0
    assert eval_rows({}) == []
