"""PowerPoint decks (.pptx) with python-pptx: one section per slide, its number as the locator.

A slide's text is its title, then the text of its other shapes in the deck's order (grouped shapes
included, tables as rows of " | "-joined cells), then its speaker notes after a line
``Speaker notes:`` so that a reader of the chunk knows which words were said rather than shown.
The slide title is the section's heading path. Slides without text are skipped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

from ingest.loaders.base import Document, LoadError
from ingest.loaders.zipguard import check_zip
from ingest.records import Section

KIND = "slides"
NOTES_MARK = "Speaker notes:"
CELL_SEPARATOR = " | "
MAX_GROUP_DEPTH = 32  # groups nested deeper than this are not read


def shape_texts(shapes: Iterable, depth: int = 0) -> Iterator[str]:
    from pptx.enum.shapes import MSO_SHAPE_TYPE

    for shape in shapes:
        if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
            if depth < MAX_GROUP_DEPTH:
                yield from shape_texts(shape.shapes, depth + 1)
        elif getattr(shape, "has_table", False) and shape.has_table:
            for row in shape.table.rows:
                cells = [" ".join(cell.text.split()) for cell in row.cells]
                if any(cells):
                    yield CELL_SEPARATOR.join(cells)
        elif getattr(shape, "has_text_frame", False) and shape.has_text_frame:
            text = shape.text_frame.text.strip()
            if text:
                yield text


def slide_text(slide) -> tuple[str, str]:
    """(title, text) of one slide, speaker notes marked at the end."""
    title_shape = slide.shapes.title
    title = " ".join(title_shape.text_frame.text.split()) if title_shape is not None else ""
    others = [s for s in slide.shapes if title_shape is None or s.shape_id != title_shape.shape_id]
    parts = ([title] if title else []) + list(shape_texts(others))
    if slide.has_notes_slide:
        notes = slide.notes_slide.notes_text_frame
        if notes is not None and notes.text.strip():
            parts += [NOTES_MARK, notes.text.strip()]
    return title, "\n".join(parts)


def load_slides(path: Path) -> Document:
    from pptx import Presentation  # imported on first use: parse workers start with the registry only

    check_zip(path)
    try:
        deck = Presentation(str(path))
    except (KeyError, ValueError) as err:
        raise LoadError(f"not a PowerPoint deck: {err}") from err
    sections = []
    for number, slide in enumerate(deck.slides, 1):
        title, text = slide_text(slide)
        if text.strip():
            sections.append(
                Section(text=text, heading_path=(title,) if title else (), locator={"slide": number})
            )
    meta = {"slides": len(deck.slides)}
    if deck.core_properties.title:
        meta["title"] = deck.core_properties.title
    return Document(kind=KIND, sections=sections, meta=meta)
