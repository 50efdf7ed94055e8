"""`kb ask "question"`: an answer from the indexed documents, streamed, with its sources and its check."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, TextIO

from kb.cli.backend import open_backend
from kb.cli.common import EXIT_OK, add_filter_options, filter_from, settings_from


def print_answer(event: dict[str, Any], passages: list[dict[str, Any]], out: TextIO) -> None:
    """What follows the streamed text: the verdict, unsupported sentences, then the sources."""
    if event["withheld"]:
        print(f"\n\n{event['text']}", file=out)
        for p in passages:
            print(f"\n[{p['number']}] {p['label']}\n    " + " ".join(p["text"].split())[:400], file=out)
        return
    if event["no_answer"]:
        print(f"\n\n({event.get('no_answer_reason', 'no answer')})", file=out)
        return
    marked = [s for s in event["grounding"]["sentences"] if s["supported"] is False]
    if marked:
        print("\n\nNot found in the passages it cites:", file=out)
        for s in marked:
            print(f"  ! {s['text']}  (missing: {', '.join(s['unsupported'])})", file=out)
    if event["removed_citations"]:
        numbers = ", ".join(f"[{n}]" for n in event["removed_citations"])
        print(f"\n(citations to no passage removed: {numbers})", file=out)
    if event["citations"]:
        print("\nSources:", file=out)
        for c in event["citations"]:
            print(
                f"  [{c['number']}] {c['source']}" + (f", {c['locator']}" if c["locator"] else ""), file=out
            )


def cmd_ask(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    flt = filter_from(args)
    backend = open_backend(settings)
    passages: list[dict[str, Any]] = []
    events = backend.ask(args.question, flt, args.rerank)
    try:
        for event in events:
            if event["event"] == "passages":
                passages = event["passages"]
            elif event["event"] == "token" and not args.json:
                sys.stdout.write(event["text"])
                sys.stdout.flush()
            elif event["event"] == "answer":
                if args.json:
                    print(json.dumps({**event, "passages": passages}, ensure_ascii=False, indent=1))
                else:
                    if event["no_answer"]:
                        sys.stdout.write(event["text"])
                    print_answer(event, passages, sys.stdout)
    finally:
        events.close()
        backend.close()
    return EXIT_OK


def register_cli(sub) -> None:
    ask = sub.add_parser("ask", help="answer a question from the indexed documents, with citations")
    ask.add_argument("question")
    ask.add_argument("--rerank", action="store_true", help="rerank the passages first (Qwen3 reranker)")
    add_filter_options(ask)
    ask.add_argument("--json", action="store_true", help="print the checked answer and its passages as JSON")
    ask.set_defaults(func=cmd_ask)
