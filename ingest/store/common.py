"""Pure helpers both adapters share: payload enrichment, filter plans, file states."""

from __future__ import annotations

import fnmatch
import json
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ingest.pagesources import META_KEYS, PageSources
from ingest.sparse import SparseVector
from ingest.store.base import FileState, Point, SearchFilter, Vector

DENSE = "dense"
SPARSE = "sparse"
DIRS_FIELD = "dirs"
# keyword payload indexes every collection gets
SOURCE_NAME_FIELD = "source_name"
INDEXED_FIELDS = ("source", DIRS_FIELD, "kind", "ext", "file_hash", SOURCE_NAME_FIELD)
# the payload fields file_states() reads: a PDF's page sources are in every chunk's meta
STATE_FIELDS = ("source", "file_hash", "n_chunks", *(f"meta.{key}" for key in META_KEYS))
# fields the adapters add and strip from what they return
HIDDEN_FIELDS = (DIRS_FIELD,)
# reciprocal rank fusion constant (Qdrant's default): score = sum 1 / (RRF_K + rank - 1)
RRF_K = 2
# each branch of a hybrid query fetches this many candidates, whatever k is, so that a search's first
# hits do not depend on how many were asked for (fusion ranks over the same two lists); a larger k
# (beyond any search's cap) gets k
FUSION_PREFETCH = 200
UPSERT_BATCH = 256
SCROLL_PAGE = 2048
# most distinct sources a glob filter considers
MAX_GLOB_SOURCES = 1_000_000
_GLOB_CHARS = "*?["

# (payload field, accepted values): a point matches when the field has any of the values
KeywordCondition = tuple[str, tuple[str, ...]]


def as_floats(vector: Vector) -> list[float]:
    """A vector (list, tuple or numpy array) as a list of Python floats."""
    tolist = getattr(vector, "tolist", None)
    return [float(x) for x in (tolist() if tolist else vector)]


def source_dirs(source: str) -> list[str]:
    """Ancestor directories of a '/'-separated path, then the path itself."""
    parts = source.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def enrich_payload(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The payload as stored: with the ``dirs`` field prefix filters match on."""
    return {**payload, DIRS_FIELD: source_dirs(str(payload.get("source", "")))}


def strip_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    return {k: v for k, v in (payload or {}).items() if k not in HIDDEN_FIELDS}


def point_from_record(point_id: Any, vectors: Mapping[str, Any], payload: Mapping[str, Any] | None) -> Point:
    """A stored record (named dense and sparse vectors, payload) as a Point, whichever engine read it."""
    sparse = vectors.get(SPARSE)
    return Point(
        id=str(point_id),
        vector=list(vectors[DENSE]),
        payload=strip_payload(payload),
        sparse=SparseVector(tuple(sparse.indices), tuple(sparse.values)) if sparse else None,
    )


def normalize_prefix(prefix: str | None) -> str | None:
    """``./docs/`` → ``docs``; an empty prefix (or ``/``, ``.``) restricts nothing."""
    if prefix is None:
        return None
    parts = [p for p in prefix.replace("\\", "/").split("/") if p not in ("", ".")]
    return "/".join(parts) or None


def normalize_ext(ext: str) -> str:
    return ext.strip().lstrip(".").lower()


def glob_base_dir(glob: str) -> str | None:
    """The literal directory a glob starts with (``docs/*/x.md`` → ``docs``), if any."""
    literal = glob
    for i, ch in enumerate(glob):
        if ch in _GLOB_CHARS:
            literal = glob[:i]
            break
    else:
        return normalize_prefix(glob)
    return normalize_prefix(literal.rsplit("/", 1)[0]) if "/" in literal else None


def match_glob(sources: Iterable[str], glob: str) -> list[str]:
    """The sources matching an fnmatch glob (case-sensitive), sorted."""
    return sorted(s for s in sources if fnmatch.fnmatchcase(s, glob))


def allowed_sources(flt: SearchFilter | None) -> tuple[str, ...] | None:
    """The source names a filter admits (None: any); empty when it admits none."""
    if flt is None or (not flt.sources and flt.readable is None):
        return None
    if flt.readable is None:
        return tuple(flt.sources)
    if not flt.sources:
        return tuple(flt.readable)
    return tuple(s for s in flt.sources if s in set(flt.readable))


def keyword_conditions(flt: SearchFilter | None) -> list[KeywordCondition]:
    """The engine-side conditions of a filter, glob apart (it is narrowed to its base dir)."""
    if flt is None:
        return []
    conditions: list[KeywordCondition] = []
    names = allowed_sources(flt)
    if names is not None:
        conditions.append((SOURCE_NAME_FIELD, names))
    prefix = normalize_prefix(flt.source_prefix)
    if prefix:
        conditions.append((DIRS_FIELD, (prefix,)))
    base = glob_base_dir(flt.source_glob) if flt.source_glob else None
    if base and base != prefix:
        conditions.append((DIRS_FIELD, (base,)))
    if flt.kinds:
        conditions.append(("kind", tuple(flt.kinds)))
    if flt.exts:
        conditions.append(("ext", tuple(normalize_ext(e) for e in flt.exts)))
    return conditions


def plan_conditions(
    flt: SearchFilter | None, sources_matching: Callable[[list[KeywordCondition]], list[str]]
) -> list[KeywordCondition] | None:
    """All conditions of a filter; a glob becomes the list of sources it matches.

    ``sources_matching`` returns the distinct sources satisfying some conditions (a
    facet query). Returns None when the glob matches no source: nothing can be found.
    """
    if allowed_sources(flt) == ():
        return None  # no source may be searched
    conditions = keyword_conditions(flt)
    if flt is None or not flt.source_glob:
        return conditions
    matched = match_glob(sources_matching(conditions), flt.source_glob)
    if not matched:
        return None
    return [*conditions, ("source", tuple(matched))]


def prefetch_limit(k: int) -> int:
    return max(k, FUSION_PREFETCH)


def normalize_fingerprint(fingerprint: Mapping[str, Any]) -> dict[str, Any]:
    """The fingerprint as it reads back from JSON (tuples become lists…)."""
    return json.loads(json.dumps(dict(fingerprint), sort_keys=True))


def aggregate_file_states(rows: Iterable[Mapping[str, Any]]) -> dict[str, FileState]:
    """Per-source states from the ``STATE_FIELDS`` of each point's payload."""
    hashes: dict[str, Counter[str]] = defaultdict(Counter)
    announced: dict[tuple[str, str], int] = {}
    pages: dict[tuple[str, str], PageSources] = {}
    for row in rows:
        source, file_hash = str(row.get("source", "")), str(row.get("file_hash", ""))
        hashes[source][file_hash] += 1
        key = (source, file_hash)
        announced[key] = max(announced.get(key, 0), int(row.get("n_chunks") or 0))
        if key not in pages and (found := PageSources.from_meta(row.get("meta"))) is not None:
            pages[key] = found
    states = {}
    for source, counts in hashes.items():
        n_points, file_hash = max((n, h) for h, n in counts.items())
        states[source] = FileState(
            source=source,
            file_hash=file_hash,
            n_chunks=announced[(source, file_hash)],
            n_points=n_points,
            mixed=len(counts) > 1,
            pages=pages.get((source, file_hash)),
        )
    return states
