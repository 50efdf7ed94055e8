"""Pure helpers that turn hits into safe Markdown: nothing from a document becomes HTML or a link."""

from __future__ import annotations

import re

# every character Markdown (or Streamlit's directives) could act on is backslash-escaped
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~:$=&\"'])")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
HIGHLIGHT = ":orange-background[{}]"
MAX_PASSAGE = 1200


def escape_md(text: str) -> str:
    """Text shown literally by st.markdown: no HTML, no links, no emphasis, no directives."""
    return _MD_SPECIAL.sub(r"\\\1", text).replace("\n", "  \n")


def query_terms(query: str) -> list[str]:
    """Terms to highlight: words of 2+ letters; for CJK runs, each run and its 2-character grams."""
    terms: set[str] = set()
    for word in _WORD.findall(query.lower()):
        if _CJK.search(word):
            run = "".join(ch for ch in word if _CJK.match(ch))
            terms.add(run)
            terms.update(run[i : i + 2] for i in range(len(run) - 1))
        elif len(word) >= 2:
            terms.add(word)
    return sorted((t for t in terms if t), key=len, reverse=True)


def highlight(text: str, query: str, limit: int = MAX_PASSAGE) -> str:
    """Escaped Markdown of ``text`` (cut to ``limit``) with the query's terms highlighted."""
    text = text if len(text) <= limit else text[:limit] + "…"
    terms = query_terms(query)
    if not terms:
        return escape_md(text)
    pattern = re.compile("|".join(re.escape(t) for t in terms), re.IGNORECASE)
    out, last = [], 0
    for m in pattern.finditer(text):
        out.append(escape_md(text[last : m.start()]))
        out.append(HIGHLIGHT.format(escape_md(m.group(0))))
        last = m.end()
    out.append(escape_md(text[last:]))
    return "".join(out)


_UPLOAD_PREFIX = re.compile(r"^[0-9a-f]{16}-")


def display_name(source: str) -> str:
    """A source's file name as the user knows it (uploads are stored under a generated prefix)."""
    name = source.rsplit("/", 1)[-1]
    return _UPLOAD_PREFIX.sub("", name) if source.startswith(".uploads/") else name


def location(hit: dict) -> str:
    """Where a hit is in its source: page, or heading path and line range."""
    if hit.get("page"):
        return f"page {hit['page']}"
    parts = [" › ".join(hit.get("heading_path") or [])]
    if hit.get("line_start"):
        parts.append(f"lines {hit['line_start']}–{hit.get('line_end') or hit['line_start']}")
    return " · ".join(p for p in parts if p)


def score_line(hit: dict) -> str:
    parts = [f"score {hit['score']:.4f}"]
    if "rerank_score" in hit:
        parts = [f"rerank p(yes) {hit['rerank_score']:.3f}", f"retrieval {hit.get('retrieval_score', 0):.4f}"]
        if hit.get("reranked_window"):
            parts.append("scored on its best window")
    if hit.get("ocr"):
        parts.append("text from OCR")
    return " · ".join(parts)
