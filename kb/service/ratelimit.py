"""How many password guesses a caller gets: per address and name, per address, per name, all bounded.

An attempt is counted *before* its password is checked (``reserve``) and uncounted when it succeeds
(``succeeded``), under one lock: a hundred parallel guesses cannot slip past the count while the
first ones are still hashing. Within a window of ``window_s``:

- one address gets ``max_failures`` failed guesses per user name, then that pair waits the window out;
- an address past ``max_failures`` failures, whatever the names, waits longer after each further one
  (1 s, 2 s, 4 s … up to the window): spraying names from one address is slow;
- a name that failed ``NAME_FACTOR`` × ``max_failures`` times from all addresses together is closed to
  every address that has failed in the window, but stays open to the others. A stranger therefore
  locks out only themself: the admin, logging in from an address that has not been guessing, gets in.

Tables are bounded (``MAX_KEYS`` entries each, the oldest forgotten first), so names made up by a
guesser cannot grow memory without end.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

MAX_KEYS = 10_000
NAME_FACTOR = 4
BACKOFF_BASE_S = 1.0


class _Table:
    """key → recent failure times, bounded in keys and in times per key."""

    def __init__(self, keep: int) -> None:
        self.keep = keep
        self.rows: OrderedDict[object, deque[float]] = OrderedDict()

    def recent(self, key: object, since: float) -> deque[float]:
        row = self.rows.get(key)
        if row is None:
            return deque()
        while row and row[0] < since:
            row.popleft()
        if not row:
            del self.rows[key]
        return row

    def add(self, key: object, at: float) -> None:
        row = self.rows.pop(key, None) or deque(maxlen=self.keep)
        row.append(at)
        self.rows[key] = row  # most recently used last
        while len(self.rows) > MAX_KEYS:
            self.rows.popitem(last=False)

    def remove_one(self, key: object, at: float) -> None:
        row = self.rows.get(key)
        if row is not None and at in row:
            row.remove(at)


class LoginLimiter:
    def __init__(
        self, max_failures: int, window_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max, self.window, self.clock = max_failures, window_s, clock
        self._lock = threading.Lock()
        self._pairs = _Table(max_failures)
        self._addresses = _Table(max_failures + 32)
        self._names = _Table(max_failures * NAME_FACTOR)

    def reserve(self, address: str, name: str) -> tuple[float | None, float]:
        """Count an attempt: (None, its stamp) when it may be checked, else (seconds to wait, 0)."""
        with self._lock:
            now = self.clock()
            since = now - self.window
            pair = self._pairs.recent((address, name), since)
            if len(pair) >= self.max:
                return pair[0] + self.window - now, 0.0
            by_address = self._addresses.recent(address, since)
            if len(by_address) >= self.max:
                wait = by_address[-1] + min(BACKOFF_BASE_S * 2 ** (len(by_address) - self.max), self.window)
                if now < wait:
                    return wait - now, 0.0
            by_name = self._names.recent(name, since)
            if len(by_name) >= self.max * NAME_FACTOR and by_address:
                return by_name[0] + self.window - now, 0.0
            stamp = now
            self._pairs.add((address, name), stamp)
            self._addresses.add(address, stamp)
            self._names.add(name, stamp)
            return None, stamp

    def succeeded(self, address: str, name: str, stamp: float) -> None:
        """The attempt reserved at ``stamp`` was right: it counts against no one, and the pair starts over."""
        with self._lock:
            self._pairs.rows.pop((address, name), None)
            self._addresses.remove_one(address, stamp)
            self._names.remove_one(name, stamp)


__all__ = ["LoginLimiter"]
