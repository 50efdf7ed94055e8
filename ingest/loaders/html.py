"""Web pages (.html, .htm, .xhtml): the main content, never the navigation, through trafilatura.

Headings give the heading path and links keep their text (see ``htmltext``); the page's ``<title>``
is kept as metadata. Pages are never split as code.
"""

from __future__ import annotations

from pathlib import Path

from ingest.loaders.base import Document, LoadError, read_text
from ingest.loaders.htmltext import located_sections, main_content

KIND = "html"
HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml"})


def page_title(html: str) -> str:
    import lxml.html

    try:
        title = lxml.html.fromstring(html).findtext(".//title")
    except Exception:  # noqa: BLE001 - a page lxml cannot parse has no title to offer
        return ""
    return " ".join((title or "").split())


def load_html(path: Path) -> Document:
    html, encoding = read_text(path)
    sections = located_sections(main_content(html))
    if not sections:
        raise LoadError("no text (a page without content)")
    meta = {"encoding": encoding}
    if title := page_title(html):
        meta["title"] = title
    return Document(kind=KIND, sections=sections, meta=meta)
