"""What an ingest parse worker runs. Kept apart from the pipeline so that a spawned worker imports
only the loaders (about 0.2 s) and not the store client and the splitters (seconds) with them.

What the parsing libraries say while a file is parsed (Python warnings, and log records of level
WARNING and above, such as pypdf's notes on fonts it decodes poorly) goes into that file's
warnings, each distinct message once with its count, never to the console.
"""

from __future__ import annotations

import logging
import warnings
from collections import Counter
from pathlib import Path

from ingest.loaders import Document, LoadError, LoadOptions, load

# the reason every file that ran into a parse limit (time, memory, a dead worker) starts with
EXCEEDED = "parser exceeded limits"
OUT_OF_MEMORY = f"{EXCEEDED} (out of memory)"
MAX_MESSAGE_CHARS = 300  # of an unexpected exception's message in the reason
MAX_LIBRARY_NOTES = 5  # distinct library messages kept per file


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.seen: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        self.seen[f"{record.name}: {record.getMessage()}"[:MAX_MESSAGE_CHARS]] += 1


def parse(path: str, options: LoadOptions | None = None) -> Document | LoadError:
    """Runs in a worker process; returns the error instead of raising it across the pool."""
    collect = _Collect()
    root = logging.getLogger()
    root.addHandler(collect)  # with a handler in place, nothing reaches logging's stderr fallback
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = _parse(path, options)
    finally:
        root.removeHandler(collect)
    for w in caught:
        collect.seen[f"{w.category.__name__}: {w.message}"[:MAX_MESSAGE_CHARS]] += 1
    if isinstance(result, Document) and collect.seen:
        result.warnings.extend(library_notes(collect.seen))
    return result


def library_notes(seen: Counter[str]) -> list[str]:
    """The most frequent library messages of one file, each once: "pypdf._cmap: … (×312)"."""
    notes = [f"library: {m}" + (f" (×{n})" if n > 1 else "") for m, n in seen.most_common(MAX_LIBRARY_NOTES)]
    if len(seen) > MAX_LIBRARY_NOTES:
        notes.append(f"library: {len(seen) - MAX_LIBRARY_NOTES} more kinds of message")
    return notes


def _parse(path: str, options: LoadOptions | None) -> Document | LoadError:
    try:
        return load(Path(path), options)
    except LoadError as err:
        return err
    except MemoryError:  # the worker's address space cap (ingest.parsing.pool) was hit
        return LoadError(OUT_OF_MEMORY)
    except Exception as err:  # noqa: BLE001 — a loader bug must not take the run down: report the file
        return LoadError(f"could not parse: {type(err).__name__}: {str(err)[:MAX_MESSAGE_CHARS]}")
