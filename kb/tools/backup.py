"""Backups: `kb export PATH` streams a collection to one gzip JSONL file, `kb import PATH` loads it.

Format (``FORMAT``, version ``VERSION``), one JSON object a line:

1. a header: ``{"format": "kb-backup", "version": 1, "collection": …, "dim": …, "fingerprint": {…},
   "created": ISO time}``;
2. one line a point: ``{"id": …, "dense": base64 of little-endian float32, "sparse": {"indices": […],
   "values": […]} or null, "payload": {…}}`` (vectors exactly as stored, payload as the adapters
   return it);
3. a footer: ``{"end": true, "points": N}``: a backup without it, or with another count, is
   truncated and refused before anything is written.

Export writes ``PATH.partial`` and renames it when done, so a killed export leaves no file that
looks whole. Import checks the whole file first (the header, the count, and every point: a UUID id,
finite dense values of the header's dimension, a sparse vector of distinct 32-bit indices with as
many finite values, a payload object with its source and text), so that a bad file is refused
before anything is dropped or written; then: into a store without the collection (or
an empty one) it creates it with the backup's dimension and fingerprint; into a collection with
the same fingerprint it upserts (ids are deterministic, so importing twice changes nothing, and
points not in the backup stay); a different fingerprint is refused (``FingerprintMismatch``)
unless ``force``, which drops the collection first. Either way the store is flushed at the end;
an import killed halfway is finished by running it again. The store adapter (embedded engine or
server) can differ between export and import.
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from ingest.sparse import SparseVector
from ingest.store.base import Point, Store, StoreError

FORMAT = "kb-backup"
VERSION = 1
IMPORT_BATCH = 256  # points per upsert
PARTIAL_SUFFIX = ".partial"
GZIP_LEVEL = 6
PAYLOAD_TEXT = ("source", "text")  # payload fields every point has, as strings
SPARSE_INDEX_MAX = 2**32 - 1  # Qdrant's sparse indices are unsigned 32-bit


class BackupError(Exception):
    """A backup file that cannot be read: not a kb backup, another version, truncated, damaged."""


@dataclass(frozen=True)
class BackupInfo:
    collection: str
    dim: int
    fingerprint: dict[str, Any]
    points: int


def encode_point(p: Point) -> dict[str, Any]:
    dense = np.asarray(p.vector, dtype="<f4")
    sparse = {"indices": list(p.sparse.indices), "values": list(p.sparse.values)} if p.sparse else None
    return {
        "id": p.id,
        "dense": base64.b64encode(dense.tobytes()).decode("ascii"),
        "sparse": sparse,
        "payload": p.payload,
    }


def decode_point(row: dict[str, Any], dim: int) -> Point:
    """One point line as a Point, or BackupError naming what is wrong with it: everything a store
    would refuse halfway through an import (id, vectors, payload) is checked here, before any write."""
    raw_id = row.get("id")
    try:
        pid = str(uuid.UUID(raw_id)) if isinstance(raw_id, str) else None
    except ValueError:
        pid = None
    if pid is None:
        raise BackupError(f"point id {raw_id!r} is not a UUID")
    try:
        dense = np.frombuffer(base64.b64decode(row.get("dense") or "", validate=True), dtype="<f4")
    except (TypeError, ValueError) as err:
        raise BackupError(f"point {pid}: the dense vector is not base64 float32 ({err})") from None
    if dense.shape != (dim,):
        raise BackupError(f"point {pid}: {dense.shape[0]} dimensions, the header says {dim}")
    if not np.isfinite(dense).all():
        raise BackupError(f"point {pid}: the dense vector has an infinite or NaN value")
    payload = row.get("payload")
    if not isinstance(payload, dict) or not all(isinstance(payload.get(k), str) for k in PAYLOAD_TEXT):
        raise BackupError(f"point {pid}: the payload is not an object with {' and '.join(PAYLOAD_TEXT)}")
    return Point(pid, dense.astype(np.float32), dict(payload), _sparse(row.get("sparse"), pid))


def _sparse(s: Any, pid: str) -> SparseVector | None:
    if s is None:
        return None
    indices, values = (s.get("indices"), s.get("values")) if isinstance(s, dict) else (None, None)
    if not (isinstance(indices, list) and isinstance(values, list)):
        indices, values = [None], []  # refused below
    ok = (
        len(indices) == len(values)
        and all(type(i) is int and 0 <= i <= SPARSE_INDEX_MAX for i in indices)
        and all(type(v) in (int, float) and math.isfinite(v) for v in values)
        and len(set(indices)) == len(indices)
    )
    if not ok:
        raise BackupError(
            f"point {pid}: the sparse vector is not distinct whole-number indices with as many finite values"
        )
    return SparseVector(tuple(indices), tuple(values))


def export_collection(
    store: Store, path: Path, collection: str = "", on_progress: Callable[[int], None] | None = None
) -> BackupInfo:
    """Write every point of ``store`` to ``path`` (gzip JSONL, see the module docstring)."""
    fingerprint = store.fingerprint()
    if fingerprint is None:
        raise StoreError("nothing to export: the store has no collection yet")
    dim = _dim(store, fingerprint)
    path = Path(path)
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    n = 0
    try:
        with gzip.open(partial, "wt", encoding="utf-8", compresslevel=GZIP_LEVEL) as f:
            header = {
                "format": FORMAT,
                "version": VERSION,
                "collection": collection,
                "dim": dim,
                "fingerprint": fingerprint,
                "created": datetime.now(UTC).isoformat(),
            }
            f.write(json.dumps(header, ensure_ascii=False) + "\n")
            for point in store.scroll_points():
                f.write(json.dumps(encode_point(point), ensure_ascii=False) + "\n")
                n += 1
                if on_progress and n % IMPORT_BATCH == 0:
                    on_progress(n)
            f.write(json.dumps({"end": True, "points": n}) + "\n")
        with open(partial, "rb") as raw:
            os.fsync(raw.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return BackupInfo(collection, dim, fingerprint, n)


def _dim(store: Store, fingerprint: dict[str, Any]) -> int:
    dim = fingerprint.get("dim")
    if isinstance(dim, int):
        return dim
    for point in store.scroll_points():  # a fingerprint without "dim": the vectors say it
        return len(point.vector)
    raise StoreError("cannot tell the collection's dimension: no fingerprint dim and no points")


def _lines(path: Path) -> Iterator[dict[str, Any]]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                except ValueError as err:
                    raise BackupError(f"{path}: line {number} is not JSON ({err})") from err
                if not isinstance(row, dict):
                    raise BackupError(f"{path}: line {number} is not a JSON object")
                yield row
    except (EOFError, gzip.BadGzipFile, OSError, UnicodeDecodeError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise BackupError(f"{path}: damaged or truncated ({err})") from err


def _header(row: dict[str, Any] | None, path: Path) -> dict[str, Any]:
    if not row or row.get("format") != FORMAT:
        raise BackupError(f"{path} is not a kb backup")
    if row.get("version") != VERSION:
        raise BackupError(f"{path}: backup format version {row.get('version')}, this kb reads {VERSION}")
    if not isinstance(row.get("dim"), int) or not isinstance(row.get("fingerprint"), dict):
        raise BackupError(f"{path}: header without dim or fingerprint")
    return row


def read_info(path: Path) -> BackupInfo:
    """Check the whole file (header, every point, footer count) without writing anything."""
    rows = _lines(Path(path))
    header = _header(next(rows, None), Path(path))
    n, footer = 0, None
    for row in rows:
        if footer is not None:
            raise BackupError(f"{path}: lines after the end marker")
        if row.get("end"):
            footer = row
            continue
        decode_point(row, header["dim"])
        n += 1
    if footer is None or footer.get("points") != n:
        raise BackupError(f"{path}: truncated ({n} points, no end marker or another count)")
    return BackupInfo(str(header.get("collection") or ""), header["dim"], header["fingerprint"], n)


def import_collection(
    store: Store, path: Path, *, force: bool = False, on_progress: Callable[[int], None] | None = None
) -> BackupInfo:
    """Load a backup into ``store`` (see the module docstring for what happens to what is there)."""
    info = read_info(path)
    if force:
        store.recreate_collection(info.dim, info.fingerprint)
    else:
        store.ensure_collection(info.dim, info.fingerprint)  # FingerprintMismatch propagates
    rows = _lines(Path(path))
    next(rows)  # the header, checked above
    batch: list[Point] = []
    done = 0
    for row in rows:
        if row.get("end"):
            break
        batch.append(decode_point(row, info.dim))
        if len(batch) >= IMPORT_BATCH:
            store.upsert(batch)
            done += len(batch)
            batch = []
            if on_progress:
                on_progress(done)
    store.upsert(batch)
    store.flush()
    return info
