"""Source code: the whole file as one Section (lines 1..N) with its language; the chunker splits it.

``CODE_LANGUAGES`` maps a suffix to a language name. Names that are values of
``langchain_text_splitters.Language`` get that language's separators when the chunker splits;
the others (shell, SQL, CSS, …) are split on blank lines, then lines.
"""

from __future__ import annotations

from pathlib import Path

from ingest.loaders.base import Document, LoadError, line_section, read_text

KIND = "code"

CODE_LANGUAGES: dict[str, str] = {
    # Language members of langchain-text-splitters 1.1.3
    ".py": "python",
    ".pyi": "python",
    ".pyw": "python",
    ".js": "js",
    ".mjs": "js",
    ".cjs": "js",
    ".jsx": "js",
    ".ts": "ts",
    ".mts": "ts",
    ".cts": "ts",
    ".tsx": "ts",
    ".go": "go",
    ".rs": "rust",
    ".java": "java",
    ".kt": "kotlin",
    ".kts": "kotlin",
    ".c": "c",
    ".h": "c",
    ".cc": "cpp",
    ".cpp": "cpp",
    ".cxx": "cpp",
    ".hh": "cpp",
    ".hpp": "cpp",
    ".hxx": "cpp",
    ".cs": "csharp",
    ".rb": "ruby",
    ".php": "php",
    ".scala": "scala",
    ".sc": "scala",
    ".swift": "swift",
    ".lua": "lua",
    ".hs": "haskell",
    ".ex": "elixir",
    ".exs": "elixir",
    ".ps1": "powershell",
    ".psm1": "powershell",
    ".r": "r",
    ".proto": "proto",
    ".sol": "sol",
    ".cob": "cobol",
    ".cbl": "cobol",
    ".vb": "visualbasic6",
    ".bas": "visualbasic6",
    ".html": "html",
    ".htm": "html",
    ".tex": "latex",
    # no Language member: generic blank-line/line splitting
    ".sh": "shell",
    ".bash": "shell",
    ".zsh": "shell",
    ".fish": "shell",
    ".sql": "sql",
    ".css": "css",
    ".scss": "css",
    ".less": "css",
    ".pl": "perl",
    ".pm": "perl",
    ".dart": "dart",
    ".jl": "julia",
    ".zig": "zig",
    ".mm": "objc",
    ".vue": "vue",
    ".svelte": "svelte",
}


def language_for(path: Path) -> str | None:
    return CODE_LANGUAGES.get(path.suffix.lower())


def load_code(path: Path) -> Document:
    text, encoding = read_text(path)
    lines = text.split("\n")
    section = line_section(lines, 0, len(lines))
    if section is None:
        raise LoadError("no text (whitespace only)")
    return Document(kind=KIND, sections=[section], meta={"encoding": encoding}, language=language_for(path))
