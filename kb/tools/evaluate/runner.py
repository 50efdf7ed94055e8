"""The runner: one temporary index per index setup, every query through the search the CLI,
the service and the app take, judged by the metrics."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from kb.contract import split_source
from kb.search.query import RERANK_CANDIDATES
from kb.settings import Settings
from kb.tools.evaluate.metrics import (
    CUTOFF,
    RERANK_DEPTHS,
    Matched,
    first_stage_scores,
    judge,
    query_scores,
    summarize,
)
from kb.tools.evaluate.testset import EvalQuery

EVAL_COLLECTION = "eval"
EVAL_SOURCE = "corpus"  # the source name of the corpus in its temporary index
TRUE_WORDS, FALSE_WORDS = {"on", "true", "yes", "1"}, {"off", "false", "no", "0"}


class ConfigError(ValueError):
    """A ``--config`` specification that cannot be read."""


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
            if target > embedder.max_document_tokens:
                raise ConfigError(
                    f"config {names}: chunk_tokens={target} is more than {Path(model).name} takes "
                    f"({embedder.max_document_tokens} tokens per document)"
                )
            say(f"indexing {corpus} for {names} ({Path(model).name}, chunks {target}/{overlap})")
            chunking = ChunkSettings(target, overlap)
            with _temporary_index(corpus, embedder, chunking, exclude, settings, work_dir) as (
                store,
                report,
            ):
                indexed = {split_source(key)[1] for key in store.file_states()}
                _collect_warnings(warnings, report, queries, indexed)
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
    corpus: Path, embedder, chunking, exclude: Iterable[str], settings: Settings, work_dir: Path | None
) -> Iterator[tuple[Any, Any]]:
    """(store, ingest report) of ``corpus`` indexed in a temporary folder, removed afterwards; the
    user's OCR, file-size and parse limits apply as they do to ``kb ingest``."""
    from ingest.loaders import LoadOptions
    from ingest.pipeline import IngestLimits, ingest_folder
    from ingest.store import EdgeStore

    with tempfile.TemporaryDirectory(prefix=".index-", dir=work_dir) as tmp:
        store = EdgeStore(Path(tmp) / EVAL_COLLECTION, EVAL_COLLECTION)
        try:
            report = ingest_folder(
                corpus,
                embedder,
                store,
                chunking,
                source=EVAL_SOURCE,
                exclude=exclude,
                workers=settings.parse_workers,
                load_options=LoadOptions.from_settings(settings),
                limits=IngestLimits.from_settings(settings),
            )
            yield store, report
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
                "sources": [h.path for h in hits],
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
