"""What crosses the API: the hit record, and the names the service, the CLI and the app share.

Light on purpose (standard library and one pure helper): the Streamlit app imports it, and must load
neither a model, the store nor the parsers.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from ingest.pagesources import page_ranges

__all__ = [
    "ACTIVE_JOB_STATES",
    "ASK_EVENTS",
    "DOCUMENT_KINDS",
    "EVAL_LABELS",
    "EVAL_LATENCY",
    "EVAL_QUALITY",
    "MAX_K",
    "RERANK_DEPTHS",
    "ROLES",
    "UPLOAD_SCOPE",
    "SearchHit",
    "page_ranges",
    "role_at_least",
]

# --- search ----------------------------------------------------------------------------------------

MAX_K = 200  # hits one search returns at most
DOCUMENT_KINDS = ("pdf", "markdown", "code", "text")  # what a loader makes of a file (the kind filter)
UPLOAD_SCOPE = ".uploads/"  # sources under it came through uploads, not a folder


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One search result with its citation: the CLI's ``--json``, the HTTP API and the app all show this.

    ``page`` (PDFs), ``line_start``/``line_end`` (code and text) and ``heading_path`` (Markdown) locate
    the passage in ``source``. After a rerank, ``score`` is the reranker's and ``retrieval_score`` the
    store's; ``reranked_window`` says the reranker read a window of a passage too long for it.
    """

    rank: int
    id: str
    score: float
    source: str
    kind: str
    text: str
    position: int | None = None
    page: int | None = None
    line_start: int | None = None
    line_end: int | None = None
    heading_path: tuple[str, ...] = ()
    ocr: bool = False
    retrieval_score: float | None = None
    rerank_score: float | None = None
    reranked_window: bool | None = None
    _OPTIONAL = ("retrieval_score", "rerank_score", "reranked_window")

    @classmethod
    def from_payload(
        cls, id: str, rank: int, score: float, payload: dict[str, Any], **scores: float | bool | None
    ) -> SearchHit:
        """A stored point's payload (``Chunk.payload()``) as a hit at ``rank``."""
        return cls(
            rank=rank,
            id=id,
            score=round(float(score), 6),
            source=payload.get("source") or "",
            kind=payload.get("kind") or "",
            text=payload.get("text", ""),
            position=payload.get("position"),
            page=payload.get("page"),
            line_start=payload.get("line_start"),
            line_end=payload.get("line_end"),
            heading_path=tuple(payload.get("heading_path") or ()),
            ocr=bool((payload.get("meta") or {}).get("ocr")),
            **{k: (round(v, 6) if isinstance(v, float) else v) for k, v in scores.items() if v is not None},
        )

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape (README, "Hit fields"); rerank fields only after a rerank."""
        out = asdict(self)
        out["heading_path"] = list(self.heading_path)
        for key in self._OPTIONAL:
            if out[key] is None:
                del out[key]
        return out

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SearchHit:
        known = {f for f in cls.__dataclass_fields__ if not f.startswith("_")}
        values = {k: v for k, v in obj.items() if k in known}
        values["heading_path"] = tuple(values.get("heading_path") or ())
        return cls(**values)

    @property
    def locator(self) -> str:
        """Where in its file the passage lies, for a person: "p. 3", "lines 10-24", "Setup > Linux"."""
        if self.page:
            return f"p. {self.page}"
        if self.line_start:
            return f"lines {self.line_start}-{self.line_end}"
        return " > ".join(self.heading_path)


# --- answers ---------------------------------------------------------------------------------------

# the server-sent events of POST /ask, in the order they come (``kb.answer.flow`` describes each)
ASK_EVENTS = ("passages", "token", "answer", "error")

# --- team access -----------------------------------------------------------------------------------

ROLES = ("reader", "editor", "admin")  # each role may do what the ones before it may


def role_at_least(role: str, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


# --- jobs ------------------------------------------------------------------------------------------

ACTIVE_JOB_STATES = ("queued", "running")  # the others: "done", "failed"

# --- evaluation reports ----------------------------------------------------------------------------

EVAL_QUALITY = ("top1", "top3", "top5", "recall10", "mrr10", "ndcg10")
EVAL_LATENCY = ("p50_ms", "p99_ms")
RERANK_DEPTHS = (10, 20, 40, 80)  # candidate counts whose first-stage recall a report carries
EVAL_LABELS = {
    "top1": "Top-1",
    "top3": "Top-3",
    "top5": "Top-5",
    "recall10": "R@10",
    "mrr10": "MRR@10",
    "ndcg10": "nDCG@10",
    "p50_ms": "P50 ms",
    "p99_ms": "P99 ms",
    **{f"first_recall{n}": f"R@{n}" for n in RERANK_DEPTHS},
}
