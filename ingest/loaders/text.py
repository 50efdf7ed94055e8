"""Plain text: prose, logs, data and config files, and any unknown suffix that decodes as text.

The whole file is one Section with its line range; the chunker splits it on paragraphs, lines and
sentences. Non-UTF-8 files are decoded by detection; binary files are a LoadError.
"""

from __future__ import annotations

from pathlib import Path

from ingest.loaders.base import Document, LoadError, line_section, read_text

KIND = "text"

TEXT_SUFFIXES = frozenset(
    {
        ".txt",
        ".text",
        ".rst",
        ".adoc",
        ".org",
        ".log",
        ".csv",
        ".tsv",
        ".json",
        ".jsonl",
        ".ndjson",
        ".yaml",
        ".yml",
        ".toml",
        ".ini",
        ".cfg",
        ".conf",
        ".properties",
        ".xml",
        ".srt",
        ".vtt",
        ".bib",
        ".diff",
        ".patch",
    }
)


def load_text(path: Path) -> Document:
    text, encoding = read_text(path)
    lines = text.split("\n")
    section = line_section(lines, 0, len(lines))
    if section is None:
        raise LoadError("no text (whitespace only)")
    return Document(kind=KIND, sections=[section], meta={"encoding": encoding})
