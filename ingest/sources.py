"""The registry of sources: which named folder is which, watched or not, readable by whom.

One small JSON file under the data folder (``sources.json``), written whole and renamed into place,
so that the service and a CLI run in this process see the same list and a crash never leaves half of
it. The points themselves say which source they belong to (``payload["source_name"]``); this file
only says where each source lives. The uploads are the source ``uploads`` (``kb.contract``), kept by
the service under the data folder and never registered here.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kb.contract import SOURCE_NAME, UPLOAD_SOURCE

SOURCES_FILE = "sources.json"
FORMAT_VERSION = 1


class SourceError(ValueError):
    """A source cannot be added or changed as asked (bad name, name taken, folder already a source)."""


class UnknownSource(LookupError):
    """No source by that name."""


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Source:
    """A named folder. ``allow``: the users and groups who may read it (empty: every signed-in user)."""

    name: str
    path: str  # absolute
    exclude: tuple[str, ...] = ()
    watch: bool = True
    allow: tuple[str, ...] = ()
    added: str = ""
    last_sync: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exclude": list(self.exclude), "allow": list(self.allow)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Source:
        return cls(
            name=str(d["name"]),
            path=str(d["path"]),
            exclude=tuple(d.get("exclude") or ()),
            watch=bool(d.get("watch", True)),
            allow=tuple(d.get("allow") or ()),
            added=str(d.get("added") or ""),
            last_sync=d.get("last_sync"),
        )


def check_name(name: str) -> str:
    """The name if it may name a folder source; SourceError saying why not."""
    if not SOURCE_NAME.fullmatch(name or ""):
        raise SourceError(
            f"invalid source name {name!r}: letters, digits, '.', '_' and '-', starting with a letter or "
            "digit, at most 63 characters (choose one with --name)"
        )
    if name == UPLOAD_SOURCE:
        raise SourceError(f"{UPLOAD_SOURCE!r} is the source of uploaded files; choose another with --name")
    return name


def default_name(root: Path) -> str:
    """A folder's base name as a source name (``My Docs`` → ``My-Docs``)."""
    base = Path(root).resolve().name
    cleaned = "".join(ch if ch.isalnum() or ch in "._-" else "-" for ch in base).strip("-._")
    return cleaned[:63] or "folder"


class SourceRegistry:
    """The sources in ``path`` (a JSON file); safe to use from several threads of one process."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()

    def _read(self) -> dict[str, Source]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            raise SourceError(f"unreadable source registry {self.path}: {err}") from err
        return {d["name"]: Source.from_dict(d) for d in data.get("sources", [])}

    def _write(self, sources: dict[str, Source]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        body = {
            "version": FORMAT_VERSION,
            "sources": [s.as_dict() for s in sorted(sources.values(), key=_name)],
        }
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(body, f, indent=1, ensure_ascii=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)

    def all(self) -> list[Source]:
        with self._lock:
            return sorted(self._read().values(), key=_name)

    def get(self, name: str) -> Source:
        with self._lock:
            found = self._read().get(name)
        if found is None:
            raise UnknownSource(f"no source named {name!r} (`kb sources` lists them)")
        return found

    def add(self, root: Path, name: str | None = None, exclude: tuple[str, ...] | None = None) -> Source:
        """The source for folder ``root``: added under ``name`` (default: the folder's base name), or the
        one already registered for it. ``exclude`` given replaces the source's patterns."""
        folder = str(Path(root).resolve())
        with self._lock:
            sources = self._read()
            same_folder = next((s for s in sources.values() if s.path == folder), None)
            if same_folder is not None and name in (None, same_folder.name):
                updated = same_folder if exclude is None else replace(same_folder, exclude=tuple(exclude))
                if updated != same_folder:
                    sources[updated.name] = updated
                    self._write(sources)
                return updated
            if same_folder is not None:
                raise SourceError(f"{folder} is already the source {same_folder.name!r}")
            name = check_name(name if name is not None else default_name(Path(folder)))
            if name in sources:
                raise SourceError(
                    f"the source {name!r} is the folder {sources[name].path}; name this one with --name"
                )
            source = Source(name, folder, tuple(exclude or ()), added=now_iso())
            sources[name] = source
            self._write(sources)
            return source

    def update(self, name: str, **changes: Any) -> Source:
        with self._lock:
            sources = self._read()
            if name not in sources:
                raise UnknownSource(f"no source named {name!r} (`kb sources` lists them)")
            sources[name] = replace(sources[name], **changes)
            self._write(sources)
            return sources[name]

    def remove(self, name: str) -> Source:
        with self._lock:
            sources = self._read()
            if name not in sources:
                raise UnknownSource(f"no source named {name!r} (`kb sources` lists them)")
            gone = sources.pop(name)
            self._write(sources)
            return gone


def _name(source: Source) -> str:
    return source.name


def summarize(sources: list[Source], held: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each source as ``kb sources`` and ``GET /sources`` list it: its record, plus files, chunks and
    pages that needed OCR from ``held`` (``pipeline.source_states``: name → key → FileState)."""
    out = []
    for src in sources:
        files = held.get(src.name, {})
        out.append(
            {
                **src.as_dict(),
                "kind": "upload" if src.name == UPLOAD_SOURCE else "folder",
                "files": len(files),
                "chunks": sum(st.n_points for st in files.values()),
                "ocr_pages": sum(st.pages.ocr for st in files.values() if st.pages),
            }
        )
    return out
