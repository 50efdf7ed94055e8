"""What an ingest parse worker runs. Kept apart from the pipeline so that a spawned worker imports
only the loaders (about 0.2 s) and not the store client and the splitters (seconds) with them."""

from __future__ import annotations

from pathlib import Path

from ingest.loaders import Document, LoadError, LoadOptions, load

# the reason every file that ran into a parse limit (time, memory, a dead worker) starts with
EXCEEDED = "parser exceeded limits"
OUT_OF_MEMORY = f"{EXCEEDED} (out of memory)"
MAX_MESSAGE_CHARS = 300  # of an unexpected exception's message in the reason


def parse(path: str, options: LoadOptions | None = None) -> Document | LoadError:
    """Runs in a worker process; returns the error instead of raising it across the pool."""
    try:
        return load(Path(path), options)
    except LoadError as err:
        return err
    except MemoryError:  # the worker's address space cap (ingest.parsing.pool) was hit
        return LoadError(OUT_OF_MEMORY)
    except Exception as err:  # noqa: BLE001 — a loader bug must not take the run down: report the file
        return LoadError(f"could not parse: {type(err).__name__}: {str(err)[:MAX_MESSAGE_CHARS]}")
