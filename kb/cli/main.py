"""`kb` command line: parses options, calls the library, reports. No logic of its own."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ingest.pagesources import PageSources
from kb.cli.backend import IngestProgress, open_backend
from kb.cli.common import EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, CommandError, fail, settings_from
from kb.contract import DOCUMENT_KINDS, SearchHit
from kb.search.query import SearchRequest


def cmd_models(args: argparse.Namespace) -> int:
    from ingest.model.registry import REGISTRY

    settings = settings_from(args)
    print(f"{'name':24} {'role':7} {'dim':>5} {'mrl':>9} {'ctx':>6}  {'present':8} file")
    for e in REGISTRY.values():
        present = "yes" if e.path(settings.models_dir).is_file() else "no"
        mark = "*" if e.name in {settings.embed_model, settings.rerank_model} else " "
        print(
            f"{e.name:23}{mark} {e.role:7} {e.dim:>5} {e.mrl_min:>4}-{e.dim:<4} {e.context:>6}  "
            f"{present:8} {e.repo}/{e.filename}"
        )
    print("* configured (KB_EMBED_MODEL / KB_RERANK_MODEL); any GGUF path works too")
    return EXIT_OK


def cmd_model_pull(args: argparse.Namespace) -> int:
    from ingest.model.download import ModelUnavailable, pull
    from ingest.model.registry import lookup

    settings = settings_from(args)
    name = args.name or settings.embed_model
    entry = lookup(name)
    if entry is None:
        if Path(name).is_file():
            print(f"{name} is a local file; nothing to pull")
            return EXIT_OK
        return fail(f"unknown model {name!r}; `kb models` lists the known ones", EXIT_USAGE)
    if args.if_missing and entry.path(settings.models_dir).is_file():
        return EXIT_OK
    try:
        path = pull(entry, settings.models_dir)
    except ModelUnavailable as err:
        return fail(str(err))
    print(f"{entry.name}: {path} verified")
    return EXIT_OK


def _print_report(report: dict, as_json: bool) -> None:
    """An IngestReport as its dict (``as_dict()``), whichever backend made it."""
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return
    print(
        f"indexed {len(report['indexed'])}, updated {len(report['updated'])}, "
        f"unchanged {len(report['unchanged'])}, removed {len(report['removed'])}, "
        f"skipped {len(report['skipped'])} — {report['chunks']} chunks, "
        f"{report['tokens']} tokens in {report['seconds']:.1f} s"
    )
    for source, counts in (report.get("pages") or {}).items():  # PDFs whose pages needed more than pypdf
        pages = PageSources.from_dict(counts)
        if pages.needed_help:
            print(f"  {source}: {pages.summary()}")
    for s in report["skipped"]:
        print(f"  skipped {s['path']}: {s['reason']}")
    for w in report["warnings"]:
        print(f"  warning {w['path']}: {w['message']}")


def _print_hits(hits: list[SearchHit], as_json: bool) -> None:
    if as_json:
        print(json.dumps([h.to_json() for h in hits], ensure_ascii=False, indent=1))
        return
    for h in hits:
        print(f"{h.rank:>3}. {h.score:.4f}  {h.source}  {h.locator}")
        print("      " + " ".join(h.text.split())[:200])


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    settings = settings_from(args)
    root = Path(args.dir)
    if not root.is_dir():
        return fail(f"{root} is not a folder")
    backend = open_backend(settings)
    bar = tqdm(total=0, unit="file", disable=args.json or None, dynamic_ncols=True)

    def on_progress(p: IngestProgress) -> None:
        bar.total, bar.n = p.files_total, p.files_done
        bar.set_postfix_str(f"{p.chunks} chunks, {p.tokens_per_s:,.0f} tok/s", refresh=False)
        bar.refresh()

    try:
        report = backend.ingest(root, rebuild=args.rebuild, exclude=args.exclude, on_progress=on_progress)
    finally:
        bar.close()
        backend.close()
    _print_report(report, args.json)
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from ingest.store.base import SearchFilter

    settings = settings_from(args)
    flt = SearchFilter(
        source_prefix=args.prefix,
        source_glob=args.glob,
        kinds=tuple(args.kind or ()),
        exts=tuple(args.ext or ()),
    )
    hybrid = settings.hybrid if args.hybrid is None else args.hybrid
    req = SearchRequest(args.query, k=args.k, rerank=args.rerank, hybrid=hybrid, filter=flt, task=args.task)
    backend = open_backend(settings)
    try:
        hits = backend.search(req)
    finally:
        backend.close()
    _print_hits(hits, args.json)
    return EXIT_OK


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ingest.model.download import ModelUnavailable
    from ingest.store import StoreError
    from kb.service.api import KbService, NoAccounts, create_app, sessions_for
    from kb.settings import LOOPBACK_HOSTS

    overrides = {"service_host": args.host, "service_port": args.port}
    settings = settings_from(args).model_copy(update={k: v for k, v in overrides.items() if v is not None})
    try:
        sessions_for(settings)  # before the model loads: team access on without accounts is one line
    except NoAccounts as err:
        return fail(str(err))
    if settings.service_host not in LOOPBACK_HOSTS and not settings.auth_enabled:
        print(
            f"kb: warning: listening on {settings.service_host} with team access off (KB_AUTH=off): "
            "anyone who reaches this port can read, add and delete documents",
            file=sys.stderr,
        )
    try:
        service = KbService(
            settings
        )  # opened here so that a locked store or a missing model reads as one line
    except (ModelUnavailable, StoreError) as err:
        return fail(str(err))
    try:  # uvicorn shuts down gracefully on SIGINT/SIGTERM (the app's shutdown closes the service), then re-raises
        uvicorn.run(
            create_app(settings, service),
            host=settings.service_host,
            port=settings.service_port,
            log_level="info" if args.verbose else "warning",
        )
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    finally:
        service.close()
    return EXIT_OK


def _register_serve(sub) -> None:
    serve = sub.add_parser(
        "serve", help="run the service owning the model and the store (the CLI and app use it)"
    )
    serve.add_argument("--host", help="address to bind (default KB_SERVICE_HOST, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default KB_SERVICE_PORT, 8765)")
    serve.set_defaults(func=cmd_serve)


def _register_ingest_search(sub) -> None:
    ing = sub.add_parser("ingest", help="index a folder (incremental)")
    ing.add_argument("dir", help="folder to index")
    ing.add_argument("--rebuild", action="store_true", help="drop the collection and re-embed everything")
    ing.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip matching paths")
    ing.add_argument("--json", action="store_true", help="print the report as JSON")
    ing.set_defaults(func=cmd_ingest)
    se = sub.add_parser("search", help="semantic search")
    se.add_argument("query")
    se.add_argument("--k", type=int, default=10)
    se.add_argument("--rerank", action="store_true", help="rerank candidates with the Qwen3 reranker")
    se.add_argument(
        "--hybrid",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="fuse a lexical (CJK-aware) sparse signal (default: KB_HYBRID, on)",
    )
    se.add_argument("--prefix", help="only sources under this path prefix")
    se.add_argument("--glob", help="only sources matching this glob")
    se.add_argument("--kind", action="append", choices=DOCUMENT_KINDS)
    se.add_argument("--ext", action="append", help="only these file extensions")
    se.add_argument("--task", help="instruction for the query (Qwen3)")
    se.add_argument("--json", action="store_true", help="print hits as a JSON array")
    se.set_defaults(func=cmd_search)


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


def _register_eval(sub) -> None:
    from kb.cli.eval import register_cli

    register_cli(sub)


def _register_backup(sub) -> None:
    from kb.cli.backup import register_cli

    register_cli(sub)


def _register_ask(sub) -> None:
    from kb.cli.ask import register_cli

    register_cli(sub)


def _register_mcp(sub) -> None:
    from kb.cli.mcp import register_cli

    register_cli(sub)


def _register_accounts(sub) -> None:
    from kb.cli.accounts import register_cli

    register_cli(sub)


_EXTRA: list = [
    _register_ingest_search,
    _register_ask,
    _register_mcp,
    _register_serve,
    _register_eval,
    _register_backup,
    _register_accounts,
]  # further subcommands register here


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    try:
        return args.func(args)
    except CommandError as err:
        return fail(str(err), err.code)


if __name__ == "__main__":
    sys.exit(main())
