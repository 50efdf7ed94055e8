"""What every `kb` command shares: the exit codes, settings from the arguments, and how a failure is said."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ingest.store.base import SearchFilter
from kb.contract import DOCUMENT_KINDS
from kb.settings import Settings

# the one exit-code table of the CLI (README, "Command line")
EXIT_OK = 0  # done
EXIT_FAIL = 1  # the work failed: a model or the store unavailable, a job failed, the service lost
EXIT_USAGE = 2  # the command was wrong: a bad option, an unknown model, an unreadable test set
EXIT_INTERRUPTED = 130  # Ctrl-C


class CommandError(Exception):
    """A failure the CLI reports as one line ``kb: <message>`` and exits with ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAIL) -> None:
        super().__init__(message)
        self.code = code


def settings_from(args: argparse.Namespace, **overrides: Any) -> Settings:
    """The settings of this run: defaults < .env < KB_* environment < the command's flags."""
    flags = {"data_dir": getattr(args, "data_dir", None), **overrides}
    return Settings(**{k: v for k, v in flags.items() if v is not None})


def fail(message: str, code: int = EXIT_FAIL) -> int:
    print(f"kb: {message}", file=sys.stderr)
    return code


def add_filter_options(parser: argparse.ArgumentParser) -> None:
    """The options that narrow a search (and an answer's passages) to part of the knowledge base."""
    parser.add_argument("--prefix", help="only documents under this prefix of name/path (e.g. docs/guides)")
    parser.add_argument("--glob", help="only documents whose name/path matches this glob")
    parser.add_argument("--kind", action="append", choices=DOCUMENT_KINDS)
    parser.add_argument("--ext", action="append", help="only these file extensions")
    parser.add_argument("--source", action="append", help="only these sources (names; repeat for more)")


def filter_from(args: argparse.Namespace) -> SearchFilter:
    """The filter ``add_filter_options`` asked for."""
    return SearchFilter(
        source_prefix=args.prefix,
        source_glob=args.glob,
        kinds=tuple(args.kind or ()),
        exts=tuple(args.ext or ()),
        sources=tuple(args.source or ()),
    )
