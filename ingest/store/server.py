"""The store on a Qdrant server or cluster through qdrant-client.

The fingerprint lives in the collection's metadata under ``kb_fingerprint`` (servers
with collection metadata support; ``QdrantClient(":memory:")`` has it too). Writes
wait for the server's acknowledgement, so ``flush()`` has nothing left to do and the
server optimizes on its own.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ApiException

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

FINGERPRINT_KEY = "kb_fingerprint"
# what qdrant-client's local mode says about payload indexes (they are no-ops there)
LOCAL_INDEX_WARNING = "Payload indexes have no effect in the local Qdrant"
RETURNED_PAYLOAD = models.PayloadSelectorExclude(exclude=list(HIDDEN_FIELDS))


def _sparse(vector: SparseVector) -> models.SparseVector:
    return models.SparseVector(indices=list(vector.indices), values=list(vector.values))


def _filter(conditions: list[KeywordCondition]) -> models.Filter | None:
    if not conditions:
        return None
    must: list[models.Condition] = [
        models.FieldCondition(
            key=key,
            match=models.MatchValue(value=values[0])
            if len(values) == 1
            else models.MatchAny(any=list(values)),
        )
        for key, values in conditions
    ]
    return models.Filter(must=must)


def _point(point: Point) -> models.PointStruct:
    vector: dict[str, Any] = {DENSE: as_floats(point.vector)}
    if point.sparse is not None and not point.sparse.is_empty:
        vector[SPARSE] = _sparse(point.sparse)
    return models.PointStruct(id=point.id, vector=vector, payload=enrich_payload(point.payload))


def _hit(point: models.ScoredPoint | models.Record, score: float) -> Hit:
    return Hit(id=str(point.id), score=score, payload=strip_payload(point.payload))


class ServerStore:
    """A Store over one collection of a Qdrant server (or qdrant-client's local mode)."""

    def __init__(self, client: QdrantClient, collection: str) -> None:
        self.client = client
        self.collection = collection
        options = client.init_options
        self.where = str(options.get("url") or options.get("host") or options.get("location") or "qdrant")
        self._exists = False

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        try:
            yield
        except ApiException as exc:
            raise StoreError(f"Qdrant at {self.where}: {action} failed: {exc}") from exc

    def _collection_exists(self) -> bool:
        if not self._exists:
            with self._errors("collection lookup"):
                self._exists = self.client.collection_exists(self.collection)
        return self._exists

    def _create(self, dim: int, fingerprint: dict[str, Any]) -> None:
        with self._errors("create collection"):
            self.client.create_collection(
                self.collection,
                vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
                sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
                metadata={FINGERPRINT_KEY: normalize_fingerprint(fingerprint)},
            )
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=LOCAL_INDEX_WARNING)
                for name in INDEXED_FIELDS:
                    self.client.create_payload_index(self.collection, name, models.PayloadSchemaType.KEYWORD)
        self._exists = True

    def ensure_collection(self, dim: int, fingerprint: dict[str, Any]) -> None:
        if not self._collection_exists():
            self._create(dim, fingerprint)
            return
        wanted = normalize_fingerprint(fingerprint)
        with self._errors("read collection"):
            config = self.client.get_collection(self.collection).config
        vectors = config.params.vectors
        if not isinstance(vectors, dict) or DENSE not in vectors:
            raise StoreError(
                f"collection {self.collection!r} at {self.where} has no {DENSE!r} vector: not a kb collection"
            )
        stored = (config.metadata or {}).get(FINGERPRINT_KEY)
        if stored is None:
            if self.count():
                raise FingerprintMismatch(None, wanted)
            with self._errors("write fingerprint"):
                self.client.update_collection(self.collection, metadata={FINGERPRINT_KEY: wanted})
            return
        if stored != wanted:
            raise FingerprintMismatch(stored, wanted)
        if vectors[DENSE].size != dim:
            raise FingerprintMismatch({**stored, "dim": vectors[DENSE].size}, {**wanted, "dim": dim})

    def recreate_collection(self, dim: int, fingerprint: dict[str, Any]) -> None:
        with self._errors("delete collection"):
            self.client.delete_collection(self.collection)
        self._exists = False
        self._create(dim, fingerprint)

    def fingerprint(self) -> dict[str, Any] | None:
        if not self._collection_exists():
            return None
        with self._errors("read collection"):
            metadata = self.client.get_collection(self.collection).config.metadata or {}
        return metadata.get(FINGERPRINT_KEY)

    def replace_fingerprint(self, fingerprint: dict[str, Any]) -> None:
        if not self._collection_exists():
            raise StoreError(f"collection {self.collection!r} at {self.where} does not exist yet")
        with self._errors("write fingerprint"):
            metadata = {FINGERPRINT_KEY: normalize_fingerprint(fingerprint)}
            self.client.update_collection(self.collection, metadata=metadata)

    def upsert(self, points: Sequence[Point]) -> None:
        if not self._collection_exists():
            raise StoreError(f"collection {self.collection!r} at {self.where} does not exist yet")
        for start in range(0, len(points), UPSERT_BATCH):
            batch = [_point(p) for p in points[start : start + UPSERT_BATCH]]
            with self._errors("upsert"):
                self.client.upsert(self.collection, batch, wait=True)

    def delete_source(self, source: str, keep_file_hash: str | None = None) -> None:
        if not self._collection_exists():
            return
        must_not: list[models.Condition] | None = None
        if keep_file_hash is not None:
            must_not = [models.FieldCondition(key="file_hash", match=models.MatchValue(value=keep_file_hash))]
        must: list[models.Condition] = [
            models.FieldCondition(key="source", match=models.MatchValue(value=source))
        ]
        selector = models.FilterSelector(filter=models.Filter(must=must, must_not=must_not))
        with self._errors("delete"):
            self.client.delete(self.collection, points_selector=selector, wait=True)

    def _scroll(self, fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        offset: Any = None
        while True:
            with self._errors("scroll"):
                records, offset = self.client.scroll(
                    self.collection, limit=SCROLL_PAGE, offset=offset, with_payload=list(fields)
                )
            for record in records:
                yield record.payload or {}
            if offset is None:
                return

    def file_states(self) -> dict[str, FileState]:
        if not self._collection_exists():
            return {}
        return aggregate_file_states(self._scroll(STATE_FIELDS))

    def scroll_points(self) -> Iterator[Point]:
        if not self._collection_exists():
            return
        offset: Any = None
        while True:
            with self._errors("scroll"):
                records, offset = self.client.scroll(
                    self.collection,
                    limit=SCROLL_PAGE,
                    offset=offset,
                    with_payload=RETURNED_PAYLOAD,
                    with_vectors=True,
                )
            for r in records:
                vectors: dict[str, Any] = r.vector if isinstance(r.vector, dict) else {}
                yield point_from_record(r.id, vectors, r.payload)
            if offset is None:
                return

    def _sources_matching(self, conditions: list[KeywordCondition]) -> list[str]:
        with self._errors("facet"):
            response = self.client.facet(
                self.collection,
                "source",
                facet_filter=_filter(conditions),
                limit=MAX_GLOB_SOURCES,
                exact=True,
            )
        return [str(hit.value) for hit in response.hits]

    def search(
        self,
        dense: Vector | None = None,
        sparse: SparseVector | None = None,
        k: int = DEFAULT_K,
        flt: SearchFilter | None = None,
    ) -> list[Hit]:
        if sparse is not None and sparse.is_empty:
            sparse = None
        if (dense is None and sparse is None) or not self._collection_exists():
            return []
        conditions = plan_conditions(flt, self._sources_matching)
        if conditions is None:
            return []
        query_filter = _filter(conditions)
        branches: list[tuple[Any, str]] = []
        if dense is not None:
            branches.append((as_floats(dense), DENSE))
        if sparse is not None:
            branches.append((_sparse(sparse), SPARSE))
        with self._errors("query"):
            if len(branches) == 1:
                ((query, using),) = branches
                response = self.client.query_points(
                    self.collection,
                    query=query,
                    using=using,
                    query_filter=query_filter,
                    limit=k,
                    with_payload=RETURNED_PAYLOAD,
                )
            else:
                prefetch = [
                    models.Prefetch(query=query, using=using, filter=query_filter, limit=prefetch_limit(k))
                    for query, using in branches
                ]
                response = self.client.query_points(
                    self.collection,
                    prefetch=prefetch,
                    query=models.FusionQuery(fusion=models.Fusion.RRF),
                    limit=k,
                    with_payload=RETURNED_PAYLOAD,
                )
        return [_hit(p, float(p.score)) for p in response.points]

    def count(self) -> int:
        if not self._collection_exists():
            return 0
        with self._errors("count"):
            return self.client.count(self.collection, exact=True).count

    def retrieve(self, ids: Sequence[str]) -> list[Hit]:
        if not ids or not self._collection_exists():
            return []
        with self._errors("retrieve"):
            records = self.client.retrieve(self.collection, list(ids), with_payload=RETURNED_PAYLOAD)
        by_id = {str(r.id): r for r in records}
        return [_hit(by_id[i], 0.0) for i in ids if i in by_id]

    def flush(self) -> None:
        """Nothing to do: every write waited for the server."""

    def optimize(self) -> None:
        """Nothing to do: the server optimizes in the background."""

    def close(self) -> None:
        self.client.close()
