"""Retrieval quality on your own documents: a JSONL test set, the metrics, and a runner over configurations.

A test set (format in ``data/eval/README.md``) lists queries with references to the passages that
answer them. Each configuration (embedding model, dimension, chunk size, hybrid, rerank) gets its own
index, built with the embedded store in a temporary folder, so the main collection is never touched;
configurations that differ only at query time (hybrid, rerank) share one index. Every query goes
through ``search.search``, the path the CLI, the service and the app take, and is judged:

* a hit *matches* a reference when its source is the reference's and, where the reference gives
  them, its page is the reference's page, its line range overlaps the reference's lines, and its
  text contains the snippet (both whitespace-normalised);
* a hit is *relevant* (gain 1) when it matches a reference that no higher hit matched: two chunks
  of one passage count once, so nDCG stays within [0, 1].

Metrics, per query and then averaged over the queries: Top-k accuracy (a relevant hit among the
first k, k = 1, 3, 5), recall@10 (share of the references matched by the first 10 hits), MRR@10
(1 / rank of the first relevant hit, 0 beyond rank 10), nDCG@10 (binary gains with a log2 discount,
the ideal ranking puts min(references, 10) relevant hits first); latency P50/P99 (nearest rank) of
the whole search call in milliseconds, after one untimed warm-up query.

First-stage recall at rerank depths: for N in ``RERANK_DEPTHS`` the share of the references matched
by the N hits the store returns *before* any rerank (one untimed search per depth, with k = N, as
the reranker would get them: hybrid fusion depends on k). A reranker can only promote what is among
its candidates, so this is the ceiling of recall for a rerank over N candidates.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from kb.search.query import RERANK_CANDIDATES
from kb.settings import Settings

TOP_KS = (1, 3, 5)
CUTOFF = 10  # hits fetched per query: recall, MRR and nDCG are "@10"
QUALITY = ("top1", "top3", "top5", "recall10", "mrr10", "ndcg10")
RERANK_DEPTHS = (10, 20, 40, 80)  # candidate counts whose first-stage recall a report carries
DEPTH = tuple(f"first_recall{n}" for n in RERANK_DEPTHS)
LATENCY = ("p50_ms", "p99_ms")
LABELS = {
    "top1": "Top-1",
    "top3": "Top-3",
    "top5": "Top-5",
    "recall10": "R@10",
    "mrr10": "MRR@10",
    "ndcg10": "nDCG@10",
    "p50_ms": "P50 ms",
    "p99_ms": "P99 ms",
    **{key: f"R@{n}" for key, n in zip(DEPTH, RERANK_DEPTHS, strict=True)},
}
REPORT_DIR = Path("eval") / "reports"  # under the data dir: reports, and the temporary indexes of a run
STAMP_FORMAT = "%Y%m%d-%H%M%S"  # a report's files are <name>-<stamp>.json/.md/.png
REPORT_STEM = re.compile(r"(?P<report>.+)-(?P<stamp>\d{8}-\d{6})")
EVAL_COLLECTION = "eval"
QUERY_FIELDS = {"query", "relevant", "lang", "category"}
REFERENCE_FIELDS = {"source", "page", "lines", "snippet"}
TRUE_WORDS, FALSE_WORDS = {"on", "true", "yes", "1"}, {"off", "false", "no", "0"}
EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class EvalSetError(ValueError):
    """A test set that cannot be read; the message names the file and the line."""


class ConfigError(ValueError):
    """A ``--config`` specification that cannot be read."""


# --- the test set --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reference:
    """Where an answer lies: a source, optionally narrowed by page, line range and snippet."""

    source: str
    page: int | None = None
    lines: tuple[int, int] | None = None
    snippet: str | None = None


@dataclass(frozen=True, slots=True)
class EvalQuery:
    query: str
    relevant: tuple[Reference, ...]
    lang: str | None = None
    category: str | None = None
    line: int = 0  # line of the set file it came from


def parse_test_set(text: str, name: str = "test set") -> list[EvalQuery]:
    """Queries of a JSONL text (blank lines and lines starting with '#' are skipped)."""
    queries = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise EvalSetError(f"{name}:{n}: not valid JSON ({err.msg} at column {err.colno})") from None
        queries.append(_query(obj, f"{name}:{n}", n))
    if not queries:
        raise EvalSetError(f"{name}: no queries")
    return queries


def load_test_set(path: Path) -> list[EvalQuery]:
    return parse_test_set(Path(path).read_text(encoding="utf-8"), str(path))


def _query(obj: Any, where: str, n: int) -> EvalQuery:
    if not isinstance(obj, dict):
        raise EvalSetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    _check_fields(obj, QUERY_FIELDS, where)
    query, relevant = obj.get("query"), obj.get("relevant")
    if not isinstance(query, str) or not query.strip():
        raise EvalSetError(f'{where}: "query" must be a non-empty string')
    if not isinstance(relevant, list) or not relevant:
        raise EvalSetError(f'{where}: "relevant" must be a non-empty list of references')
    refs = tuple(_reference(r, f"{where}: relevant[{i}]") for i, r in enumerate(relevant))
    lang, category = (_optional_str(obj, key, where) for key in ("lang", "category"))
    return EvalQuery(query.strip(), refs, lang, category, n)


def _check_fields(obj: dict, known: set[str], where: str) -> None:
    if unknown := sorted(set(obj) - known):
        raise EvalSetError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


def _optional_str(obj: dict, key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise EvalSetError(f'{where}: "{key}" must be a non-empty string')
    return value.strip() if value else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _reference(obj: Any, where: str) -> Reference:
    if not isinstance(obj, dict):
        raise EvalSetError(f"{where}: expected an object with a source, got {type(obj).__name__}")
    _check_fields(obj, REFERENCE_FIELDS, where)
    source, page, lines, snippet = (obj.get(k) for k in ("source", "page", "lines", "snippet"))
    if not isinstance(source, str) or not source.strip():
        raise EvalSetError(f'{where}: "source" must be a non-empty path relative to the corpus')
    if page is not None and not (_is_int(page) and page >= 1):
        raise EvalSetError(f'{where}: "page" must be a page number from 1')
    if lines is not None:
        if not (
            isinstance(lines, list)
            and len(lines) == 2
            and all(_is_int(x) for x in lines)
            and 1 <= lines[0] <= lines[1]
        ):
            raise EvalSetError(f'{where}: "lines" must be [first, last] with 1 <= first <= last')
        lines = (lines[0], lines[1])
    if snippet is not None and (not isinstance(snippet, str) or not snippet.strip()):
        raise EvalSetError(f'{where}: "snippet" must be a non-empty string')
    return Reference(source.strip().replace("\\", "/").removeprefix("./"), page, lines, snippet)


def select(queries: Iterable[EvalQuery], langs: Iterable[str] = (), categories: Iterable[str] = ()) -> list:
    """The queries with one of ``langs`` and one of ``categories`` (an empty filter keeps all)."""
    lang_set, category_set = set(langs), set(categories)
    return [
        q
        for q in queries
        if (not lang_set or q.lang in lang_set) and (not category_set or q.category in category_set)
    ]


# --- relevance and metrics (pure) ----------------------------------------------------------------

Matched = Sequence[frozenset[int]]  # per ranked hit: indices of the references it matches


def normalize_space(text: str) -> str:
    return " ".join(text.split())


def matches(hit: dict, ref: Reference) -> bool:
    """Whether a hit record (``search.hit_record``) lies where the reference says the answer is."""
    if hit.get("source") != ref.source:
        return False
    if ref.page is not None and hit.get("page") != ref.page:
        return False
    if ref.lines is not None:
        start, end = hit.get("line_start"), hit.get("line_end")
        if start is None or end is None or end < ref.lines[0] or start > ref.lines[1]:
            return False
    return ref.snippet is None or normalize_space(ref.snippet) in normalize_space(hit.get("text") or "")


def judge(hits: Sequence[dict], refs: Sequence[Reference]) -> list[frozenset[int]]:
    return [frozenset(i for i, r in enumerate(refs) if matches(h, r)) for h in hits]


def gains(matched: Matched) -> list[int]:
    """Binary gains: 1 for a hit matching a reference that no higher hit matched."""
    seen: set[int] = set()
    out = []
    for m in matched:
        out.append(1 if m - seen else 0)
        seen |= m
    return out


def top_k(matched: Matched, k: int) -> float:
    return 1.0 if any(matched[:k]) else 0.0


def recall_at(matched: Matched, n_refs: int, k: int = CUTOFF) -> float:
    return len(frozenset().union(*matched[:k])) / n_refs


def mrr_at(matched: Matched, k: int = CUTOFF) -> float:
    return next((1.0 / rank for rank, m in enumerate(matched[:k], 1) if m), 0.0)


def ndcg_at(matched: Matched, n_refs: int, k: int = CUTOFF) -> float:
    dcg = sum(g / math.log2(rank + 1) for rank, g in enumerate(gains(matched[:k]), 1))
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(n_refs, k) + 1))
    return dcg / ideal


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile: the smallest value with at least p% of the values at or below it."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def query_scores(matched: Matched, n_refs: int) -> dict[str, float]:
    return {
        **{f"top{k}": top_k(matched, k) for k in TOP_KS},
        "recall10": recall_at(matched, n_refs),
        "mrr10": mrr_at(matched),
        "ndcg10": ndcg_at(matched, n_refs),
    }


def first_stage_scores(matched_at_depth: Mapping[int, Matched], n_refs: int) -> dict[str, float]:
    """``first_recallN``: recall of the N hits a search for N candidates returned, per depth N
    (each depth is its own list: with hybrid fusion the top 20 of 80 candidates need not be the 20)."""
    return {
        f"first_recall{n}": recall_at(matched, n_refs, n) for n, matched in sorted(matched_at_depth.items())
    }


def summarize(scores: Sequence[dict[str, float]], latencies_ms: Sequence[float]) -> dict[str, float]:
    """Mean of each quality metric over the queries (the first-stage recalls too, when every query has
    them), latency percentiles, and the query count."""
    n = len(scores)
    depth = [m for m in DEPTH if n and all(m in s for s in scores)]
    out = {m: sum(s[m] for s in scores) / n if n else math.nan for m in (*QUALITY, *depth)}
    return {**out, "p50_ms": percentile(latencies_ms, 50), "p99_ms": percentile(latencies_ms, 99), "n": n}


# --- configurations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvalConfig:
    """One row of the table; None fields take the settings' values."""

    name: str = "default"
    embed_model: str | None = None
    dim: int | None = None
    chunk_tokens: int | None = None
    chunk_overlap: int | None = None  # None: the settings' overlap, scaled with chunk_tokens
    hybrid: bool = False
    rerank: bool = False
    rerank_model: str | None = None
    candidates: int = RERANK_CANDIDATES


CONFIG_KEYS = {f.name: f.type for f in fields(EvalConfig) if f.name != "name"}


def _config_value(key: str, value: str) -> Any:
    kind = CONFIG_KEYS[key]
    if kind == "bool":
        if value.lower() in TRUE_WORDS | FALSE_WORDS:
            return value.lower() in TRUE_WORDS
        raise ValueError("expected on or off")
    if kind.startswith("int"):
        number = int(value)
        if number < (0 if key == "chunk_overlap" else 1):
            raise ValueError("out of range")
        return number
    return value


def parse_config(spec: str) -> EvalConfig:
    """``NAME=key=value,key=value`` (or a bare ``NAME``: the settings as they are)."""
    name, _, rest = spec.partition("=")
    if not name.strip():
        raise ConfigError(f"config {spec!r}: needs a name, as in base=chunk_tokens=256,hybrid=on")
    values: dict[str, Any] = {}
    for item in (s.strip() for s in rest.split(",")):
        if not item:
            continue
        key, eq, value = item.partition("=")
        key = key.strip().replace("-", "_")
        if not eq or not value.strip():
            raise ConfigError(f"config {name!r}: {item!r} is not key=value")
        if key not in CONFIG_KEYS:
            raise ConfigError(f"config {name!r}: unknown key {key!r} (known: {', '.join(CONFIG_KEYS)})")
        try:
            values[key] = _config_value(key, value.strip())
        except ValueError:
            raise ConfigError(f"config {name!r}: bad value {value.strip()!r} for {key}") from None
    return EvalConfig(name.strip(), **values)


def resolve(cfg: EvalConfig, settings: Settings) -> tuple[Settings, int, int]:
    """The settings a configuration runs with, and its chunk target and overlap."""
    target = cfg.chunk_tokens or settings.chunk_tokens
    if cfg.chunk_overlap is not None:
        overlap = cfg.chunk_overlap
    else:  # keep the configured ratio of overlap to target
        overlap = round(settings.chunk_overlap * target / settings.chunk_tokens)
    update: dict[str, Any] = {
        "chunk_tokens": target,
        "chunk_overlap": overlap,
        "qdrant_url": None,
        "collection": EVAL_COLLECTION,
    }
    update |= {
        k: v
        for k, v in {"embed_model": cfg.embed_model, "dim": cfg.dim, "rerank_model": cfg.rerank_model}.items()
        if v is not None
    }
    return settings.model_copy(update=update), target, overlap


# --- the runner ----------------------------------------------------------------------------------


@dataclass
class ConfigResult:
    config: EvalConfig
    metrics: dict[str, float]
    index: dict[str, Any]  # model, dim, chunk target/overlap, chunks, mean chunk tokens, seconds
    groups: dict[str, dict[str, float]]  # "category: x" / "lang: y" -> metrics of its queries
    queries: list[dict]  # per query: text, rank of the first relevant hit, the sources returned


@dataclass
class EvalReport:
    name: str
    corpus: str
    n_queries: int
    results: list[ConfigResult]
    warnings: list[str] = field(default_factory=list)
    created: str = field(default_factory=lambda: datetime.now().astimezone().isoformat(timespec="seconds"))

    def as_dict(self) -> dict:
        results = [
            {
                "config": asdict(r.config),
                "metrics": r.metrics,
                "index": r.index,
                "groups": r.groups,
                "queries": r.queries,
            }
            for r in self.results
        ]
        return {
            "name": self.name,
            "corpus": self.corpus,
            "created": self.created,
            "n_queries": self.n_queries,
            "warnings": self.warnings,
            "results": results,
        }


def run_eval(
    queries: Sequence[EvalQuery],
    corpus: Path,
    configs: Sequence[EvalConfig],
    settings: Settings,
    *,
    name: str = "eval",
    exclude: Iterable[str] = (),
    work_dir: Path | None = None,
    on_progress: Callable[[str], None] | None = None,
) -> EvalReport:
    """Index ``corpus`` once per distinct index setup (in a temporary folder) and judge every query."""
    from ingest.model.embedder import make_embedder
    from ingest.model.reranker import make_reranker
    from ingest.pipeline import ChunkSettings

    corpus, say = Path(corpus), on_progress or (lambda message: None)
    if not corpus.is_dir():
        raise FileNotFoundError(f"not a folder: {corpus}")
    if len({c.name for c in configs}) != len(configs):
        raise ConfigError("configuration names must be distinct")
    if work_dir is not None:
        work_dir.mkdir(parents=True, exist_ok=True)
    resolved = [resolve(c, settings) for c in configs]
    groups: dict[tuple, list[int]] = {}  # one index per (model, dim, chunk target, overlap)
    for i, (s, target, overlap) in enumerate(resolved):
        groups.setdefault((s.embed_model, s.dim, target, overlap), []).append(i)
    embedders: dict[tuple, Any] = {}
    rerankers: dict[str, Any] = {}
    results: dict[int, ConfigResult] = {}
    warnings: list[str] = []
    try:
        for (model, dim, target, overlap), members in groups.items():
            embedder = _cached(embedders, (model, dim), make_embedder, resolved[members[0]][0])
            names = ", ".join(configs[i].name for i in members)
            say(f"indexing {corpus} for {names} ({Path(model).name}, chunks {target}/{overlap})")
            chunking = ChunkSettings(target, overlap)
            with _temporary_index(corpus, embedder, chunking, exclude, settings.parse_workers, work_dir) as (
                store,
                report,
            ):
                _collect_warnings(warnings, report, queries, set(store.file_states()))
                index = {
                    "model": Path(model).name,
                    "dim": embedder.dim,
                    "chunk_tokens": target,
                    "chunk_overlap": overlap,
                    "chunks": report.chunks,
                    "mean_chunk_tokens": round(report.tokens / max(1, report.chunks), 1),
                    "seconds": round(report.seconds, 2),
                }
                for i in members:
                    cfg, cfg_settings = configs[i], resolved[i][0]
                    reranker = (
                        _cached(rerankers, cfg_settings.rerank_model, make_reranker, cfg_settings)
                        if cfg.rerank
                        else None
                    )
                    say(f"searching {len(queries)} queries: {cfg.name}")
                    results[i] = _run_config(cfg, queries, embedder, store, reranker, index)
    finally:
        for resource in [*embedders.values(), *rerankers.values()]:
            resource.close()
    return EvalReport(name, str(corpus), len(queries), [results[i] for i in range(len(configs))], warnings)


def _cached(cache: dict, key: Any, factory: Callable[[Settings], Any], settings: Settings) -> Any:
    """A model opened once per run (the runner closes them all at the end)."""
    if key not in cache:
        cache[key] = factory(settings)
    return cache[key]


@contextmanager
def _temporary_index(
    corpus: Path, embedder, chunking, exclude: Iterable[str], workers: int, work_dir: Path | None
) -> Iterator[tuple[Any, Any]]:
    """(store, ingest report) of ``corpus`` indexed in a temporary folder, removed afterwards."""
    from ingest.pipeline import ingest_folder
    from ingest.store import EdgeStore

    with tempfile.TemporaryDirectory(prefix=".index-", dir=work_dir) as tmp:
        store = EdgeStore(Path(tmp) / EVAL_COLLECTION, EVAL_COLLECTION)
        try:
            yield store, ingest_folder(corpus, embedder, store, chunking, exclude=exclude, workers=workers)
        finally:
            store.close()


def _collect_warnings(warnings: list[str], report, queries: Sequence[EvalQuery], indexed: set[str]) -> None:
    for path, reason in report.skipped:
        message = f"corpus: skipped {path}: {reason}"
        if message not in warnings:
            warnings.append(message)
    for q in queries:
        for ref in q.relevant:
            message = f"line {q.line}: {ref.source} is not in the index; the query cannot be answered"
            if ref.source not in indexed and message not in warnings:
                warnings.append(message)


def _run_config(cfg: EvalConfig, queries: Sequence[EvalQuery], embedder, store, reranker, index: dict):
    from kb.search.query import SearchRequest, search

    base = SearchRequest("", k=CUTOFF, rerank=cfg.rerank, hybrid=cfg.hybrid, candidates=cfg.candidates)
    if queries:
        search(replace(base, query=queries[0].query), embedder, store, reranker)  # warm-up, untimed
    scores, latencies, per_query = [], [], []
    for q in queries:
        t0 = time.perf_counter()
        hits = search(replace(base, query=q.query), embedder, store, reranker).hits
        latencies.append((time.perf_counter() - t0) * 1000)
        matched = judge(hits, q.relevant)
        at_depth = {
            n: judge(
                search(replace(base, query=q.query, k=n, rerank=False), embedder, store).hits, q.relevant
            )
            for n in RERANK_DEPTHS
        }
        scores.append(query_scores(matched, len(q.relevant)) | first_stage_scores(at_depth, len(q.relevant)))
        per_query.append(
            {
                "line": q.line,
                "query": q.query,
                "lang": q.lang,
                "category": q.category,
                "first_relevant_rank": _first_rank(matched),
                "latency_ms": round(latencies[-1], 2),
                "sources": [h["source"] for h in hits],
                "first_stage_rank": _first_rank(at_depth[max(RERANK_DEPTHS)]),
            }
        )
    by_group: dict[str, list[int]] = {}
    for i, q in enumerate(queries):
        for key, value in (("category", q.category), ("lang", q.lang)):
            if value:
                by_group.setdefault(f"{key}: {value}", []).append(i)
    groups = {
        g: summarize([scores[i] for i in idx], [latencies[i] for i in idx])
        for g, idx in sorted(by_group.items())
    }
    return ConfigResult(cfg, summarize(scores, latencies), index, groups, per_query)


def _first_rank(matched: Matched) -> int | None:
    return next((rank for rank, m in enumerate(matched, 1) if m), None)


# --- reporting -----------------------------------------------------------------------------------


def markdown_table(results: Sequence[ConfigResult]) -> str:
    head = ["Config", *(LABELS[m] for m in (*QUALITY, *LATENCY)), "Chunks"]
    rows = [
        [
            r.config.name,
            *(f"{r.metrics[m]:.3f}" for m in QUALITY),
            *(f"{r.metrics[m]:.1f}" for m in LATENCY),
            str(r.index["chunks"]),
        ]
        for r in results
    ]
    return _table(head, rows)


def depth_table(results: Sequence[ConfigResult]) -> str:
    """First-stage recall at the rerank depths, for the results that carry it (older reports do not)."""
    rows = [
        [r.config.name, *(f"{r.metrics[m]:.3f}" for m in DEPTH)]
        for r in results
        if all(m in r.metrics for m in DEPTH)
    ]
    if not rows:
        return ""
    return "First-stage recall at rerank depths (the hits before any rerank):\n\n" + _table(
        ["Config", *(LABELS[m] for m in DEPTH)], rows
    )


def group_table(results: Sequence[ConfigResult]) -> str:
    """Top-1 / MRR@10 per category and language (rows) and configuration (columns)."""
    names = sorted({g for r in results for g in r.groups})
    if not names:
        return ""
    rows = [
        [
            g,
            str(int(results[0].groups[g]["n"])),
            *(f"{r.groups[g]['top1']:.2f} / {r.groups[g]['mrr10']:.2f}" for r in results),
        ]
        for g in names
    ]
    return _table(["Top-1 / MRR@10", "n", *(r.config.name for r in results)], rows)


def setups(results: Sequence[ConfigResult]) -> str:
    """One line per configuration: what it ran with."""
    lines = []
    for r in results:
        i, c = r.index, r.config
        extra = [*(["hybrid"] if c.hybrid else []), *([f"rerank over {c.candidates}"] if c.rerank else [])]
        lines.append(
            f"- **{c.name}**: {i['model']}, dim {i['dim']}, "
            f"chunks {i['chunk_tokens']}/{i['chunk_overlap']} "
            f"tokens ({i['chunks']} chunks, mean {i['mean_chunk_tokens']} tokens), "
            f"{' + '.join(['dense', *extra])}"
        )
    return "\n".join(lines)


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] + ["---:"] * (len(head) - 1)) + "|"]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def render_markdown(report: EvalReport) -> str:
    parts = [
        f"# {report.name}: {report.n_queries} queries over {report.corpus}",
        "",
        markdown_table(report.results),
        "",
        setups(report.results),
    ]
    for table in (depth_table(report.results), group_table(report.results)):
        if table:
            parts += ["", table]
    if report.warnings:
        parts += ["", "Warnings:", *(f"- {w}" for w in report.warnings)]
    return "\n".join(parts) + "\n"


def render_png(results: Sequence[ConfigResult], path: Path, use_matplotlib: bool = True) -> Path:
    """Grouped bars of the quality metrics (and latency beside them with matplotlib; Pillow otherwise)."""
    try:
        if not use_matplotlib:
            raise ImportError
        from matplotlib.figure import Figure
    except ImportError:
        return _render_png_pillow(results, path)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    quality, latency = fig.subplots(1, 2, width_ratios=[3, 1])
    width = 0.8 / max(1, len(results))
    for j, r in enumerate(results):
        offset = (j - (len(results) - 1) / 2) * width
        quality.bar(
            [x + offset for x in range(len(QUALITY))],
            [r.metrics[m] for m in QUALITY],
            width,
            label=r.config.name,
        )
        latency.bar([x + offset for x in range(len(LATENCY))], [r.metrics[m] for m in LATENCY], width)
    quality.set_xticks(range(len(QUALITY)), [LABELS[m] for m in QUALITY])
    quality.set_ylim(0, 1)
    quality.set_title("retrieval quality")
    fig.legend(loc="outside lower center", ncols=min(6, len(results)), fontsize="small")
    latency.set_xticks(range(len(LATENCY)), [LABELS[m] for m in LATENCY])
    latency.set_title("search latency (ms)")
    fig.savefig(path, dpi=110)
    return path


BAR_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75)]
LEGEND_PER_ROW = 5


def _render_png_pillow(results: Sequence[ConfigResult], path: Path) -> Path:
    """The quality bars only, drawn without matplotlib (Pillow comes with streamlit)."""
    from PIL import Image, ImageDraw

    legend_rows = -(-len(results) // LEGEND_PER_ROW)
    width, left, top, plot_h = 900, 40, 20, 340
    base = top + plot_h  # y of the 0 line
    img = Image.new("RGB", (width, base + 30 + 20 * legend_rows), "white")
    draw = ImageDraw.Draw(img)
    for tick in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = base - tick * plot_h
        draw.line([(left, y), (width - 10, y)], fill=(225, 225, 225))
        draw.text((5, y - 6), f"{tick:.2f}", fill="black")
    slot = (width - 10 - left) / len(QUALITY)
    bar = slot * 0.8 / max(1, len(results))
    for x, m in enumerate(QUALITY):
        draw.text((left + x * slot + slot / 2 - 20, base + 8), LABELS[m], fill="black")
        for j, r in enumerate(results):
            x0 = left + x * slot + slot * 0.1 + j * bar
            draw.rectangle(
                [x0, base - r.metrics[m] * plot_h, x0 + bar - 2, base], fill=BAR_COLORS[j % len(BAR_COLORS)]
            )
    for j, r in enumerate(results):
        x0, y0 = left + (j % LEGEND_PER_ROW) * 170, base + 30 + 20 * (j // LEGEND_PER_ROW)
        draw.rectangle([x0, y0, x0 + 10, y0 + 10], fill=BAR_COLORS[j % len(BAR_COLORS)])
        draw.text((x0 + 15, y0 - 1), r.config.name[:24], fill="black")
    img.save(path, format="PNG")
    return path


def write_report(report: EvalReport, out_dir: Path) -> dict[str, Path]:
    """``<name>-<time>.json``, ``.md`` and ``.png`` under ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{report.name}-{datetime.now().strftime(STAMP_FORMAT)}"
    paths = {
        "json": stem.with_suffix(".json"),
        "md": stem.with_suffix(".md"),
        "png": stem.with_suffix(".png"),
    }
    paths["json"].write_text(json.dumps(report.as_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    paths["md"].write_text(render_markdown(report), encoding="utf-8")
    render_png(report.results, paths["png"])
    return paths


def report_file(out_dir: Path, name: str, suffix: str) -> Path:
    """``<name><suffix>`` of the report folder: ValueError for a name that is not a bare report name
    (a path, ``..``, hidden), FileNotFoundError when no such file is directly inside the folder."""
    if not name or name.startswith(".") or ".." in name or any(c in name for c in "/\\\0"):
        raise ValueError(f"not a report name: {name!r}")
    root = out_dir.resolve()
    path = (root / f"{name}{suffix}").resolve()
    if path.parent != root or not path.is_file():  # a link to elsewhere counts as missing
        raise FileNotFoundError(f"no report {name!r}")
    return path


def list_reports(out_dir: Path) -> list[dict[str, Any]]:
    """The reports ``write_report`` left in ``out_dir``, newest first: ``{name (the file stem: the
    report's id), title (the report's name), time, json, md, png}`` (the files' paths; ``md``/``png``
    None when missing)."""
    found = []
    for path in out_dir.glob("*.json") if out_dir.is_dir() else ():
        try:
            report_file(out_dir, path.stem, ".json")
        except (ValueError, FileNotFoundError):  # hidden, or not a file of this folder: never served
            continue
        title, when = _stem_parts(path)
        md, png = path.with_suffix(".md"), path.with_suffix(".png")
        found.append(
            {
                "name": path.stem,
                "title": title,
                "time": when.isoformat(),
                "json": str(path),
                "md": str(md) if md.is_file() else None,
                "png": str(png) if png.is_file() else None,
            }
        )
    return sorted(found, key=lambda r: (r["time"], r["name"]), reverse=True)


def _stem_parts(path: Path) -> tuple[str, datetime]:
    """The report name and time a file name carries (its modification time if it carries none)."""
    if match := REPORT_STEM.fullmatch(path.stem):
        try:
            return match["report"], datetime.strptime(match["stamp"], STAMP_FORMAT)
        except ValueError:
            pass
    return path.stem, datetime.fromtimestamp(path.stat().st_mtime)


# --- `kb eval` -----------------------------------------------------------------------------------


def register_cli(sub) -> None:
    """Adds ``kb eval`` to the CLI's subcommands (listed in ``cli._EXTRA``)."""
    p = sub.add_parser(
        "eval", help="retrieval quality of configurations on a test set (own temporary indexes)"
    )
    p.add_argument("set", type=Path, help="test set, JSONL (format: data/eval/README.md)")
    p.add_argument("--corpus", type=Path, required=True, help="folder the set's sources are relative to")
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME=key=value,...",
        help=f"a configuration (repeatable); keys: {', '.join(CONFIG_KEYS)}",
    )
    p.add_argument("--lang", action="append", default=[], help="only queries with this lang (repeatable)")
    p.add_argument(
        "--category", action="append", default=[], help="only queries of this category (repeatable)"
    )
    p.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip matching corpus paths"
    )
    p.add_argument("--out", type=Path, help="report folder (default: DATA_DIR/eval/reports)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from ingest.model.download import ModelUnavailable
    from ingest.store import StoreError

    settings = Settings(**({"data_dir": args.data_dir} if getattr(args, "data_dir", None) else {}))
    try:
        queries = select(load_test_set(args.set), args.lang, args.category)
        configs = [parse_config(spec) for spec in args.config] or [EvalConfig()]
    except (EvalSetError, ConfigError, OSError) as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_USAGE
    if not queries:
        print("kb: no query of the set passes --lang/--category", file=sys.stderr)
        return EXIT_USAGE
    out_dir = args.out or settings.data_dir / REPORT_DIR
    name = args.set.stem + "".join(f"-{x}" for x in [*args.lang, *args.category])

    def say(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    try:
        report = run_eval(
            queries,
            args.corpus,
            configs,
            settings,
            name=name,
            exclude=args.exclude,
            work_dir=out_dir,
            on_progress=say,
        )
    except (ModelUnavailable, StoreError, ConfigError, FileNotFoundError, ValueError) as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
    paths = write_report(report, out_dir)
    if args.json:
        print(
            json.dumps(
                {**report.as_dict(), "files": {k: str(p) for k, p in paths.items()}}, ensure_ascii=False
            )
        )
        return EXIT_OK
    print(render_markdown(report))
    print(f"saved {paths['md']}, {paths['json'].name}, {paths['png'].name}")
    return EXIT_OK
