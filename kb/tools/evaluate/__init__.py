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

from kb.tools.evaluate.metrics import (
    CUTOFF,
    DEPTH,
    LABELS,
    LATENCY,
    QUALITY,
    RERANK_DEPTHS,
    TOP_KS,
    Matched,
    first_stage_scores,
    gains,
    judge,
    matches,
    mrr_at,
    ndcg_at,
    normalize_space,
    percentile,
    query_scores,
    recall_at,
    summarize,
    top_k,
)
from kb.tools.evaluate.report import (
    REPORT_DIR,
    REPORT_STEM,
    STAMP_FORMAT,
    depth_table,
    group_table,
    list_reports,
    markdown_table,
    render_markdown,
    render_png,
    report_file,
    setups,
    write_report,
)
from kb.tools.evaluate.runner import (
    CONFIG_KEYS,
    EVAL_COLLECTION,
    ConfigError,
    ConfigResult,
    EvalConfig,
    EvalReport,
    parse_config,
    resolve,
    run_eval,
)
from kb.tools.evaluate.testset import (
    EvalQuery,
    EvalSetError,
    Reference,
    load_test_set,
    parse_test_set,
    select,
)

__all__ = [
    "CONFIG_KEYS",
    "CUTOFF",
    "DEPTH",
    "EVAL_COLLECTION",
    "LABELS",
    "LATENCY",
    "QUALITY",
    "REPORT_DIR",
    "REPORT_STEM",
    "RERANK_DEPTHS",
    "STAMP_FORMAT",
    "TOP_KS",
    "ConfigError",
    "ConfigResult",
    "EvalConfig",
    "EvalQuery",
    "EvalReport",
    "EvalSetError",
    "Matched",
    "Reference",
    "depth_table",
    "first_stage_scores",
    "gains",
    "group_table",
    "judge",
    "list_reports",
    "load_test_set",
    "markdown_table",
    "matches",
    "mrr_at",
    "ndcg_at",
    "normalize_space",
    "parse_config",
    "parse_test_set",
    "percentile",
    "query_scores",
    "recall_at",
    "render_markdown",
    "render_png",
    "report_file",
    "resolve",
    "run_eval",
    "select",
    "setups",
    "summarize",
    "top_k",
    "write_report",
]
