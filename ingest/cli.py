"""`kb` command line: parses options, calls the library, reports. No logic of its own."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .settings import Settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in {"data_dir": getattr(args, "data_dir", None)}.items() if v is not None}
    return Settings(**overrides)


def cmd_models(args: argparse.Namespace) -> int:
    from .registry import REGISTRY

    settings = _settings(args)
    print(f"{'name':24} {'role':7} {'dim':>5} {'mrl':>9} {'ctx':>6}  {'present':8} file")
    for e in REGISTRY.values():
        present = "yes" if e.path(settings.models_dir).is_file() else "no"
        mark = "*" if e.name in {settings.embed_model, settings.rerank_model} else " "
        print(f"{e.name:23}{mark} {e.role:7} {e.dim:>5} {e.mrl_min:>4}-{e.dim:<4} {e.context:>6}  "
              f"{present:8} {e.repo}/{e.filename}")  # fmt: skip
    print("* configured (KB_EMBED_MODEL / KB_RERANK_MODEL); any GGUF path works too")
    return EXIT_OK


def cmd_model_pull(args: argparse.Namespace) -> int:
    from .download import ModelUnavailable, pull
    from .registry import lookup

    settings = _settings(args)
    name = args.name or settings.embed_model
    entry = lookup(name)
    if entry is None:
        if Path(name).is_file():
            print(f"{name} is a local file; nothing to pull")
            return EXIT_OK
        print(f"kb: unknown model {name!r}; `kb models` lists the known ones", file=sys.stderr)
        return EXIT_USAGE
    if args.if_missing and entry.path(settings.models_dir).is_file():
        return EXIT_OK
    try:
        path = pull(entry, settings.models_dir)
    except ModelUnavailable as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
    print(f"{entry.name}: {path} verified")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kb", description="A private, self-hosted knowledge base.")
    p.add_argument("--data-dir", type=Path, help="overrides KB_DATA_DIR")
    p.add_argument("-v", "--verbose", action="store_true")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("models", help="list known models and which are present").set_defaults(func=cmd_models)
    model = sub.add_parser("model", help="manage model weights").add_subparsers(dest="action", required=True)
    pull = model.add_parser("pull", help="download a model with progress, resume and checksum")
    pull.add_argument("name", nargs="?", help="registry name (default: KB_EMBED_MODEL)")
    pull.add_argument("--if-missing", action="store_true", help="do nothing when the file is present")
    pull.set_defaults(func=cmd_model_pull)
    for register in _EXTRA:
        register(sub)
    return p


_EXTRA: list = []  # further subcommands register here (ingest, search, serve, …)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
