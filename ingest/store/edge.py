"""The store on Qdrant Edge: Qdrant's engine in this process, persisted under one folder.

Layout of ``path``: ``shard/`` (the engine's segments and write-ahead log) and
``fingerprint.json`` (``{"dim": …, "fingerprint": {…}}``, written atomically after the
shard is created). The engine locks its WAL, so a second process (or a second
``EdgeStore`` in this one) opening the same folder gets a ``StoreError``; the lock goes
with ``close()`` or the process (a SIGKILLed one too).

A shard is created whole or not at all: it is built in ``shard.partial/`` (payload indexes
included), flushed and renamed to ``shard/``; ``--rebuild`` first renames the old one to
``shard.old/``. A process killed halfway leaves only a leftover that the next create removes.
A shard that lacks a payload index (made before this was so) gets it when it is opened.

Every update is in the WAL when it returns (a SIGKILL loses nothing: the WAL replays on
the next open); ``flush()`` writes segments and WAL to disk and is the point callers rely
on for durability. The engine has no background optimizer: ``optimize()`` builds the
HNSW index after a large ingest (minutes for 100k points on a few cores).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import qdrant_edge as qe

from ingest.records import Hit
from ingest.sparse import SparseVector
from ingest.store.base import (
    DEFAULT_K,
    FileState,
    FingerprintMismatch,
    Point,
    SearchFilter,
    StoreError,
    Vector,
)
from ingest.store.common import (
    DENSE,
    HIDDEN_FIELDS,
    INDEXED_FIELDS,
    MAX_GLOB_SOURCES,
    RRF_K,
    SCROLL_PAGE,
    SPARSE,
    STATE_FIELDS,
    UPSERT_BATCH,
    KeywordCondition,
    aggregate_file_states,
    as_floats,
    enrich_payload,
    normalize_fingerprint,
    plan_conditions,
    point_from_record,
    prefetch_limit,
    strip_payload,
)

SHARD_DIR = "shard"
PARTIAL_SUFFIX = ".partial"  # a shard being created
OLD_SUFFIX = ".old"  # a shard being dropped
FINGERPRINT_FILE = "fingerprint.json"
# marker the engine writes when it creates a shard
SHARD_MARKER = "edge_config.json"
# how the engine reports a WAL held by another open shard
LOCKED_MARKER = "WouldBlock"
RETURNED_PAYLOAD = qe.PayloadSelector.Exclude(list(HIDDEN_FIELDS))


@contextmanager
def _engine(action: str) -> Iterator[None]:
    """Turn the engine's bare exceptions into StoreError (bad arguments stay as they are)."""
    try:
        yield
    except (StoreError, ValueError, TypeError):
        raise
    except Exception as exc:  # the engine raises plain Exception
        raise StoreError(f"qdrant-edge: {action} failed: {exc}") from exc


def _filter(conditions: list[KeywordCondition]) -> qe.Filter | None:
    if not conditions:
        return None
    must: list[Any] = [
        qe.FieldCondition(key, match=qe.MatchValue(vals[0]) if len(vals) == 1 else qe.MatchAny(list(vals)))
        for key, vals in conditions
    ]
    return qe.Filter(must=must)


def _sparse(vector: SparseVector) -> qe.SparseVector:
    return qe.SparseVector(list(vector.indices), list(vector.values))


def _vectors(point: Point) -> dict[str, Any]:
    vectors: dict[str, Any] = {DENSE: point.vector}
    if point.sparse is not None and not point.sparse.is_empty:
        vectors[SPARSE] = _sparse(point.sparse)
    return vectors


def _sync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EdgeStore:
    """A Store over one ``qdrant_edge`` shard under ``path``."""

    def __init__(self, path: Path, collection: str) -> None:
        self.path = Path(path)
        self.collection = collection
        self._shard: qe.EdgeShard | None = None
        if (self._shard_dir / SHARD_MARKER).exists():
            self._shard = self._open()

    @property
    def _shard_dir(self) -> Path:
        return self.path / SHARD_DIR

    @property
    def _fingerprint_file(self) -> Path:
        return self.path / FINGERPRINT_FILE

    def _open(self) -> qe.EdgeShard:
        try:
            return qe.EdgeShard.load(str(self._shard_dir))
        except Exception as exc:
            if LOCKED_MARKER in str(exc):
                message = f"the store {self.path} is open in another process (or another EdgeStore)"
                raise StoreError(message) from exc
            raise StoreError(f"cannot open the store {self.path}: {exc}") from exc

    def _require(self) -> qe.EdgeShard:
        if self._shard is None:
            raise StoreError(f"the store {self.path} has no collection yet (or was closed)")
        return self._shard

    def _read_meta(self) -> dict[str, Any] | None:
        try:
            return json.loads(self._fingerprint_file.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            raise StoreError(f"unreadable fingerprint {self._fingerprint_file}: {exc}") from exc

    def _write_meta(self, dim: int, fingerprint: dict[str, Any]) -> None:
        tmp = self._fingerprint_file.with_suffix(".tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"dim": dim, "fingerprint": normalize_fingerprint(fingerprint)}, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._fingerprint_file)

    def _aside(self, suffix: str) -> Path:
        return self._shard_dir.with_name(SHARD_DIR + suffix)

    def _create(self, dim: int, fingerprint: dict[str, Any]) -> None:
        """Build the shard aside and rename it into place: a kill never leaves half a shard."""
        config = qe.EdgeConfig(
            vectors={DENSE: qe.EdgeVectorParams(size=dim, distance=qe.Distance.Cosine)},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
        )
        self.path.mkdir(parents=True, exist_ok=True)
        partial = self._aside(PARTIAL_SUFFIX)
        shutil.rmtree(partial, ignore_errors=True)
        shutil.rmtree(self._aside(OLD_SUFFIX), ignore_errors=True)
        with _engine("create"):
            shard = qe.EdgeShard.create(str(partial), config)
            try:
                self._add_indexes(shard, INDEXED_FIELDS)
                shard.flush()
            finally:
                shard.close()
        os.rename(partial, self._shard_dir)
        _sync_dir(self.path)
        self._shard = self._open()
        self._write_meta(dim, fingerprint)

    @staticmethod
    def _add_indexes(shard: qe.EdgeShard, names: Sequence[str]) -> None:
        for name in names:
            shard.update(qe.UpdateOperation.create_field_index(name, qe.PayloadSchemaType.Keyword))

    def _repair_indexes(self, shard: qe.EdgeShard) -> None:
        """Add the payload indexes a shard lacks (one created by a process killed halfway)."""
        with _engine("info"):
            missing = [name for name in INDEXED_FIELDS if name not in shard.info().payload_schema]
        if missing:
            with _engine("create index"):
                self._add_indexes(shard, missing)
                shard.flush()

    def ensure_collection(self, dim: int, fingerprint: dict[str, Any]) -> None:
        if self._shard is None:
            self._create(dim, fingerprint)
            return
        self._repair_indexes(self._shard)
        wanted = normalize_fingerprint(fingerprint)
        meta = self._read_meta()
        if meta is None:
            if self.count():
                raise FingerprintMismatch(None, wanted)
            self._write_meta(dim, wanted)
            return
        stored = meta.get("fingerprint")
        if stored != wanted:
            raise FingerprintMismatch(stored, wanted)
        if meta.get("dim") != dim:
            raise FingerprintMismatch({**stored, "dim": meta.get("dim")}, {**wanted, "dim": dim})

    def recreate_collection(self, dim: int, fingerprint: dict[str, Any]) -> None:
        self.close()
        old = self._aside(OLD_SUFFIX)
        shutil.rmtree(old, ignore_errors=True)
        if self._shard_dir.exists():
            os.rename(self._shard_dir, old)  # one step: the old shard is whole or gone
        self._fingerprint_file.unlink(missing_ok=True)
        shutil.rmtree(old, ignore_errors=True)
        self._create(dim, fingerprint)

    def fingerprint(self) -> dict[str, Any] | None:
        meta = self._read_meta() if self._shard is not None else None
        return meta.get("fingerprint") if meta else None

    def replace_fingerprint(self, fingerprint: dict[str, Any]) -> None:
        self._require()
        meta = self._read_meta()
        if meta is None:
            raise StoreError(f"the store {self.path} has no fingerprint to replace")
        self._write_meta(int(meta["dim"]), fingerprint)

    def upsert(self, points: Sequence[Point]) -> None:
        shard = self._require()
        for start in range(0, len(points), UPSERT_BATCH):
            batch = [
                qe.Point(id=p.id, vector=_vectors(p), payload=enrich_payload(p.payload))
                for p in points[start : start + UPSERT_BATCH]
            ]
            with _engine("upsert"):
                shard.update(qe.UpdateOperation.upsert_points(batch))

    def delete_source(self, source: str, keep_file_hash: str | None = None) -> None:
        if self._shard is None:
            return
        must_not: list[Any] | None = None
        if keep_file_hash is not None:
            must_not = [qe.FieldCondition("file_hash", match=qe.MatchValue(keep_file_hash))]
        flt = qe.Filter(must=[qe.FieldCondition("source", match=qe.MatchValue(source))], must_not=must_not)
        with _engine("delete"):
            self._shard.update(qe.UpdateOperation.delete_points_by_filter(flt))

    def _scroll(self, fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        shard = self._require()
        selector = qe.PayloadSelector.Include(list(fields))
        offset = None
        while True:
            with _engine("scroll"):
                records, offset = shard.scroll(
                    qe.ScrollRequest(offset=offset, limit=SCROLL_PAGE, with_payload=selector)
                )
            for record in records:
                yield record.payload or {}
            if offset is None:
                return

    def file_states(self) -> dict[str, FileState]:
        if self._shard is None:
            return {}
        return aggregate_file_states(self._scroll(STATE_FIELDS))

    def scroll_points(self) -> Iterator[Point]:
        if self._shard is None:
            return
        offset = None
        while True:
            request = qe.ScrollRequest(
                offset=offset, limit=SCROLL_PAGE, with_payload=RETURNED_PAYLOAD, with_vector=True
            )
            with _engine("scroll"):
                records, offset = self._shard.scroll(request)
            for r in records:
                vectors: dict[str, Any] = dict(r.vector or {})  # type: ignore[arg-type]
                yield point_from_record(r.id, vectors, r.payload)
            if offset is None:
                return

    def _sources_matching(self, conditions: list[KeywordCondition]) -> list[str]:
        shard = self._require()
        request = qe.FacetRequest(
            key="source", limit=MAX_GLOB_SOURCES, exact=True, filter=_filter(conditions)
        )
        with _engine("facet"):
            return [str(hit.value) for hit in shard.facet(request)]

    def search(
        self,
        dense: Vector | None = None,
        sparse: SparseVector | None = None,
        k: int = DEFAULT_K,
        flt: SearchFilter | None = None,
    ) -> list[Hit]:
        if sparse is not None and sparse.is_empty:
            sparse = None
        if self._shard is None or (dense is None and sparse is None):
            return []
        conditions = plan_conditions(flt, self._sources_matching)
        if conditions is None:
            return []
        branches = []
        if dense is not None:
            branches.append(qe.Query.Nearest(as_floats(dense), using=DENSE))
        if sparse is not None:
            branches.append(qe.Query.Nearest(_sparse(sparse), using=SPARSE))
        engine_filter = _filter(conditions)
        if len(branches) == 1:
            request = qe.QueryRequest(
                limit=k, query=branches[0], filter=engine_filter, with_payload=RETURNED_PAYLOAD
            )
        else:
            prefetches = [
                qe.Prefetch(limit=prefetch_limit(k), query=q, filter=engine_filter) for q in branches
            ]
            request = qe.QueryRequest(
                limit=k,
                query=qe.Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]  # the stub omits Fusion's variants
                prefetches=prefetches,
                with_payload=RETURNED_PAYLOAD,
            )
        with _engine("query"):
            found = self._shard.query(request)
        return [Hit(id=str(p.id), score=float(p.score), payload=strip_payload(p.payload)) for p in found]

    def count(self) -> int:
        if self._shard is None:
            return 0
        with _engine("count"):
            return int(self._shard.count(qe.CountRequest(exact=True)))

    def retrieve(self, ids: Sequence[str]) -> list[Hit]:
        if self._shard is None or not ids:
            return []
        with _engine("retrieve"):
            records = self._shard.retrieve(list(ids), RETURNED_PAYLOAD, False)
        by_id = {str(r.id): r for r in records}
        return [Hit(id=i, score=0.0, payload=strip_payload(by_id[i].payload)) for i in ids if i in by_id]

    def flush(self) -> None:
        if self._shard is not None:
            with _engine("flush"):
                self._shard.flush()

    def optimize(self) -> None:
        if self._shard is not None:
            with _engine("optimize"):
                self._shard.optimize()

    def close(self) -> None:
        if self._shard is not None:
            shard, self._shard = self._shard, None
            with _engine("close"):
                shard.close()
