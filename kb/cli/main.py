"""`kb` command line: parses options, calls the library, reports. No logic of its own."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from ingest.pagesources import PageSources
from kb.settings import Settings

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: v for k, v in {"data_dir": getattr(args, "data_dir", None)}.items() if v is not None}
    return Settings(**overrides)


def cmd_models(args: argparse.Namespace) -> int:
    from ingest.model.registry import REGISTRY

    settings = _settings(args)
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
    from ingest.model.download import ModelUnavailable, pull
    from ingest.model.registry import lookup

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


def _open(settings: Settings):
    """The heavy resources, from their factories (the caller closes them)."""
    from ingest.model.embedder import make_embedder
    from ingest.store import make_store

    store = make_store(settings)
    try:
        embedder = make_embedder(settings)
    except Exception:
        store.close()
        raise
    return embedder, store


def _service(settings: Settings):
    """The running `kb serve` for this store, or None to work in this process."""
    from kb.service.client import find_service

    return find_service(settings)


def _print_report(report: dict, as_json: bool) -> None:
    """An IngestReport as its dict (``as_dict()``): both ingest paths print through here."""
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


def _progress_bar(quiet: bool):
    from tqdm import tqdm

    return tqdm(total=0, unit="file", disable=quiet or None, dynamic_ncols=True)


def _show_progress(bar, files_total: int, files_done: int, chunks: int, tokens_per_s: float) -> None:
    bar.total = files_total
    bar.n = files_done
    bar.set_postfix_str(f"{chunks} chunks, {tokens_per_s:,.0f} tok/s", refresh=False)
    bar.refresh()


def _store_error_message(message: str) -> str:
    return f"kb: {message}" + ("" if "rebuild" in message else " (kb ingest --rebuild re-embeds)")


def _ingest_via_service(client, root: Path, args: argparse.Namespace) -> int:
    from kb.service.client import ServiceError

    try:
        job = client.submit_folder(root.resolve(), rebuild=args.rebuild, exclude=args.exclude, origin="cli")
    except ServiceError as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
    bar = _progress_bar(args.json)
    bar.set_description_str(f"job {job['id']}", refresh=False)

    def on_progress(j: dict) -> None:
        p = j["progress"]
        if p:
            _show_progress(bar, p["files_total"], p["files_done"], p["chunks"], p["tokens_per_s"])

    try:
        job = client.wait(job["id"], on_progress)
    except KeyboardInterrupt:
        print(
            f"\nkb: job {job['id']} goes on in the service ({client.base_url}/jobs/{job['id']})",
            file=sys.stderr,
        )
        return EXIT_FAIL
    except ServiceError as err:
        print(f"kb: lost the service while waiting for job {job['id']}: {err}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        bar.close()
    if job["state"] == "failed":
        store_error = job["error_type"] in {"StoreError", "FingerprintMismatch"}
        print(_store_error_message(job["error"]) if store_error else f"kb: {job['error']}", file=sys.stderr)
        return EXIT_FAIL
    _print_report(job["report"], args.json)
    return EXIT_OK


def cmd_ingest(args: argparse.Namespace) -> int:
    settings = _settings(args)
    root = Path(args.dir)
    if not root.is_dir():
        print(f"kb: {root} is not a folder", file=sys.stderr)
        return EXIT_FAIL
    client = _service(settings)
    if client is not None:
        return _ingest_via_service(client, root, args)
    return _ingest_in_process(settings, root, args)


def _ingest_in_process(settings: Settings, root: Path, args: argparse.Namespace) -> int:
    from ingest.model.download import ModelUnavailable
    from ingest.pipeline import ChunkSettings, ingest_folder
    from ingest.store import StoreError

    try:
        embedder, store = _open(settings)
    except (ModelUnavailable, StoreError) as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
    bar = _progress_bar(args.json)

    def on_progress(p) -> None:
        _show_progress(bar, p.files_total, p.files_done, p.chunks, p.tokens_per_s)

    try:
        report = ingest_folder(
            root,
            embedder,
            store,
            ChunkSettings(settings.chunk_tokens, settings.chunk_overlap),
            rebuild=args.rebuild,
            exclude=args.exclude,
            workers=settings.parse_workers,
            on_progress=on_progress,
            load_options=settings.load_options(),
            limits=settings.ingest_limits(),
        )
    except StoreError as err:  # includes FingerprintMismatch
        print(_store_error_message(str(err)), file=sys.stderr)
        return EXIT_FAIL
    finally:
        bar.close()
        embedder.close()
        store.close()
    _print_report(report.as_dict(), args.json)
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.hybrid is None:
        args.hybrid = settings.hybrid
    client = _service(settings)
    if client is not None:
        return _search_via_service(client, args)
    return _search_in_process(settings, args)


def _search_in_process(settings: Settings, args: argparse.Namespace) -> int:
    from ingest.model.download import ModelUnavailable
    from ingest.store import SearchFilter, StoreError
    from kb.search.query import SearchRequest, search

    try:
        embedder, store = _open(settings)
    except (ModelUnavailable, StoreError) as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
    reranker = None
    try:
        if args.rerank:
            from ingest.model.reranker import make_reranker

            reranker = make_reranker(settings)
        flt = SearchFilter(
            source_prefix=args.prefix,
            source_glob=args.glob,
            kinds=tuple(args.kind or ()),
            exts=tuple(args.ext or ()),
        )
        req = SearchRequest(
            args.query, k=args.k, rerank=args.rerank, hybrid=args.hybrid, filter=flt, task=args.task
        )
        result = search(req, embedder, store, reranker)
    except ModelUnavailable as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        if reranker:
            reranker.close()
        embedder.close()
        store.close()
    _print_hits(result.hits, args.json)
    return EXIT_OK


def _search_via_service(client, args: argparse.Namespace) -> int:
    from kb.service.client import ServiceError

    try:
        result = client.search(
            args.query,
            k=args.k,
            rerank=args.rerank,
            hybrid=args.hybrid,
            prefix=args.prefix,
            glob=args.glob,
            kinds=args.kind or (),
            exts=args.ext or (),
            task=args.task,
        )
    except ServiceError as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
    _print_hits(result["hits"], args.json)
    return EXIT_OK


def _print_hits(hits: list[dict], as_json: bool) -> None:
    """Hit records (``search.hit_record``): both search paths print through here."""
    if as_json:
        print(json.dumps(hits, ensure_ascii=False, indent=1))
        return
    for h in hits:
        where = (
            f"p. {h['page']}"
            if h["page"]
            else f"lines {h['line_start']}-{h['line_end']}"
            if h["line_start"]
            else " > ".join(h["heading_path"])
        )
        print(f"{h['rank']:>3}. {h['score']:.4f}  {h['source']}  {where}")
        print("      " + " ".join(h["text"].split())[:200])


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ingest.model.download import ModelUnavailable
    from ingest.store import StoreError
    from kb.service.api import KbService, NoAccounts, create_app, sessions_for
    from kb.settings import LOOPBACK_HOSTS

    overrides = {"service_host": args.host, "service_port": args.port}
    settings = _settings(args).model_copy(update={k: v for k, v in overrides.items() if v is not None})
    try:
        sessions_for(settings)  # before the model loads: team access on without accounts is one line
    except NoAccounts as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
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
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
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
    se.add_argument("--kind", action="append", choices=["pdf", "markdown", "code", "text"])
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
    from kb.tools.evaluate import register_cli

    register_cli(sub)


def _register_backup(sub) -> None:
    from kb.tools.backup import register_cli

    register_cli(sub)


def _register_accounts(sub) -> None:
    from kb.cli.accounts import register_cli

    register_cli(sub)


_EXTRA: list = [
    _register_ingest_search,
    _register_serve,
    _register_eval,
    _register_backup,
    _register_accounts,
]  # further subcommands register here


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
