"""`kb export` and `kb import`: the whole collection to a file and back (kb.tools.backup)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ingest.store.base import FingerprintMismatch, StoreError
from kb.cli.common import EXIT_OK, CommandError, settings_from
from kb.tools.backup import BackupError, export_collection, import_collection


def register_cli(sub) -> None:
    exp = sub.add_parser(
        "export", help="write the whole collection (vectors, payloads, fingerprint) to a file"
    )
    exp.add_argument("path", type=Path, help="backup file to write (gzip JSONL, e.g. kb-backup.jsonl.gz)")
    exp.set_defaults(func=cmd_export)
    imp = sub.add_parser("import", help="load a backup made by `kb export` into the collection")
    imp.add_argument("path", type=Path, help="backup file to read")
    imp.add_argument(
        "--force",
        "--rebuild",
        action="store_true",
        help="drop the collection first (needed when its fingerprint differs)",
    )
    imp.set_defaults(func=cmd_import)


def _run_on_store(args: argparse.Namespace, work, done: str) -> int:
    """Open the configured store, run ``work(store, settings)``, print ``done`` with its result;
    every failure is one line on stderr."""
    from ingest.store import make_store

    settings = settings_from(args)
    try:
        store = make_store(settings)
    except StoreError as err:
        raise CommandError(str(err)) from err
    try:
        info = work(store, settings)
    except FingerprintMismatch as err:
        replace = str(err).replace("rebuild the collection", "import with --force to replace it")
        raise CommandError(f"the backup's {replace}") from err
    except (BackupError, StoreError, OSError) as err:
        raise CommandError(str(err)) from err
    finally:
        store.close()
    print(done.format(points=info.points, dim=info.dim, path=args.path))
    return EXIT_OK


def cmd_export(args: argparse.Namespace) -> int:
    return _run_on_store(
        args,
        lambda store, settings: export_collection(store, args.path, settings.collection),
        "exported {points} points (dim {dim}) to {path}",
    )


def cmd_import(args: argparse.Namespace) -> int:
    return _run_on_store(
        args,
        lambda store, settings: import_collection(store, args.path, force=args.force),
        "imported {points} points (dim {dim}) from {path}",
    )
