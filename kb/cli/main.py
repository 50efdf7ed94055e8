"""`kb` command line: parses options, calls the library, reports. No logic of its own."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ingest.pagesources import PageSources
from kb.cli.backend import IngestProgress, SyncRequest, open_backend
from kb.cli.common import (
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    CommandError,
    add_filter_options,
    fail,
    filter_from,
    settings_from,
)
from kb.contract import SearchHit
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
            f"{present:8} {e.origin}"
        )
    print("* configured (KB_EMBED_MODEL / KB_RERANK_MODEL); any GGUF path works too")
    return EXIT_OK


def cmd_model_pull(args: argparse.Namespace) -> int:
    from ingest.model.download import ModelUnavailable, hub_for, pull
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
    from tqdm import tqdm

    bar = tqdm(total=None, unit="B", unit_scale=True, desc=entry.filename, disable=None, dynamic_ncols=True)

    def progress(done: int, total: int | None) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(done - bar.n)

    try:
        path = pull(entry, settings.models_dir, hub_for(settings), progress)
    except ModelUnavailable as err:
        bar.close()
        return fail(str(err))
    bar.close()
    print(f"{entry.name}: {path} verified")
    return EXIT_OK


def _print_report(report: dict, as_json: bool) -> None:
    """An IngestReport as its dict (``as_dict()``), whichever backend made it."""
    if as_json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return
    print(
        f"{report.get('source') or 'source'}: indexed {len(report['indexed'])}, updated {len(report['updated'])}, "
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
        print(f"{h.rank:>3}. {h.score:.4f}  {h.source}  {h.locator}")  # name/path
        print("      " + " ".join(h.text.split())[:200])


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    settings = settings_from(args)
    root = Path(args.dir) if args.dir else None
    if root is not None and not root.is_dir():
        return fail(f"{root} is not a folder")
    if args.name and root is None and args.exclude:
        return fail("--exclude changes a source when its folder is given too", EXIT_USAGE)
    if args.adopt and (root is None or args.rebuild):
        return fail(
            "--adopt takes the folder the old collection was built from, and no --rebuild", EXIT_USAGE
        )
    req = SyncRequest(root, args.name, args.rebuild, tuple(args.exclude), args.allow_removals, args.adopt)
    backend = open_backend(settings)
    bar = tqdm(total=0, unit="file", disable=args.json or None, dynamic_ncols=True)

    def on_progress(p: IngestProgress) -> None:
        bar.total, bar.n = p.files_total, p.files_done
        bar.set_postfix_str(f"{p.chunks} chunks, {p.tokens_per_s:,.0f} tok/s", refresh=False)
        bar.refresh()

    try:
        reports = backend.ingest(req, on_progress)
    finally:
        bar.close()
        backend.close()
    if not reports:
        print("no sources yet: `kb ingest DIR [--name NAME]` adds a folder")
    adopted = reports[0].get("adopted") if reports else None
    if adopted and not args.json:
        files = ", ".join(f"{len(keys)} files as {name}" for name, keys in adopted["files"].items())
        print(f"adopted the previous collection in place: {adopted['points']} points, {files or 'nothing'}")
    if args.json:
        print(
            json.dumps(
                reports[0] if (root or args.name) and len(reports) == 1 else reports,
                ensure_ascii=False,
                indent=1,
            )
        )
        return EXIT_OK
    for report in reports:
        _print_report(report, False)
    return EXIT_OK


def cmd_sources(args: argparse.Namespace) -> int:
    backend = open_backend(settings_from(args))
    try:
        sources = backend.sources()
    finally:
        backend.close()
    if args.json:
        print(json.dumps(sources, ensure_ascii=False, indent=1))
        return EXIT_OK
    print(f"{'name':20} {'files':>6} {'chunks':>7} {'ocr pages':>9}  {'last sync':20} {'watched':7}  path")
    for s in sources:
        watched = "yes" if s["watch"] else "no"
        access = f"  (readable by {', '.join(s['allow'])})" if s.get("allow") else ""
        print(
            f"{s['name']:20} {s['files']:>6} {s['chunks']:>7} {s['ocr_pages']:>9}  "
            f"{s['last_sync'] or '-':20} {watched:7}  {s['path']}{access}"
        )
    return EXIT_OK


def cmd_source(args: argparse.Namespace) -> int:
    backend = open_backend(settings_from(args))
    try:
        if args.action == "remove":
            done = backend.remove_source(args.name)
            print(f"removed source {done['removed']} ({done['files']} files)")
        elif args.action == "access":
            if not args.clear and not args.allow:
                raise CommandError("name who may read it (--allow USER_OR_GROUP …) or --clear", EXIT_USAGE)
            done = backend.source_access(args.name, [] if args.clear else args.allow)
            who = ", ".join(done["allow"]) or "every signed-in user"
            print(f"{done['name']}: readable by {who} (and admins)")
        else:
            done = backend.watch_source(args.name, args.state == "on")
            print(f"{done['name']}: watched {'yes' if done['watch'] else 'no'}")
    finally:
        backend.close()
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    if args.action == "cancel" and not args.id:
        return fail("which job? `kb jobs` lists them", EXIT_USAGE)
    backend = open_backend(settings_from(args))
    try:
        if args.action == "cancel":
            job = backend.cancel_job(args.id)
            done = job["state"] == "cancelled"
            print(f"job {job['id']}: " + ("cancelled" if done else "stops at the end of its batch"))
            return EXIT_OK
        jobs = backend.jobs()
    finally:
        backend.close()
    if args.json:
        print(json.dumps(jobs, ensure_ascii=False, indent=1))
        return EXIT_OK
    for j in jobs:
        p = j.get("progress") or {}
        done = f"{p.get('files_done', 0)}/{p.get('files_total', 0)} files" if p else ""
        print(f"{j['id']}  {j['state']:9} {j['kind']:6} {j['source'] or j['path']:20} {j['created']}  {done}")
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    flt = filter_from(args)
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
    from kb.service.local_token import TokenFileError
    from kb.settings import LOOPBACK_HOSTS

    overrides = {"service_host": args.host, "service_port": args.port}
    settings = settings_from(args).model_copy(update={k: v for k, v in overrides.items() if v is not None})
    try:
        sessions_for(settings)  # before the model loads: team access on without accounts is one line
    except NoAccounts as err:
        return fail(str(err))
    if settings.access == "off":
        lan = settings.service_host not in LOOPBACK_HOSTS
        who = "anyone who reaches this port" if lan else "every account on this machine"
        print(
            f"kb: warning: listening on {settings.service_host} with team access off (KB_AUTH=off) and no "
            f"local token: {who} can read, add and delete documents",
            file=sys.stderr,
        )
    try:
        service = KbService(
            settings
        )  # opened here so that a locked store or a missing model reads as one line
    except (ModelUnavailable, StoreError) as err:
        return fail(str(err))
    try:
        app = create_app(settings, service)  # writes the local token on first start
    except TokenFileError as err:
        service.close()
        return fail(str(err))
    # uvicorn shuts down gracefully on SIGINT/SIGTERM (the app's shutdown closes the service), then
    # re-raises; requests still running after the grace are cancelled, so a stop takes seconds under any load
    try:
        uvicorn.run(
            app,
            host=settings.service_host,
            port=settings.service_port,
            log_level="info" if args.verbose else "warning",
            timeout_graceful_shutdown=max(1, round(settings.stop_grace_s)),
            # the peer stays the peer: the service alone decides whose X-Forwarded-For it believes
            proxy_headers=False,
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
    ing = sub.add_parser("ingest", help="add a folder as a source and sync it; no folder: sync every source")
    ing.add_argument("dir", nargs="?", help="folder to index (default: every source)")
    ing.add_argument("--name", help="the source's name (default: the folder's name); alone: sync that source")
    ing.add_argument("--rebuild", action="store_true", help="drop the collection and re-embed every source")
    ing.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip matching paths")
    ing.add_argument(
        "--allow-empty",
        "--allow-removals",
        dest="allow_removals",
        action="store_true",
        help="let the sync empty a source whose folder is missing or empty, or remove more than half its files",
    )
    ing.add_argument(
        "--adopt",
        action="store_true",
        help="take a collection of the version before sources over as this source, without re-embedding",
    )
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
    add_filter_options(se)
    se.add_argument("--task", help="instruction for the query (Qwen3)")
    se.add_argument("--json", action="store_true", help="print hits as a JSON array")
    se.set_defaults(func=cmd_search)


def _register_sources_jobs(sub) -> None:
    ls = sub.add_parser("sources", help="list the sources: files, chunks, OCR'd pages, last sync, watched")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=cmd_sources)
    src = sub.add_parser("source", help="manage one source").add_subparsers(dest="action", required=True)
    rm = src.add_parser("remove", help="delete a source's points and forget it")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_source)
    watch = src.add_parser("watch", help="watch a source's folder for changes, or stop")
    watch.add_argument("name")
    watch.add_argument("state", choices=("on", "off"))
    watch.set_defaults(func=cmd_source)
    access = src.add_parser("access", help="who may read a source (team access): users and groups")
    access.add_argument("name")
    who = access.add_mutually_exclusive_group()
    who.add_argument("--allow", nargs="+", metavar="USER_OR_GROUP", help="only these users and groups")
    who.add_argument("--clear", action="store_true", help="every signed-in user again")
    access.set_defaults(func=cmd_source)
    jobs = sub.add_parser("jobs", help="the service's jobs; `kb jobs cancel ID` stops one")
    jobs.add_argument("action", nargs="?", choices=("list", "cancel"), default="list")
    jobs.add_argument("id", nargs="?")
    jobs.add_argument("--json", action="store_true")
    jobs.set_defaults(func=cmd_jobs)


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
    _register_sources_jobs,
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
