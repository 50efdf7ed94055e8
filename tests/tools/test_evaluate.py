"""`kb eval`: metrics on hand-computed cases, relevance rules, the test-set parser, the shipped sets,
and one end-to-end run with the tiny random Qwen3 model (its numbers are noise; the files are not)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ingest.pipeline import ChunkSettings, ingest_folder
from ingest.store import make_store
from kb.cli.main import main as kb_main
from kb.contract import SearchHit
from kb.settings import Settings
from kb.tools.evaluate import (
    DEPTH,
    ConfigError,
    ConfigResult,
    EvalConfig,
    EvalQuery,
    EvalSetError,
    Reference,
    depth_table,
    first_stage_scores,
    gains,
    judge,
    load_test_set,
    markdown_table,
    matches,
    mrr_at,
    ndcg_at,
    normalize_space,
    parse_config,
    parse_test_set,
    percentile,
    query_scores,
    recall_at,
    render_png,
    resolve,
    run_eval,
    select,
    summarize,
    top_k,
)

REPO = Path(__file__).resolve().parents[2]
EVAL_DIR = REPO / "data" / "eval"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
E = frozenset()


# --- metrics ---------------------------------------------------------------------------------------

# Two references; ranks 2 and 3 both match reference 0 (two chunks of one passage), rank 5 matches 1.
CASE = [E, frozenset({0}), frozenset({0}), E, frozenset({1})]


def test_gains_count_each_reference_once():
    assert gains(CASE) == [0, 1, 0, 0, 1]  # rank 3 repeats reference 0: no gain


def test_metrics_of_a_hand_computed_ranking():
    assert [top_k(CASE, k) for k in (1, 3, 5)] == [0.0, 1.0, 1.0]
    assert recall_at(CASE, 2) == 1.0  # both references within 10
    assert recall_at(CASE, 2, k=3) == 0.5  # only reference 0 within 3
    assert mrr_at(CASE) == 0.5  # first relevant hit at rank 2
    # DCG = 1/log2(3) + 1/log2(6) = 0.6309298 + 0.3868528 = 1.0177826
    # IDCG (2 references) = 1/log2(2) + 1/log2(3) = 1.6309298  ->  nDCG = 0.6240505
    assert ndcg_at(CASE, 2) == pytest.approx(0.6240505, abs=1e-7)
    assert query_scores(CASE, 2) == pytest.approx(
        {"top1": 0.0, "top3": 1.0, "top5": 1.0, "recall10": 1.0, "mrr10": 0.5, "ndcg10": 0.6240505}, abs=1e-7
    )


def test_metrics_stop_at_rank_10():
    late = [E] * 10 + [frozenset({0})]  # the answer at rank 11
    assert query_scores(late, 1) == {
        "top1": 0.0,
        "top3": 0.0,
        "top5": 0.0,
        "recall10": 0.0,
        "mrr10": 0.0,
        "ndcg10": 0.0,
    }
    perfect = [frozenset({i}) for i in range(10)]  # 12 references, 10 found, all at the top
    assert recall_at(perfect, 12) == pytest.approx(10 / 12)
    assert ndcg_at(perfect, 12) == pytest.approx(1.0)  # the ideal also holds only 10 hits
    assert mrr_at([E, E, E, frozenset({0})]) == 0.25
    # first hit relevant, one reference: DCG = IDCG = 1
    assert ndcg_at([frozenset({0}), E], 1) == 1.0
    # relevant at rank 3 only: 1/log2(4) = 0.5
    assert ndcg_at([E, E, frozenset({0})], 1) == pytest.approx(0.5)


def test_first_stage_recall_at_rerank_depths():
    # Two references. Each depth is the list a search for that many candidates returned.
    at_depth = {
        10: [E] * 10,  # neither reference among 10 candidates
        20: [E] * 14 + [frozenset({0})] + [E] * 5,  # reference 0 at rank 15
        40: [E] * 14 + [frozenset({0})] + [E] * 19 + [frozenset({1})] + [E] * 5,  # and reference 1 at 35
        80: [E] * 14 + [frozenset({0})] + [E] * 19 + [frozenset({1})] + [E] * 45,
    }
    assert first_stage_scores(at_depth, 2) == {
        "first_recall10": 0.0,
        "first_recall20": 0.5,
        "first_recall40": 1.0,
        "first_recall80": 1.0,
    }
    # hybrid fusion depends on k: the 10 candidates may hold a reference that the 20 do not
    fused = {10: [E, E, frozenset({1})], 20: [frozenset({0})] + [E] * 19}
    assert first_stage_scores(fused, 2) == {"first_recall10": 0.5, "first_recall20": 0.5}
    # a store with fewer chunks than the depth returns a shorter list; 2 of 3 references found
    assert first_stage_scores({80: [frozenset({0}), frozenset({0, 2}), E]}, 3) == {"first_recall80": 2 / 3}


def test_summarize_averages_first_stage_recall_when_every_query_has_it():
    deep = {10: [E] * 10, 20: [E] * 14 + [frozenset({0})], 40: [frozenset({0})], 80: [frozenset({0})]}
    shallow = {n: [E] for n in (10, 20, 40, 80)}
    scores = [
        query_scores(CASE, 2) | first_stage_scores(deep, 1),
        query_scores([E], 1) | first_stage_scores(shallow, 1),
    ]
    out = summarize(scores, [10.0, 30.0])
    assert [out[m] for m in DEPTH] == [0.0, 0.5, 0.5, 0.5]
    assert out["recall10"] == 0.5  # the final ranking's recall is still its own
    assert not set(DEPTH) & set(summarize([query_scores(CASE, 2)], [1.0]))  # absent, not averaged as 0


def test_percentile_is_nearest_rank():
    assert percentile([5, 1, 4, 2, 3], 50) == 3  # ceil(2.5) = 3rd smallest
    assert percentile([5, 1, 4, 2, 3], 99) == 5  # ceil(4.95) = 5th
    values = list(range(1, 201))
    assert (percentile(values, 50), percentile(values, 99)) == (100, 198)  # ceil(100), ceil(198)
    assert percentile([7.0], 99) == 7.0


def test_summarize_means_and_latency():
    scores = [query_scores(CASE, 2), query_scores([E], 1)]
    out = summarize(scores, [10.0, 30.0])
    assert out["n"] == 2
    assert out["top3"] == 0.5 and out["mrr10"] == 0.25
    assert out["ndcg10"] == pytest.approx(0.6240505 / 2, abs=1e-7)
    assert (out["p50_ms"], out["p99_ms"]) == (10.0, 30.0)  # ranks ceil(1.0) = 1 and ceil(1.98) = 2


# --- relevance -------------------------------------------------------------------------------------


def hit(source="a.md", page=None, start=None, end=None, text="x"):
    return SearchHit(
        1, "id", 1.0, f"corpus/{source}", "text", text, page=page, line_start=start, line_end=end, path=source
    )


def test_source_must_match():
    assert matches(hit(), Reference("a.md"))
    assert not matches(hit("b.md"), Reference("a.md"))
    assert not matches(hit("docs/a.md"), Reference("a.md"))


def test_page_must_match():
    ref = Reference("a.pdf", page=3)
    assert matches(hit("a.pdf", page=3), ref)
    assert not matches(hit("a.pdf", page=4), ref)
    assert not matches(hit("a.pdf"), ref)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (5, 9, False),
        (5, 10, True),
        (12, 14, True),
        (20, 30, True),
        (21, 30, False),
        (1, 40, True),
        (None, None, False),
    ],
)
def test_line_ranges_must_overlap(start, end, expected):
    assert matches(hit(start=start, end=end), Reference("a.md", lines=(10, 20))) is expected


def test_snippet_is_contained_whitespace_normalised():
    text = "## Rates\n\nWhen the economy is weak,  a central\n  bank cuts its policy rate."
    assert matches(hit(text=text), Reference("a.md", snippet="a central bank cuts"))
    assert matches(hit(text=text), Reference("a.md", snippet="economy is weak, a\tcentral"))
    assert not matches(hit(text=text), Reference("a.md", snippet="A central bank cuts"))  # case counts
    assert not matches(hit(text=text), Reference("a.md", snippet="raises its policy rate"))
    assert normalize_space(" a \n b\t c ") == "a b c"


def test_every_narrowing_must_hold():
    ref = Reference("a.md", lines=(10, 20), snippet="needle")
    assert matches(hit(start=15, end=30, text="a needle"), ref)
    assert not matches(hit(start=15, end=30, text="no match"), ref)
    assert not matches(hit(start=30, end=40, text="a needle"), ref)


def test_judge_lists_the_references_each_hit_matches():
    refs = [Reference("a.md", snippet="one"), Reference("a.md", snippet="two")]
    hits = [hit(text="one and two"), hit("b.md", text="one"), hit(text="two")]
    assert judge(hits, refs) == [frozenset({0, 1}), E, frozenset({1})]


# --- the test-set parser ---------------------------------------------------------------------------

GOOD = '{"query": "q1", "relevant": [{"source": "a.md"}]}'


def test_parser_reads_fields_and_skips_blank_and_comment_lines():
    text = (
        "# a comment\n\n"
        + GOOD
        + "\n"
        + json.dumps(
            {
                "query": " rates ",
                "lang": "en",
                "category": "negation",
                "relevant": [{"source": "./docs\\b.md", "page": 2, "lines": [3, 4], "snippet": "cut"}],
            }
        )
    )
    first, second = parse_test_set(text, "s.jsonl")
    assert first == EvalQuery("q1", (Reference("a.md"),), line=3)
    assert second == EvalQuery("rates", (Reference("docs/b.md", 2, (3, 4), "cut"),), "en", "negation", 4)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"query": "q", "relevant": [', "s.jsonl:3: not valid JSON"),
        ('["q"]', "s.jsonl:3: expected a JSON object"),
        ('{"relevant": [{"source": "a.md"}]}', 's.jsonl:3: "query" must be a non-empty string'),
        (
            '{"query": "  ", "relevant": [{"source": "a.md"}]}',
            's.jsonl:3: "query" must be a non-empty string',
        ),
        ('{"query": "q", "relevant": []}', 's.jsonl:3: "relevant" must be a non-empty list'),
        ('{"query": "q", "relevent": [{"source": "a.md"}]}', "s.jsonl:3: unknown field(s) relevent"),
        ('{"query": "q", "relevant": ["a.md"]}', "s.jsonl:3: relevant[0]: expected an object"),
        ('{"query": "q", "relevant": [{"page": 1}]}', 's.jsonl:3: relevant[0]: "source" must be'),
        ('{"query": "q", "relevant": [{"source": "a", "page": 0}]}', '"page" must be a page number'),
        ('{"query": "q", "relevant": [{"source": "a", "page": true}]}', '"page" must be a page number'),
        ('{"query": "q", "relevant": [{"source": "a", "lines": [20, 10]}]}', '"lines" must be [first, last]'),
        ('{"query": "q", "relevant": [{"source": "a", "lines": [1]}]}', '"lines" must be [first, last]'),
        ('{"query": "q", "relevant": [{"source": "a", "snippet": ""}]}', '"snippet" must be a non-empty'),
        ('{"query": "q", "relevant": [{"source": "a", "line": 3}]}', "relevant[0]: unknown field(s) line"),
        ('{"query": "q", "relevant": [{"source": "a"}], "lang": 5}', '"lang" must be a non-empty string'),
    ],
)
def test_parser_errors_name_the_line(line, message):
    with pytest.raises(EvalSetError) as err:
        parse_test_set(f"{GOOD}\n\n{line}\n{GOOD}", "s.jsonl")
    assert message in str(err.value)


def test_an_empty_set_is_an_error():
    with pytest.raises(EvalSetError, match="no queries"):
        parse_test_set("# only a comment\n\n", "s.jsonl")


def test_select_filters_by_lang_and_category():
    tags = [("en", "x"), ("zh", "x"), ("en", "y")]
    lines = [
        {"query": f"q{i}", "relevant": [{"source": "a"}], "lang": lang, "category": cat}
        for i, (lang, cat) in enumerate(tags)
    ]
    queries = parse_test_set("\n".join(json.dumps(line) for line in lines))
    assert [q.query for q in select(queries)] == ["q0", "q1", "q2"]
    assert [q.query for q in select(queries, ["en"])] == ["q0", "q2"]
    assert [q.query for q in select(queries, ["en", "zh"], ["x"])] == ["q0", "q1"]


# --- configurations --------------------------------------------------------------------------------


def test_parse_config():
    assert parse_config("base") == EvalConfig("base")
    assert parse_config("c=chunk_tokens=256, hybrid=on,rerank=off") == EvalConfig(
        "c", chunk_tokens=256, hybrid=True, rerank=False
    )
    cfg = parse_config("m=embed_model=/models/x.gguf,dim=256,chunk-overlap=0,candidates=20")
    assert (cfg.embed_model, cfg.dim, cfg.chunk_overlap, cfg.candidates) == ("/models/x.gguf", 256, 0, 20)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("=chunk_tokens=1", "needs a name"),
        ("c=chunk_tokens", "is not key=value"),
        ("c=size=1", "unknown key 'size'"),
        ("c=hybrid=maybe", "bad value 'maybe' for hybrid"),
        ("c=dim=-1", "bad value"),
        ("c=dim=x", "bad value"),
    ],
)
def test_parse_config_errors(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_config(spec)


def test_overlap_scales_with_the_chunk_target():
    settings = Settings(
        chunk_tokens=512, chunk_overlap=64, qdrant_url="http://elsewhere:6333", _env_file=None
    )
    s, target, overlap = resolve(EvalConfig("c", chunk_tokens=128), settings)
    assert (target, overlap) == (128, 16)
    assert s.qdrant_url is None and s.collection == "eval"  # always the embedded store
    assert resolve(EvalConfig("c"), settings)[1:] == (512, 64)
    assert resolve(EvalConfig("c", chunk_tokens=256, chunk_overlap=0), settings)[1:] == (256, 0)


# --- the shipped sets ------------------------------------------------------------------------------


def _check_references(queries: list[EvalQuery], corpus: Path) -> None:
    for q in queries:
        for ref in q.relevant:
            path = corpus / ref.source
            assert path.is_file(), f"line {q.line}: {ref.source}"
            if ref.snippet:
                assert normalize_space(ref.snippet) in normalize_space(path.read_text(encoding="utf-8")), (
                    q.line
                )


def test_shipped_traps_set():
    queries = load_test_set(EVAL_DIR / "traps.jsonl")
    assert len(queries) >= 40
    assert {q.category for q in queries} == {
        "homonym",
        "context",
        "idiom",
        "cross-domain",
        "negation",
        "near-duplicate",
        "paraphrase",
    }
    assert {q.lang for q in queries} == {"en", "zh", "en-zh", "zh-en"}
    _check_references(queries, EVAL_DIR / "traps")
    files = list((EVAL_DIR / "traps").rglob("*.md")) + list((EVAL_DIR / "traps").rglob("*.txt"))
    passages = sum(f.read_text(encoding="utf-8").count("\n## ") for f in files if f.suffix == ".md")
    passages += sum(f.read_text(encoding="utf-8").strip().count("\n\n") for f in files if f.suffix == ".txt")
    assert passages >= 120


def test_shipped_code_set_points_at_existing_definitions():
    queries = load_test_set(EVAL_DIR / "code.jsonl")
    assert len(queries) >= 20
    _check_references(queries, REPO)


# --- reports ---------------------------------------------------------------------------------------


def _result(name: str, value: float) -> ConfigResult:
    metrics = {m: value for m in ("top1", "top3", "top5", "recall10", "mrr10", "ndcg10")}
    return ConfigResult(
        EvalConfig(name), {**metrics, "p50_ms": 12.25, "p99_ms": 40.0, "n": 3}, {"chunks": 7}, {}, []
    )


def test_markdown_table():
    table = markdown_table([_result("dense", 0.5), _result("hybrid", 2 / 3)]).splitlines()
    assert (
        table[0] == "| Config | Top-1 | Top-3 | Top-5 | R@10 | MRR@10 | nDCG@10 | P50 ms | P99 ms | Chunks |"
    )
    assert table[2] == "| dense | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 | 0.500 | 12.2 | 40.0 | 7 |"
    assert table[3].startswith("| hybrid | 0.667 |")


def test_depth_table_shows_first_stage_recall_and_skips_older_results():
    deep = _result("hybrid", 0.5)
    deep.metrics.update(zip(DEPTH, (0.75, 0.875, 1.0, 1.0), strict=True))
    table = depth_table([_result("old", 0.5), deep]).splitlines()
    assert table[0] == "First-stage recall at rerank depths (the hits before any rerank):"
    assert table[2] == "| Config | R@10 | R@20 | R@40 | R@80 |"
    assert table[4:] == ["| hybrid | 0.750 | 0.875 | 1.000 | 1.000 |"]  # the older result has no row
    assert depth_table([_result("old", 0.5)]) == ""


@pytest.mark.parametrize("use_matplotlib", [True, False])
def test_png_chart(tmp_path, use_matplotlib):
    path = render_png([_result("a", 0.5), _result("b", 0.9)], tmp_path / "chart.png", use_matplotlib)
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_cli_reports_a_bad_set_with_its_line(tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(GOOD + "\n{oops\n", encoding="utf-8")
    assert kb_main(["--data-dir", str(tmp_path), "eval", str(bad), "--corpus", str(tmp_path)]) == 2
    assert "bad.jsonl:2: not valid JSON" in capsys.readouterr().err
    good = tmp_path / "good.jsonl"
    good.write_text(GOOD + "\n", encoding="utf-8")
    assert (
        kb_main(["--data-dir", str(tmp_path), "eval", str(good), "--corpus", ".", "--config", "c=x=1"]) == 2
    )
    assert "unknown key 'x'" in capsys.readouterr().err


# --- end to end --------------------------------------------------------------------------------------

CORPUS = {
    "zh/db.md": "# 数据库\n\n向量数据库用于存储和检索高维嵌入向量，支持近似最近邻搜索。\n",
    "zh/food.md": "# 美食\n\n北京烤鸭是一道著名的中国菜，外皮酥脆。\n",
    "en/space.md": "# Space\n\nThe Apollo program landed astronauts on the Moon in 1969.\n",
    "en/garden.txt": "Tomatoes need full sun.\n\nWater them regularly during summer.\n",
    "code/util.py": "def parse_config(path):\n    with open(path) as f:\n        return f.read()\n",
}
SET = [
    {"query": "向量数据库", "relevant": [{"source": "zh/db.md"}], "lang": "zh", "category": "keyword"},
    {
        "query": "Moon landing",
        "relevant": [{"source": "en/space.md", "snippet": "Apollo program"}],
        "lang": "en",
    },
    {"query": "watering tomatoes", "relevant": [{"source": "en/garden.txt", "lines": [3, 3]}], "lang": "en"},
    {"query": "read a config file", "relevant": [{"source": "code/util.py", "snippet": "def parse_config("}]},
    {"query": "nowhere", "relevant": [{"source": "missing.md"}], "category": "keyword"},
]


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def test_kb_eval_end_to_end(qwen3_settings, qwen3_embedder, tmp_path):
    corpus, data = tmp_path / "corpus", tmp_path / "data"
    for rel, text in CORPUS.items():
        (corpus / rel).parent.mkdir(parents=True, exist_ok=True)
        (corpus / rel).write_text(text, encoding="utf-8")
    test_set = tmp_path / "mini.jsonl"
    test_set.write_text("\n".join(json.dumps(q, ensure_ascii=False) for q in SET) + "\n", encoding="utf-8")
    settings = qwen3_settings.model_copy(update={"data_dir": data})
    main = make_store(settings)  # the main collection, which the evaluation must leave alone
    ingest_folder(corpus, qwen3_embedder, main, ChunkSettings(64, 8), source="corpus", workers=1)
    count, fingerprint = main.count(), main.fingerprint()
    main.close()
    before = _tree(settings.store_dir)

    env = {
        **os.environ,
        "KB_EMBED_MODEL": settings.embed_model,
        "KB_N_CTX": str(settings.n_ctx),
        "KB_N_BATCH": str(settings.n_batch),
        "KB_N_UBATCH": str(settings.n_ubatch),
        "KB_DATA_DIR": str(data),
        "KB_PARSE_WORKERS": "1",
    }
    configs = [
        "--config",
        "small=chunk_tokens=32",
        "--config",
        "small-hybrid=chunk_tokens=32,hybrid=on",
        "--config",
        "big=chunk_tokens=128",
    ]
    command = [sys.executable, "-m", "kb.cli.main", "eval", str(test_set), "--corpus", str(corpus), *configs]
    out = subprocess.run(
        command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "| Config | Top-1 |" in out.stdout
    assert all(f"| {name} | " in out.stdout for name in ("small", "small-hybrid", "big"))

    reports = data / "eval" / "reports"
    (json_path,) = reports.glob("mini-*.json")
    assert {p.suffix for p in reports.iterdir()} == {".json", ".md", ".png"}  # temporary indexes are gone
    assert json_path.with_suffix(".png").read_bytes()[:8] == PNG_MAGIC
    markdown = json_path.with_suffix(".md").read_text(encoding="utf-8")
    assert "| small-hybrid |" in markdown and "| Config | R@10 | R@20 | R@40 | R@80 |" in markdown
    report = json.loads(json_path.read_text(encoding="utf-8"))
    assert report["n_queries"] == len(SET)
    assert [r["config"]["name"] for r in report["results"]] == ["small", "small-hybrid", "big"]
    assert any("missing.md is not in the index" in w for w in report["warnings"])
    small, hybrid, big = report["results"]
    assert small["index"] == hybrid["index"]  # hybrid is a query-time switch: one index for both
    assert (
        small["index"]["chunk_tokens"],
        small["index"]["chunk_overlap"],
        big["index"]["chunk_overlap"],
    ) == (32, 4, 16)
    for r in report["results"]:
        assert all(
            0.0 <= r["metrics"][m] <= 1.0 for m in ("top1", "top3", "top5", "recall10", "mrr10", "ndcg10")
        )
        assert 0 < r["metrics"]["p50_ms"] <= r["metrics"]["p99_ms"]
        assert r["metrics"]["recall10"] == 0.8  # 4 of 5 answerable, and this corpus has fewer than 10 chunks
        assert [r["metrics"][m] for m in DEPTH] == [0.8] * 4  # so every depth holds every chunk
        assert set(r["groups"]) == {"category: keyword", "lang: en", "lang: zh"}
        assert len(r["queries"]) == len(SET) and r["queries"][4]["first_relevant_rank"] is None

    assert _tree(settings.store_dir) == before
    main = make_store(settings)
    assert (main.count(), main.fingerprint()) == (count, fingerprint)
    main.close()


def test_a_chunk_larger_than_the_model_takes_is_a_config_error(qwen3_settings, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("# A\n\nSome text.\n", encoding="utf-8")
    settings = qwen3_settings.model_copy(update={"data_dir": tmp_path / "data"})
    too_big = EvalConfig("huge", chunk_tokens=settings.n_ctx + 1)
    query = EvalQuery("text", (Reference("a.md"),))
    with pytest.raises(ConfigError, match=r"chunk_tokens=4097 is more than .* takes"):
        run_eval([query], corpus, [too_big], settings, work_dir=tmp_path / "work")
