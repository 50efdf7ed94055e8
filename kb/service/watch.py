"""Watching the source folders: file events (``watchdog``: inotify, FSEvents, ReadDirectoryChangesW)
become one sync per source after a quiet period, and every source is rescanned now and then for the
folders whose events never arrive (network mounts).

A burst of events (an editor saving 50 times, a checkout switching branches) re-arms the source's
timer at each event, so it is one sync once the folder has been quiet for ``debounce_s``; a file
still being written keeps re-arming it and is read when it has settled. The sync itself skips every
file whose hash is unchanged, so an event costs a re-embed of the changed files only. The registry
is read again every ``REFRESH_S``: a source added, removed or switched on or off is followed, and a
source is synced when its watch begins, for what changed before (while the service was down).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import ObservedWatch

from ingest.sources import SourceRegistry

log = logging.getLogger(__name__)

TICK_S = 0.2  # how often due syncs are looked for
REFRESH_S = 2.0  # how often the registry is read again


class _Events(FileSystemEventHandler):
    def __init__(self, name: str, touched: Callable[[str], None]) -> None:
        self.name, self.touched = name, touched

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type in ("opened", "closed_no_write"):  # reads change nothing
            return
        self.touched(self.name)


class Watcher:
    """Calls ``sync(name)`` for a watched source after its folder changed and went quiet, and for
    every watched source every ``rescan_s`` seconds."""

    def __init__(
        self, registry: SourceRegistry, sync: Callable[[str], None], debounce_s: float, rescan_s: float
    ) -> None:
        self.registry, self.sync = registry, sync
        self.debounce_s, self.rescan_s = debounce_s, rescan_s
        self._observer = Observer()
        self._watches: dict[str, tuple[str, ObservedWatch]] = {}  # name -> (folder, watch)
        self._due: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kb-watch", daemon=True)

    def start(self) -> None:
        self._observer.start()
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._observer.stop()
        self._observer.join()

    def touched(self, name: str) -> None:
        with self._lock:
            self._due[name] = time.monotonic() + self.debounce_s

    def _refresh(self) -> None:
        try:
            wanted = {s.name: s.path for s in self.registry.all() if s.watch}
        except ValueError as err:  # an unreadable registry: keep what is watched
            log.warning("cannot read the sources: %s", err)
            return
        for name, (folder, watch) in list(self._watches.items()):
            if wanted.get(name) != folder:
                self._observer.unschedule(watch)
                del self._watches[name]
        for name, folder in wanted.items():
            if name in self._watches or not Path(folder).is_dir():
                continue  # a missing folder is watched once it is back (the rescan reports it meanwhile)
            try:
                watch = self._observer.schedule(_Events(name, self.touched), folder, recursive=True)
            except OSError as err:  # too many inotify watches, permissions…
                log.warning("cannot watch %s (%s): the periodic rescan covers it", folder, err)
                continue
            self._watches[name] = (folder, watch)
            self.touched(name)  # what changed before the watch began (while the service was down…)

    def _run(self) -> None:
        refreshed = rescanned = time.monotonic()
        self._refresh()
        while not self._stop.wait(TICK_S):
            now = time.monotonic()
            if now - refreshed >= REFRESH_S:
                self._refresh()
                refreshed = now
            if now - rescanned >= self.rescan_s:
                rescanned = now
                for name in [s.name for s in self.registry.all() if s.watch]:
                    self.touched(name)
            with self._lock:
                due = [name for name, at in self._due.items() if at <= now]
                for name in due:
                    del self._due[name]
            for name in due:
                try:
                    self.sync(name)
                except Exception as err:  # noqa: BLE001 — a removed source, a full disk: the next event retries
                    log.warning("cannot sync source %s after a change: %s", name, err)
