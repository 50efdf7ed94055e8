"""Jupyter notebooks (.ipynb) with nbformat: Markdown cells as Markdown, code cells as fenced code.

Each cell is a section located by its 1-based cell number (neighbouring cells merge into a range:
"cells 4–6"); Markdown cells' headings give the heading path of the cells below them. Outputs are
dropped (they are results, often large, and rerun at will). Raw cells are skipped.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ingest.loaders.base import Document, LoadError, read_text
from ingest.loaders.markdown import headings
from ingest.records import Section

KIND = "notebook"
NB_VERSION = 4


def load_notebook(path: Path) -> Document:
    import nbformat  # imported on first use: parse workers start with the registry only

    text, _encoding = read_text(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            notebook = nbformat.reads(text, as_version=NB_VERSION)
        except Exception as err:
            raise LoadError(f"not a Jupyter notebook: {type(err).__name__}: {str(err)[:200]}") from err
    language = (notebook.metadata.get("kernelspec") or {}).get("language") or (
        notebook.metadata.get("language_info") or {}
    ).get("name", "")
    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    for number, cell in enumerate(notebook.cells, 1):
        source = cell.get("source", "").strip("\n")
        if not source.strip():
            continue
        if cell.cell_type == "markdown":
            marks = headings(source)
            if marks:  # the cell sits under its own first heading; later cells under its last one
                first_path = _push(stack, *marks[0][1:])
                for _line, level, title in marks[1:]:
                    _push(stack, level, title)
                path_here = first_path
            else:
                path_here = tuple(t for _, t in stack)
            sections.append(Section(text=source, heading_path=path_here, locator={"cells": [number, number]}))
        elif cell.cell_type == "code":
            fenced = f"```{language}\n{source}\n```"
            sections.append(
                Section(
                    text=fenced, heading_path=tuple(t for _, t in stack), locator={"cells": [number, number]}
                )
            )
    notes = sorted({f"nbformat: {w.message}" for w in caught})
    meta = {"cells": len(notebook.cells)} | ({"language": language} if language else {})
    return Document(kind=KIND, sections=sections, meta=meta, warnings=notes)


def _push(stack: list[tuple[int, str]], level: int, title: str) -> tuple[str, ...]:
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, title))
    return tuple(t for _, t in stack)
