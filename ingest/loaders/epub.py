"""E-books (.epub) with ebooklib: chapters in spine order, each located as "chapter N".

N counts the spine's documents that hold text (a cover image page is not a chapter); the headings
inside a chapter give its heading path. Every block of a chapter is content, so no main-content
detection runs (see ``htmltext.all_blocks``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ingest.loaders.base import Document, LoadError
from ingest.loaders.htmltext import all_blocks, located_sections
from ingest.loaders.zipguard import check_zip

KIND = "epub"
READ_OPTIONS = {"ignore_ncx": True}  # the navigation file is not needed: chapters come from the spine


def load_epub(path: Path) -> Document:
    import ebooklib  # imported on first use: parse workers start with the registry only
    from ebooklib import epub

    check_zip(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # ebooklib's notices about its own future defaults
            book = epub.read_epub(str(path), options=READ_OPTIONS)
    except (epub.EpubException, KeyError, ValueError) as err:
        raise LoadError(f"not a readable EPUB: {err}") from err
    sections = []
    chapter = 0
    for idref, _linear in book.spine:
        item = book.get_item_with_id(idref)
        if item is None or item.get_type() != ebooklib.ITEM_DOCUMENT:
            continue
        text = all_blocks(item.get_content())
        if not text.strip():
            continue
        chapter += 1
        sections.extend(located_sections(text, locator={"chapter": chapter}))
    meta: dict[str, Any] = {"chapters": chapter}
    titles = book.get_metadata("DC", "title")
    if titles and titles[0][0]:
        meta["title"] = str(titles[0][0])
    return Document(kind=KIND, sections=sections, meta=meta)
