"""Loaders: a suffix -> loader registry turning a file into a :class:`Document` of Sections.

A new format is one module with a ``load_x(path) -> Document`` function and one entry in
``LOADERS`` (one that also takes :class:`LoadOptions` is registered with ``takes_options=True``).
Unknown suffixes fall back to the plain-text loader, which rejects binary content; suffixes in
``UNSUPPORTED_SUFFIXES`` (archives, media, legacy office files, OpenDocument slides and sheets, …)
are rejected unread.
Every failure is a :class:`LoadError` whose message is the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath

from ingest.loaders import (
    code,
    epub,
    html,
    image,
    markdown,
    notebook,
    opendocument,
    pdf,
    sheet,
    slides,
    text,
    word,
)
from ingest.loaders.base import Document, LoadError, LoadOptions


@dataclass(frozen=True, slots=True)
class Loader:
    kind: str
    load: Callable[..., Document]  # (path) -> Document, or (path, LoadOptions) with takes_options
    takes_options: bool = False


PDF = Loader(pdf.KIND, pdf.load_pdf, takes_options=True)
MARKDOWN = Loader(markdown.KIND, markdown.load_markdown)
CODE = Loader(code.KIND, code.load_code)
TEXT = Loader(text.KIND, text.load_text)
WORD = Loader(word.KIND, word.load_word)
ODT = Loader(opendocument.KIND, opendocument.load_odt)
SLIDES = Loader(slides.KIND, slides.load_slides)
SHEET = Loader(sheet.KIND, sheet.load_sheet, takes_options=True)
HTML = Loader(html.KIND, html.load_html)
EPUB = Loader(epub.KIND, epub.load_epub)
IMAGE = Loader(image.KIND, image.load_image, takes_options=True)
NOTEBOOK = Loader(notebook.KIND, notebook.load_notebook)

# later entries win: .html is a code language for Markdown fences but a page as a file, .csv is text
# to the text loader but rows to the sheet loader
LOADERS: dict[str, Loader] = {
    ".pdf": PDF,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".mdx": MARKDOWN,
    **{suffix: CODE for suffix in code.CODE_LANGUAGES},
    **{suffix: TEXT for suffix in text.TEXT_SUFFIXES},
    ".docx": WORD,
    ".odt": ODT,
    ".pptx": SLIDES,
    ".xlsx": SHEET,
    ".xlsm": SHEET,
    ".csv": SHEET,
    ".tsv": SHEET,
    **{suffix: HTML for suffix in html.HTML_SUFFIXES},
    ".epub": EPUB,
    **{suffix: IMAGE for suffix in image.IMAGE_SUFFIXES},
    ".ipynb": NOTEBOOK,
}
FALLBACK = TEXT

UNSUPPORTED_SUFFIXES = frozenset(
    {
        ".gif",
        ".bmp",
        ".ico",
        ".svg",
        ".heic",
        ".psd",
        ".zip",
        ".gz",
        ".tgz",
        ".bz2",
        ".xz",
        ".zst",
        ".7z",
        ".rar",
        ".tar",
        ".jar",
        ".whl",
        ".exe",
        ".dll",
        ".so",
        ".dylib",
        ".o",
        ".a",
        ".class",
        ".pyc",
        ".wasm",
        ".bin",
        ".mp3",
        ".wav",
        ".flac",
        ".ogg",
        ".mp4",
        ".mkv",
        ".mov",
        ".avi",
        ".webm",
        ".doc",
        ".xls",
        ".ppt",
        ".ods",
        ".odp",
        ".sqlite",
        ".db",
        ".parquet",
        ".npy",
        ".npz",
        ".pt",
        ".safetensors",
        ".gguf",
        ".onnx",
        ".ttf",
        ".otf",
        ".woff",
        ".woff2",
    }
)


def loader_for(path: PurePath) -> Loader | None:
    """The loader a file would get by its suffix (plain text for unknown ones), None if unsupported."""
    suffix = path.suffix.lower()
    if suffix in UNSUPPORTED_SUFFIXES:
        return None
    return LOADERS.get(suffix, FALLBACK)


def kind_for(path: PurePath) -> str | None:
    """The kind (``base.KINDS``: "pdf", "markdown", "sheet", …) by suffix; None for a suffix never indexed.

    Unknown suffixes give "text": whether the content really is text is decided by :func:`load`.
    """
    loader = loader_for(path)
    return loader.kind if loader is not None else None


def load(path: Path, options: LoadOptions | None = None) -> Document:
    """Parse ``path``; a file that yields nothing to index is a LoadError with the reason."""
    path = Path(path)
    loader = loader_for(path)
    if loader is None:
        raise LoadError(f"unsupported file type ({path.suffix.lower()})")
    doc = loader.load(path, options or LoadOptions()) if loader.takes_options else loader.load(path)
    if not doc.sections:
        details = "; ".join(doc.warnings[:3]) + ("; …" if len(doc.warnings) > 3 else "")
        raise LoadError("no indexable text" + (f": {details}" if details else ""))
    return doc


__all__ = [
    "LOADERS",
    "UNSUPPORTED_SUFFIXES",
    "Document",
    "LoadError",
    "LoadOptions",
    "Loader",
    "kind_for",
    "load",
    "loader_for",
]
