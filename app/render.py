"""Pure helpers that turn service answers into safe Markdown and short labels (no Streamlit here).

Everything that comes from a document or a file name goes through :func:`escape_md`: every ASCII
punctuation character is backslash-escaped, so nothing becomes HTML, a link, emphasis, a code
block, LaTeX, an emoji or a Streamlit directive; the only markup is what this module adds.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from pathlib import PurePosixPath
from typing import Any

from kb.contract import ACTIVE_JOB_STATES, UPLOAD_SCOPE, locator_label, page_ranges
from kb.contract import EVAL_LABELS as LABELS
from kb.contract import EVAL_LATENCY as LATENCY
from kb.contract import EVAL_QUALITY as QUALITY

WOULD_REMOVE_SHOWN = 5  # files a refused sync names in the job list
_PUNCT = re.compile(r"([!-/:-@\[-`{-~])")  # every ASCII punctuation character (CommonMark escapes all)
_LEADING_WS = re.compile(r"^[ \t]+", re.MULTILINE)
NBSP = "\u00a0"
WORD_JOINER = "\u2060"
_SCHEME = re.compile(r"(https?)(?=://)", re.IGNORECASE)
_WWW = re.compile(r"(www)(?=\.)", re.IGNORECASE)
_AT = re.compile(r"(?<=[^\s\u2060])@")
TAB_WIDTH = 4
_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(r"[^\W_]+")
# words too common to be worth marking in a passage
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "with",
        "you",
    }
)
MIN_TERM = 2  # Latin terms shorter than this are not marked
WORD_PREFIX_MIN = 4  # a Latin term this long also marks the words it begins ("embed" → "embeddings")
HIGHLIGHT = ":orange-background[{}]"
OCR_BADGE = ":violet-badge[OCR]"  # the passage's text was recognised from the page image
# a PDF's page sources in the document table: column → key of the service's ``pages`` record
PAGE_COLUMNS = {
    "pages": "pages",
    "text layer": "text",
    "fallback": "fallback",
    "OCR": "ocr",
    "unreadable": "unreadable",
}
PASSAGE_CHARS = 700  # of a passage shown in a card; the rest is one click away
PASSAGE_LINES = 10
LINES_BEFORE_MATCH = 2  # lines kept above the first match when a passage is cut by lines
_BLANK_LINES = re.compile(r"\n(?:[ \t]*\n)+")
ACTIVE_STATES = ACTIVE_JOB_STATES
REPORT_LISTS = ("indexed", "updated", "unchanged", "removed", "skipped")
_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{16}-")


# --- escaping and highlighting -------------------------------------------------------------------
def defang_links(text: str) -> str:
    """A word joiner (invisible) where the browser side would turn text into a link: after the
    scheme of http(s)://, after www., before the @ of an address. Streamlit links these even when
    escaped. Idempotent."""
    text = _SCHEME.sub("\\1" + WORD_JOINER, text)
    text = _WWW.sub("\\1" + WORD_JOINER, text)
    return _AT.sub(WORD_JOINER + "@", text)


def escape_md(text: str) -> str:
    """Text shown literally by st.markdown: punctuation escaped, line breaks and indentation kept,
    nothing linked."""
    text = _PUNCT.sub(r"\\\1", defang_links(str(text)))
    # leading blanks would make an indented code block (where escapes show): keep them as NBSPs
    text = _LEADING_WS.sub(lambda m: m.group(0).replace("\t", " " * TAB_WIDTH).replace(" ", NBSP), text)
    return text.replace("\n", "  \n")


def query_terms(query: str) -> list[str]:
    """Terms to mark, longest first: Latin words (no stopwords); each CJK run and its 2-grams."""
    terms: set[str] = set()
    for word in _WORD.findall(query.lower()):
        for run in _CJK_RUN.findall(word):
            terms.add(run)
            terms.update(run[i : i + 2] for i in range(len(run) - 1))
        for latin in _CJK_RUN.split(word):
            if len(latin) >= MIN_TERM and latin not in STOPWORDS:
                terms.add(latin)
    return sorted(terms, key=lambda t: (-len(t), t))


def _term_pattern(terms: Sequence[str]) -> re.Pattern[str] | None:
    if not terms:
        return None
    alts = []
    for t in terms:
        if _CJK_RUN.fullmatch(t):
            alts.append(re.escape(t))  # no word boundaries in CJK text
        else:
            tail = r"\w*" if len(t) >= WORD_PREFIX_MIN else r"\b"
            alts.append(rf"\b{re.escape(t)}{tail}")
    return re.compile("|".join(alts), re.IGNORECASE)


def match_spans(text: str, query: str) -> list[tuple[int, int]]:
    """Where the query's terms occur; neighbours separated by blanks only are merged into one span."""
    pattern = _term_pattern(query_terms(query))
    spans: list[tuple[int, int]] = []
    if pattern is None:
        return spans
    for m in pattern.finditer(text):
        if m.start() == m.end():
            continue
        if spans and not text[spans[-1][1] : m.start()].strip(" \t"):
            spans[-1] = (spans[-1][0], m.end())
        else:
            spans.append((m.start(), m.end()))
    return spans


def excerpt_bounds(
    text: str, spans: Sequence[tuple[int, int]], limit: int = PASSAGE_CHARS, max_lines: int = PASSAGE_LINES
) -> tuple[int, int]:
    """A window of at most ``limit`` characters and ``max_lines`` lines holding the first match."""
    first = spans[0][0] if spans else 0
    start, end = 0, len(text)
    if len(text) > limit:
        start = max(0, min(first - limit // 4, len(text) - limit))
        if start:  # begin at a word
            blank = text.find(" ", start, start + 40)
            start = blank + 1 if blank != -1 and blank < first else start
        end = min(len(text), start + limit)
        if end < len(text):  # end at a word
            blank = text.rfind(" ", end - 40, end)
            end = blank if blank > start else end
    line_starts = [start] + [i + 1 for i in range(start, end) if text[i] == "\n"]
    if len(line_starts) > max_lines:
        at = bisect_right(line_starts, max(first, start)) - 1
        lo = max(0, min(at - LINES_BEFORE_MATCH, len(line_starts) - max_lines))
        start = line_starts[lo]
        end = line_starts[lo + max_lines] - 1 if lo + max_lines < len(line_starts) else end
    return start, end


def highlight(text: str, query: str, limit: int | None = PASSAGE_CHARS) -> str:
    """Escaped Markdown of ``text`` with the query's terms marked; blank lines dropped; cut around
    the first match to ``limit`` characters and PASSAGE_LINES lines (None: whole), an ellipsis
    where something was left out."""
    text = defang_links(_BLANK_LINES.sub("\n", text.strip("\n")))  # marks go on the text as shown
    spans = match_spans(text, query)
    start, end = (0, len(text)) if limit is None else excerpt_bounds(text, spans, limit)
    out = ["…"] if start else []
    pos = start
    for s, e in spans:
        if e <= start or s >= end:
            continue
        s, e = max(s, start), min(e, end)
        out.append(escape_md(text[pos:s]))
        out.append(HIGHLIGHT.format(escape_md(text[s:e])))
        pos = e
    out.append(escape_md(text[pos:end]))
    if end < len(text):
        out.append("…")
    return "".join(out)


# --- hits ----------------------------------------------------------------------------------------
def display_name(source: str, original_name: str | None = None) -> str:
    """A source's file name as the user knows it (uploads are stored under a generated prefix)."""
    if original_name:
        return original_name.replace("\\", "/").rsplit("/", 1)[-1]
    name = PurePosixPath(source).name
    return _UPLOAD_PREFIX.sub("", name) if source.startswith(UPLOAD_SCOPE) else name


def location(hit: dict[str, Any]) -> str:
    """Where a hit is in its source: its location ("slide 7"), else its page, else its line range."""
    if hit.get("location"):
        label = locator_label(hit["location"])
        return f"{label}, page {hit['page']}" if hit.get("page") else label
    if hit.get("page"):
        return f"page {hit['page']}"
    if hit.get("line_start"):
        return f"lines {hit['line_start']}–{hit.get('line_end') or hit['line_start']}"
    return ""


def card_title(hit: dict[str, Any], name: str, url: str) -> str:
    """'**1.** [**name**](url) — page 2 OCR': the file linked to ``url`` (ours, from the service)."""
    where = location(hit)
    return (
        f"**{hit['rank']}\\.** [**{escape_md(name)}**]({url})"
        + (f" — {escape_md(where)}" if where else "")
        + (" " + OCR_BADGE if hit.get("ocr") else "")
    )


def heading_trail(hit: dict[str, Any]) -> str:
    return " › ".join(hit.get("heading_path") or [])


def score_line(hit: dict[str, Any]) -> str:
    """The score, or both scores of a reranked hit (and whether the reranker saw only a window)."""
    if "rerank_score" not in hit:
        return f"score {hit['score']:.4f}"
    parts = [f"rerank {hit['rerank_score']:.3f}", f"retrieval {hit.get('retrieval_score', 0.0):.4f}"]
    if hit.get("reranked_window"):
        parts.append("reranked on its best window of a long passage")
    return " · ".join(parts)


def parse_exts(raw: str) -> tuple[str, ...]:
    """'pdf, .md  py' → ('pdf', 'md', 'py')."""
    return tuple(dict.fromkeys(e.lstrip(".").lower() for e in re.split(r"[\s,;]+", raw) if e.lstrip(".")))


# --- jobs and reports ----------------------------------------------------------------------------
def job_fraction(job: dict[str, Any]) -> float:
    if job.get("state") == "done":
        return 1.0
    p = job.get("progress") or {}
    total = p.get("files_total") or 0
    return min(1.0, p.get("files_done", 0) / total) if total else 0.0


def job_label(job: dict[str, Any]) -> str:
    """One line about a job: state, who started it, what it works on, how far it is."""
    p = job.get("progress") or {}
    what = "uploads" if job.get("kind") == "upload" else (job.get("source") or job.get("path") or "?")
    parts = [job.get("state", "?"), f"from {job.get('origin', '?')}", what]
    if p.get("files_total") is not None and job.get("state") != "queued":
        parts.append(f"{p.get('files_done', 0)}/{p['files_total']} files")
        parts.append(f"{p.get('chunks', 0)} chunks")
        if job.get("state") == "running" and p.get("tokens_per_s"):
            parts.append(f"{p['tokens_per_s']:.0f} tokens/s")
        if job.get("state") == "running" and p.get("current"):
            parts.append(f"now {display_name(p['current'])}")
    return " · ".join(str(x) for x in parts)


def report_summary(report: dict[str, Any] | None) -> str:
    """'indexed 2 · updated 0 · … · 40 chunks in 1.2 s' of an ingest report, or of a listing's
    ``summary`` of one (counts instead of lists); what a refused sync would have removed."""
    if not report:
        return "no report"
    if "would_remove" in report:
        going = report["would_remove"]
        if isinstance(going, int):
            return f"would remove {going} file(s)"
        shown = ", ".join(going[:WOULD_REMOVE_SHOWN]) + (" …" if len(going) > WOULD_REMOVE_SHOWN else "")
        return f"would remove {len(going)} file(s): {shown}"
    counts = " · ".join(f"{name} {_count(report.get(name))}" for name in REPORT_LISTS)
    return f"{counts} · {report.get('chunks', 0)} chunks in {report.get('seconds', 0):.1f} s"


def _count(value: Any) -> int:
    return value if isinstance(value, int) else len(value or [])


def poll_wait(wait: float, moved: bool, shortest: float, longest: float) -> float:
    """Seconds until the jobs panel asks the service again: ``shortest`` after anything moved, twice
    the last wait (up to ``longest``) while nothing does."""
    return shortest if moved else min(max(wait, shortest) * 2, longest)


def upload_rows(batch: dict[str, Any], job: dict[str, Any] | None, seen: Iterable[str] = ()) -> list[dict]:
    """One row per file of an upload: its name, size and where it stands.

    ``batch`` is the service's answer to the upload ({files, rejected}); ``job`` the upload job as
    it is now (None when it is gone); ``seen``: sources the job has already read (they were its
    ``current`` file at an earlier poll). The final word is the job's report.
    """
    seen = set(seen)
    state = (job or {}).get("state")
    report = (job or {}).get("report") or {}
    current = ((job or {}).get("progress") or {}).get("current")
    outcome = {src: name for name in ("indexed", "updated", "unchanged") for src in report.get(name) or []}
    skipped = {s["path"]: s["reason"] for s in report.get("skipped") or []}
    warned: dict[str, int] = {}
    for w in report.get("warnings") or []:
        warned[w["path"]] = warned.get(w["path"], 0) + 1
    rows = []
    for f in batch.get("files", []):
        src = f["source"]
        if state == "done":
            status = outcome.get(src) or (f"skipped: {skipped[src]}" if src in skipped else "not indexed")
            if warned.get(src):
                status += f" ({warned[src]} warning{'s' if warned[src] > 1 else ''})"
        elif state == "failed":
            status = f"failed: {(job or {}).get('error') or 'unknown error'}"
        elif f.get("duplicate"):
            status = "already in the library"
        elif state == "running" and src == current:
            status = "reading"
        elif state == "running" and src in seen:
            status = "read, embedding"
        else:
            status = "waiting" if job else "unknown"
        rows.append({"file": f["original_name"], "size": human_bytes(f.get("bytes", 0)), "status": status})
    for r in batch.get("rejected", []):
        rows.append({"file": r["original_name"], "size": "", "status": f"not accepted: {r['reason']}"})
    return rows


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


def source_label(src: dict[str, Any]) -> str:
    """One line about a source: its name, what it holds, when it was synced, whether it is watched."""
    parts = [src["name"], f"{src.get('files', 0)} files", f"{src.get('chunks', 0)} chunks"]
    if src.get("ocr_pages"):
        parts.append(f"{src['ocr_pages']} pages OCR'd")
    if src.get("kind") == "folder":
        parts.append(f"synced {src['last_sync']}" if src.get("last_sync") else "never synced")
        parts.append("watched" if src.get("watch") else "not watched")
        parts.append(src.get("path") or "")
    if src.get("allow"):
        parts.append("readable by " + ", ".join(src["allow"]))
    return " · ".join(str(p) for p in parts if p)


def documents_by_source(docs: Sequence[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The documents under their source's name."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for d in docs:
        grouped.setdefault(d.get("source_name") or d["source"].partition("/")[0], []).append(d)
    return grouped


def document_rows(docs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The document table: name as the user knows it, where it is, kind, chunks, how it came, and for
    a PDF where its pages got their text (PAGE_COLUMNS; None, a blank cell, for other files)."""
    return [
        {
            "name": display_name(d["source"], d.get("original_name")),
            "source": d["source"],
            "kind": d.get("kind") or "",
            "chunks": d.get("chunks", 0),
            **page_cells(d.get("pages")),
            "from": d.get("origin", ""),
            "complete": bool(d.get("complete", True)),
        }
        for d in docs
    ]


def page_cells(pages: dict[str, Any] | None) -> dict[str, Any]:
    """A document's page sources as table cells: counts, and the unreadable pages as ``3, 5-7``."""
    if not pages:
        return dict.fromkeys(PAGE_COLUMNS)
    cells = {column: pages.get(key) or 0 for column, key in PAGE_COLUMNS.items()}
    return {**cells, "unreadable": page_ranges(pages.get("unreadable") or ())}


# --- evaluation and status -----------------------------------------------------------------------
EVAL_COLUMNS = {m: LABELS[m] for m in (*QUALITY, *LATENCY)}  # report metric → column


def eval_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics table of a `kb eval` report (its JSON): one row per configuration."""
    rows = []
    for result in report.get("results") or ():
        metrics = result.get("metrics") or {}
        row = {"config": str((result.get("config") or {}).get("name", "?"))}
        rows.append(row | {label: metrics.get(key) for key, label in EVAL_COLUMNS.items()})
    return rows


def vram_label(status: dict[str, Any]) -> str:
    """``1,234 of 81,559 MB (this service 1,100 MB)``, ``n/a (CPU)``, or ``n/a`` when a GPU's figures
    could not be read."""
    vram = status.get("vram")
    if not vram:
        return "n/a (CPU)" if status.get("device") != "GPU" else "n/a"
    label = f"{vram['used_mb']:,} of {vram['total_mb']:,} MB"
    mine = vram.get("this_process_mb")
    return label + (f" (this service {mine:,} MB)" if mine is not None else "")
