"""A test set: JSONL queries with references to the passages that answer them (format in
``data/eval/README.md``)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

QUERY_FIELDS = {"query", "relevant", "lang", "category"}
REFERENCE_FIELDS = {"source", "page", "lines", "snippet"}


class EvalSetError(ValueError):
    """A test set that cannot be read; the message names the file and the line."""


@dataclass(frozen=True, slots=True)
class Reference:
    """Where an answer lies: a source, optionally narrowed by page, line range and snippet."""

    source: str
    page: int | None = None
    lines: tuple[int, int] | None = None
    snippet: str | None = None


@dataclass(frozen=True, slots=True)
class EvalQuery:
    query: str
    relevant: tuple[Reference, ...]
    lang: str | None = None
    category: str | None = None
    line: int = 0  # line of the set file it came from


def parse_test_set(text: str, name: str = "test set") -> list[EvalQuery]:
    """Queries of a JSONL text (blank lines and lines starting with '#' are skipped)."""
    queries = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise EvalSetError(f"{name}:{n}: not valid JSON ({err.msg} at column {err.colno})") from None
        queries.append(_query(obj, f"{name}:{n}", n))
    if not queries:
        raise EvalSetError(f"{name}: no queries")
    return queries


def load_test_set(path: Path) -> list[EvalQuery]:
    return parse_test_set(Path(path).read_text(encoding="utf-8"), str(path))


def _query(obj: Any, where: str, n: int) -> EvalQuery:
    if not isinstance(obj, dict):
        raise EvalSetError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    _check_fields(obj, QUERY_FIELDS, where)
    query, relevant = obj.get("query"), obj.get("relevant")
    if not isinstance(query, str) or not query.strip():
        raise EvalSetError(f'{where}: "query" must be a non-empty string')
    if not isinstance(relevant, list) or not relevant:
        raise EvalSetError(f'{where}: "relevant" must be a non-empty list of references')
    refs = tuple(_reference(r, f"{where}: relevant[{i}]") for i, r in enumerate(relevant))
    lang, category = (_optional_str(obj, key, where) for key in ("lang", "category"))
    return EvalQuery(query.strip(), refs, lang, category, n)


def _check_fields(obj: dict[str, Any], known: set[str], where: str) -> None:
    if unknown := sorted(set(obj) - known):
        raise EvalSetError(
            f"{where}: unknown field(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


def _optional_str(obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if value is not None and (not isinstance(value, str) or not value.strip()):
        raise EvalSetError(f'{where}: "{key}" must be a non-empty string')
    return value.strip() if value else None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _reference(obj: Any, where: str) -> Reference:
    if not isinstance(obj, dict):
        raise EvalSetError(f"{where}: expected an object with a source, got {type(obj).__name__}")
    _check_fields(obj, REFERENCE_FIELDS, where)
    source, page, lines, snippet = (obj.get(k) for k in ("source", "page", "lines", "snippet"))
    if not isinstance(source, str) or not source.strip():
        raise EvalSetError(f'{where}: "source" must be a non-empty path relative to the corpus')
    if page is not None and not (_is_int(page) and page >= 1):
        raise EvalSetError(f'{where}: "page" must be a page number from 1')
    if lines is not None:
        if not (
            isinstance(lines, list)
            and len(lines) == 2
            and all(_is_int(x) for x in lines)
            and 1 <= lines[0] <= lines[1]
        ):
            raise EvalSetError(f'{where}: "lines" must be [first, last] with 1 <= first <= last')
        lines = (lines[0], lines[1])
    if snippet is not None and (not isinstance(snippet, str) or not snippet.strip()):
        raise EvalSetError(f'{where}: "snippet" must be a non-empty string')
    return Reference(source.strip().replace("\\", "/").removeprefix("./"), page, lines, snippet)


def select(
    queries: Iterable[EvalQuery], langs: Iterable[str] = (), categories: Iterable[str] = ()
) -> list[EvalQuery]:
    """The queries with one of ``langs`` and one of ``categories`` (an empty filter keeps all)."""
    lang_set, category_set = set(langs), set(categories)
    return [
        q
        for q in queries
        if (not lang_set or q.lang in lang_set) and (not category_set or q.category in category_set)
    ]
