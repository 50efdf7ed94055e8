"""The grounding check measured on answers whose truth is known (data/eval/grounding.jsonl over the
traps corpus): the rates the README states, and that each miss is the known blind spot."""

from __future__ import annotations

from pathlib import Path

import pytest

from kb.tools.evaluate.grounding import GroundingSetError, load_cases, measure, passages_of, render

ROOT = Path(__file__).resolve().parents[2]
SET, CORPUS = ROOT / "data" / "eval" / "grounding.jsonl", ROOT / "data" / "eval" / "traps"


def test_supported_answers_are_kept_and_invented_details_caught():
    cases = load_cases(SET)
    assert len(cases) == 12 and {c.lang for c in cases} == {"en", "zh"}
    result = measure(cases, CORPUS)
    counts = result["counts"]
    assert counts["all"]["kept"] == [12, 12]
    assert counts["all"]["number"] == [12, 12] and counts["all"]["date"] == [12, 12]
    assert counts["en"]["name"] == [8, 8] and counts["zh"]["name"] == [0, 4]
    # the blind spot: a Chinese name is not told from other Chinese words, so an invented one passes
    assert {(m["what"], m["source"][:3]) for m in result["misses"]} == {("name", "zh/")}
    assert "| invented name caught | 8/8 | 0/4 | 8/12 |" in render(result)


def test_the_snippet_picks_passage_one_and_a_broken_line_is_named(tmp_path):
    case = load_cases(SET)[0]
    passages = passages_of(CORPUS, case)
    assert case.snippet in passages[0].hit.text and len(passages) > 1
    assert all(case.snippet not in p.hit.text for p in passages[1:])
    bad = tmp_path / "set.jsonl"
    bad.write_text('# a comment\n{"source": "en/a.md"}\n', encoding="utf-8")
    with pytest.raises(GroundingSetError, match=r"set.jsonl:2: not a grounding case"):
        load_cases(bad)
