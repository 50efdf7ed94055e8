"""Parse files in worker processes, each file under a time limit and each worker under a memory limit.

A worker is a spawned process that parses one file at a time (``ingest.parsing.worker.parse``), with its
address space capped (``RLIMIT_AS``, inherited by the OCR helper it starts). The pool knows which
file each worker holds and since when, so:

- a file past ``timeout_s`` has its worker killed and is reported as :data:`EXCEEDED` (time);
- a worker that dies (the kernel's OOM killer, a native crash, a C stack overflow) costs only the
  file it held, reported as :data:`EXCEEDED` too; a ``MemoryError`` raised under the cap is
  reported the same way and that worker is retired (its heap may be left huge);
- a dead or retired worker is replaced; the other workers and their files are not touched.

``concurrent.futures.ProcessPoolExecutor`` does none of this: a dead worker breaks the whole pool
without saying which file killed it, and a stuck task cannot be stopped alone.

Workers exit when the process that started them dies, even a SIGKILLed one.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Generic, TypeVar

from ingest.loaders import Document, LoadError, LoadOptions
from ingest.parsing.worker import EXCEEDED, OUT_OF_MEMORY, parse
from kb.settings import DEFAULTS, Settings

# files handed out beyond the one each worker holds, so results can be returned in order
LOOKAHEAD_PER_WORKER = 2
# how long a worker asked to stop may take before it is killed
STOP_GRACE_S = 2.0
MB = 1 << 20

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """``timeout_s`` per file (wall clock), ``memory_mb`` of address space per worker (0: no cap)."""

    timeout_s: float = DEFAULTS.parse_timeout_s
    memory_mb: int = DEFAULTS.parse_memory_mb

    @classmethod
    def from_settings(cls, settings: Settings) -> ParseLimits:
        return cls(settings.parse_timeout_s, settings.parse_memory_mb)


def _cap_memory(memory_mb: int) -> None:
    if memory_mb <= 0:
        return
    limit = memory_mb * MB
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _exit_with_parent() -> None:
    """End this process as soon as its parent is gone (a SIGKILLed parent closes nothing for us)."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        parent.join()
        os._exit(1)

    threading.Thread(target=watch, name="kb-parent-watch", daemon=True).start()


def _worker(conn: Connection, memory_mb: int) -> None:
    """A worker's whole life: parse what arrives until told to stop or the parent goes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _cap_memory(memory_mb)
    _exit_with_parent()
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        path, options = task
        result = parse(path, options)
        try:
            conn.send(result)
        except MemoryError:
            conn.send(LoadError(OUT_OF_MEMORY))
        except (BrokenPipeError, OSError):
            return


class _Worker:
    def __init__(self, ctx, memory_mb: int) -> None:
        self.conn, theirs = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(theirs, memory_mb), name="kb-parse", daemon=True)
        self.proc.start()
        theirs.close()
        self.task: tuple[int, float] | None = None  # (index of the file, when it was handed out)

    def give(self, index: int, path: str, options: LoadOptions | None) -> None:
        self.conn.send((path, options))
        self.task = (index, time.monotonic())

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(STOP_GRACE_S)
        self.conn.close()

    def stop(self) -> None:
        try:
            self.conn.send(None)
        except OSError:
            pass
        self.proc.join(STOP_GRACE_S)
        self.kill()

    def death(self) -> str:
        """Why a worker that ended mid-file ended, for the report."""
        self.proc.join(STOP_GRACE_S)
        code = self.proc.exitcode
        if code is not None and code < 0:
            try:
                how = signal.Signals(-code).name
            except ValueError:
                how = f"signal {-code}"
            return f"{EXCEEDED} (worker killed by {how})"
        return f"{EXCEEDED} (worker died, exit code {code})"


class ParsePool(Generic[T]):
    """``map`` parses items' paths with ``workers`` processes, yielding results in the items' order."""

    def __init__(self, workers: int, limits: ParseLimits, options: LoadOptions | None = None) -> None:
        self.size = max(1, workers)
        self.limits = limits
        self.options = options
        self._ctx = multiprocessing.get_context("spawn")
        self._workers: list[_Worker] = []
        self.replaced = 0  # workers killed or lost and started anew (for tests and logs)

    def __enter__(self) -> ParsePool[T]:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pids(self) -> list[int]:
        """The worker processes running now."""
        return [w.proc.pid for w in self._workers if w.proc.pid is not None]

    def close(self) -> None:
        workers, self._workers = self._workers, []
        for w in workers:
            if w.task is None:
                w.stop()
            else:
                w.kill()

    def _idle(self) -> _Worker | None:
        for w in self._workers:
            if w.task is None:
                return w
        if len(self._workers) < self.size:
            w = _Worker(self._ctx, self.limits.memory_mb)
            self._workers.append(w)
            return w
        return None

    def _replace(self, w: _Worker) -> None:
        w.kill()
        self._workers.remove(w)
        self.replaced += 1

    def map(
        self, items: Iterable[T], path_of: Callable[[T], str]
    ) -> Iterator[tuple[T, Document | LoadError]]:
        todo = iter(items)
        end = object()
        held: deque[T] = deque()  # handed out or waiting, in order; held[0] is index `first`
        first = 0
        queued: deque[int] = deque()  # indexes not yet given to a worker
        results: dict[int, Document | LoadError] = {}
        window = self.size * (1 + LOOKAHEAD_PER_WORKER)
        exhausted = False
        while True:
            while not exhausted and len(held) < window:
                item = next(todo, end)
                if item is end:
                    exhausted = True
                    break
                queued.append(first + len(held))
                held.append(item)  # type: ignore[arg-type]  # not `end`
            if first in results:
                yield held.popleft(), results.pop(first)
                first += 1
                continue
            if not held:
                return
            while queued and (w := self._idle()) is not None:
                index = queued.popleft()
                try:
                    w.give(index, path_of(held[index - first]), self.options)
                except OSError:  # died while idle: replace it, try again
                    queued.appendleft(index)
                    w.task = None
                    self._replace(w)
            self._collect(results)

    def _collect(self, results: dict[int, Document | LoadError]) -> None:
        """Wait for the first worker to answer, die or run out of time; record what happened."""
        busy = [w for w in self._workers if w.task is not None]
        if not busy:
            return
        now = time.monotonic()
        deadline = min(w.task[1] for w in busy if w.task) + self.limits.timeout_s
        waitables = [w.conn for w in busy] + [w.proc.sentinel for w in busy]
        ready = set(wait(waitables, timeout=max(0.0, deadline - now)))
        for w in busy:
            assert w.task is not None
            index, started = w.task
            if w.conn in ready:
                try:
                    result = w.conn.recv()
                except (EOFError, OSError):
                    result = LoadError(w.death())
                    self._replace(w)
                else:
                    w.task = None
                    if isinstance(result, LoadError) and str(result) == OUT_OF_MEMORY:
                        self._replace(w)
                results[index] = result
            elif w.proc.sentinel in ready:
                results[index] = LoadError(w.death())
                self._replace(w)
            elif time.monotonic() - started >= self.limits.timeout_s:
                results[index] = LoadError(f"{EXCEEDED} (no result after {self.limits.timeout_s:g} s)")
                self._replace(w)
