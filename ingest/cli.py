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


def _open(settings: Settings):
    """The heavy resources, from their factories (the caller closes them)."""
    from .embedder import make_embedder
    from .store import make_store

    store = make_store(settings)
    try:
        embedder = make_embedder(settings)
    except Exception:
        store.close()
        raise
    return embedder, store


def _print_report(report) -> None:
    print(f"indexed {len(report.indexed)}, updated {len(report.updated)}, unchanged {len(report.unchanged)}, "
          f"removed {len(report.removed)}, skipped {len(report.skipped)} — {report.chunks} chunks, "
          f"{report.tokens} tokens in {report.seconds:.1f} s")  # fmt: skip
    for path, reason in report.skipped:
        print(f"  skipped {path}: {reason}")
    for path, message in report.warnings:
        print(f"  warning {path}: {message}")


def cmd_ingest(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .download import ModelUnavailable
    from .pipeline import ChunkSettings, ingest_folder
    from .store import StoreError

    settings = _settings(args)
    root = Path(args.dir)
    if not root.is_dir():
        print(f"kb: {root} is not a folder", file=sys.stderr)
        return EXIT_FAIL
    try:
        embedder, store = _open(settings)
    except (ModelUnavailable, StoreError) as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
    bar = tqdm(total=0, unit="file", disable=args.json or None, dynamic_ncols=True)

    def on_progress(p) -> None:
        bar.total = p.files_total
        bar.n = p.files_done
        bar.set_postfix_str(f"{p.chunks} chunks, {p.tokens_per_s:,.0f} tok/s", refresh=False)
        bar.refresh()

    try:
        report = ingest_folder(root, embedder, store, ChunkSettings(settings.chunk_tokens, settings.chunk_overlap),
                               rebuild=args.rebuild, exclude=args.exclude, workers=settings.parse_workers,
                               on_progress=on_progress)  # fmt: skip
    except StoreError as err:  # includes FingerprintMismatch
        print(f"kb: {err}" + ("" if "rebuild" in str(err) else " (kb ingest --rebuild re-embeds)"), file=sys.stderr)
        return EXIT_FAIL
    finally:
        bar.close()
        embedder.close()
        store.close()
    if args.json:
        print(json.dumps(report.as_dict(), ensure_ascii=False, indent=1))
    else:
        _print_report(report)
    return EXIT_OK


def cmd_search(args: argparse.Namespace) -> int:
    from .download import ModelUnavailable
    from .search import SearchRequest, search
    from .store import SearchFilter, StoreError

    settings = _settings(args)
    try:
        embedder, store = _open(settings)
    except (ModelUnavailable, StoreError) as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
    reranker = None
    try:
        if args.rerank:
            from .rerank import make_reranker

            reranker = make_reranker(settings)
        flt = SearchFilter(source_prefix=args.prefix, source_glob=args.glob, kinds=tuple(args.kind or ()),
                           exts=tuple(args.ext or ()))  # fmt: skip
        req = SearchRequest(args.query, k=args.k, rerank=args.rerank, hybrid=args.hybrid, filter=flt, task=args.task)
        result = search(req, embedder, store, reranker)
    except ModelUnavailable as err:
        print(f"kb: {err}", file=sys.stderr)
        return EXIT_FAIL
    finally:
        if reranker:
            reranker.close()
        embedder.close()
        store.close()
    if args.json:
        print(json.dumps(result.hits, ensure_ascii=False, indent=1))
        return EXIT_OK
    for h in result.hits:
        where = (f"p. {h['page']}" if h["page"] else f"lines {h['line_start']}-{h['line_end']}"
                 if h["line_start"] else " > ".join(h["heading_path"]))  # fmt: skip
        print(f"{h['rank']:>3}. {h['score']:.4f}  {h['source']}  {where}")
        print("      " + " ".join(h["text"].split())[:200])
    return EXIT_OK


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
    se.add_argument("--hybrid", action="store_true", help="fuse a lexical (CJK-aware) sparse signal")
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


_EXTRA: list = [_register_ingest_search]  # further subcommands register here


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
