"""`kb eval`: retrieval quality of configurations on a test set."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from kb.cli.common import EXIT_FAIL, EXIT_OK, EXIT_USAGE, fail, settings_from
from kb.tools.evaluate import (
    CONFIG_KEYS,
    REPORT_DIR,
    ConfigError,
    EvalConfig,
    EvalSetError,
    load_test_set,
    parse_config,
    render_markdown,
    run_eval,
    select,
    write_report,
)

# --- `kb eval` -----------------------------------------------------------------------------------


def register_cli(sub) -> None:
    """Adds ``kb eval`` to the CLI's subcommands (listed in ``cli._EXTRA``)."""
    p = sub.add_parser(
        "eval", help="retrieval quality of configurations on a test set (own temporary indexes)"
    )
    p.add_argument("set", type=Path, help="test set, JSONL (format: data/eval/README.md)")
    p.add_argument("--corpus", type=Path, required=True, help="folder the set's sources are relative to")
    p.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="NAME=key=value,...",
        help=f"a configuration (repeatable); keys: {', '.join(CONFIG_KEYS)}",
    )
    p.add_argument("--lang", action="append", default=[], help="only queries with this lang (repeatable)")
    p.add_argument(
        "--category", action="append", default=[], help="only queries of this category (repeatable)"
    )
    p.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip matching corpus paths"
    )
    p.add_argument("--out", type=Path, help="report folder (default: DATA_DIR/eval/reports)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_eval)


def cmd_eval(args: argparse.Namespace) -> int:
    from ingest.model.download import ModelUnavailable
    from ingest.store import StoreError

    settings = settings_from(args)
    try:
        queries = select(load_test_set(args.set), args.lang, args.category)
        configs = [parse_config(spec) for spec in args.config] or [EvalConfig()]
    except (EvalSetError, ConfigError, OSError) as err:
        return fail(str(err), EXIT_USAGE)
    if not queries:
        return fail("no query of the set passes --lang/--category", EXIT_USAGE)
    out_dir = args.out or settings.data_dir / REPORT_DIR
    name = args.set.stem + "".join(f"-{x}" for x in [*args.lang, *args.category])

    def say(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    try:
        report = run_eval(
            queries,
            args.corpus,
            configs,
            settings,
            name=name,
            exclude=args.exclude,
            work_dir=out_dir,
            on_progress=say,
        )
    except (ModelUnavailable, StoreError, ConfigError, FileNotFoundError, ValueError) as err:
        return fail(str(err), EXIT_FAIL)
    paths = write_report(report, out_dir)
    if args.json:
        print(
            json.dumps(
                {**report.as_dict(), "files": {k: str(p) for k, p in paths.items()}}, ensure_ascii=False
            )
        )
        return EXIT_OK
    print(render_markdown(report))
    print(f"saved {paths['md']}, {paths['json'].name}, {paths['png'].name}")
    return EXIT_OK
