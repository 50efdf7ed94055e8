"""A collection of the version before named sources, taken over in place: ``kb ingest DIR --name N --adopt``.

That version keyed every point by its path relative to the one folder it ingested (``guide.md``) and
the uploads by ``.uploads/<file>``, with ids from those keys, and carried no ``source_name``/``path``.
Its vectors and chunks are what this version would write for the same files (the fingerprint says
so: everything but the identity scheme must match), so nothing needs embedding again: each old point
is written again under its new key (``N/guide.md``, ``uploads/<file>``) and id, with the same
vectors, and only then are the old points deleted and the fingerprint brought up to date.

Safe to stop at any point: until the fingerprint is replaced (the last step) the collection still
reads as the old layout, and running the adoption again rewrites what it had written (same ids) and
finishes. It refuses, touching nothing, when a new key would land on an old point's id (the old
folder holds a top-level folder named N: choose another name) or when an earlier adoption used
another name.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from ingest.pipeline import (
    IDENTITY_KEY,
    IDENTITY_SCHEME,
    ChunkSettings,
    LegacyCollection,
    collection_fingerprint,
)
from ingest.records import point_id
from ingest.store import FingerprintMismatch, Point, Store
from ingest.store.common import normalize_fingerprint
from kb.contract import UPLOAD_SOURCE, source_key, split_source

OLD_UPLOAD_SCOPE = ".uploads/"  # where the previous version kept the uploads' keys
BATCH = 256  # points rewritten per upsert


class AdoptRefused(LegacyCollection):
    """The old collection cannot be taken over under this name; nothing was changed."""


@dataclass
class AdoptReport:
    """What an adoption did: the old keys it re-keyed, per new source, and the points rewritten."""

    source: str
    files: dict[str, list[str]] = field(default_factory=dict)  # new source name → new keys
    points: int = 0

    def as_dict(self) -> dict:
        return {"source": self.source, "files": self.files, "points": self.points}


def is_legacy(stored: dict | None, wanted: dict) -> bool:
    """Whether ``stored`` is the fingerprint of the previous version's collection for ``wanted``."""
    if not stored or IDENTITY_KEY in stored:
        return False
    return {**stored, IDENTITY_KEY: IDENTITY_SCHEME} == wanted


def new_key(old: str, name: str) -> str:
    """The key an old point's document has now: in source ``name``, or in the uploads."""
    if old.startswith(OLD_UPLOAD_SCOPE):
        return source_key(UPLOAD_SOURCE, old[len(OLD_UPLOAD_SCOPE) :])
    return source_key(name, old)


def _legacy(point: Point) -> bool:
    return "source_name" not in point.payload


def _moved(point: Point, name: str) -> Point:
    key = new_key(str(point.payload["source"]), name)
    source_name, path = split_source(key)
    payload = {**point.payload, "source": key, "source_name": source_name, "path": path}
    return Point(point_id(key, int(payload["position"])), point.vector, payload, point.sparse)


def _check(points: Iterable[Point], name: str) -> tuple[int, set[str]]:
    """(old points, their old keys); AdoptRefused when re-keying would overwrite an old point or an
    earlier adoption named the folder otherwise."""
    old_ids: set[str] = set()
    new_ids: set[str] = set()
    keys: set[str] = set()
    for p in points:
        if not _legacy(p):
            other = p.payload.get("source_name")
            if other not in (name, UPLOAD_SOURCE):
                raise AdoptRefused(
                    f"an earlier adoption named the old folder {other!r}: run it again with --name {other}"
                )
            continue
        old_ids.add(p.id)
        keys.add(str(p.payload["source"]))
        new_ids.add(_moved(p, name).id)
    clash = old_ids & new_ids
    if clash:
        raise AdoptRefused(
            f"the old folder holds a folder named {name!r} at its top, whose files would collide with the "
            f"re-keyed ones ({len(clash)} points); nothing was changed: adopt it under another --name"
        )
    return len(old_ids), keys


def adopt_legacy(
    store: Store,
    embedder,
    chunk_settings: ChunkSettings,
    name: str,
) -> AdoptReport:
    """Take the previous version's collection over as the source ``name`` (its uploads as ``uploads``),
    re-keyed in place without embedding anything. A collection already of this layout is left as it
    is (an empty report); one of other settings raises FingerprintMismatch."""
    wanted = normalize_fingerprint(collection_fingerprint(embedder, chunk_settings))
    stored = store.fingerprint()
    report = AdoptReport(source=name)
    if stored == wanted or stored is None:
        return report
    if not is_legacy(stored, wanted):
        raise FingerprintMismatch(stored, wanted)
    _, old_keys = _check(store.scroll_points(), name)
    batch: list[Point] = []
    for p in store.scroll_points():  # ordered by id: the points written meanwhile do not disturb it
        if not _legacy(p):
            continue
        batch.append(_moved(p, name))
        if len(batch) >= BATCH:
            report.points += _write(store, batch)
    report.points += _write(store, batch)
    store.flush()
    for old in sorted(old_keys):  # no new key equals an old one (``_check``): only old points go
        store.delete_source(old)
        key = new_key(old, name)
        report.files.setdefault(split_source(key)[0], []).append(key)
    store.flush()
    store.replace_fingerprint(wanted)
    return report


def _write(store: Store, batch: list[Point]) -> int:
    """Upsert the batch and empty it; how many points it held."""
    n = len(batch)
    if batch:
        store.upsert(batch)
        batch.clear()
    return n


__all__ = ["AdoptRefused", "AdoptReport", "adopt_legacy", "is_legacy", "new_key"]
