"""Images (.png, .jpg, .jpeg, .tif, .tiff, .webp): their text read by the OCR engine kb ships.

Each frame is a page (a multi-page TIFF gives pages 1..N), OCR'd in the helper process of
``ocr.shared_engine`` under ``LoadOptions.ocr_page_timeout_s``, at most ``ocr_max_pages`` of them.
Under ``KB_OCR=off`` an image has nothing to index and is skipped with that reason. Pillow only
reads the header here (frame count, size); an image past its decompression-bomb limit is refused.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ingest.loaders.base import Document, LoadError, LoadOptions
from ingest.loaders.ocr import OcrError, OcrUnavailable, shared_engine
from ingest.records import Section

KIND = "image"
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"})


def frame_count(path: Path) -> tuple[int, tuple[int, int]]:
    """(frames, (width, height)) of an image; LoadError when Pillow cannot read it or it is a bomb."""
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                size = image.size
                if size[0] * size[1] > (Image.MAX_IMAGE_PIXELS or 1 << 62):
                    raise LoadError(f"image too large ({size[0]}x{size[1]} pixels)")
                return getattr(image, "n_frames", 1), size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise LoadError(f"image too large (decompression bomb): {err}") from err
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise LoadError(f"not a readable image: {err}") from err


def load_image(path: Path, options: LoadOptions | None = None) -> Document:
    options = options or LoadOptions()
    frames, (width, height) = frame_count(path)
    if options.ocr == "off":
        raise LoadError("an image, and OCR is off")
    sections, warnings_ = [], []
    engine = shared_engine()
    for number in range(1, frames + 1):
        if number > options.ocr_max_pages:
            warnings_.append(f"pages {number}-{frames}: past the OCR page limit ({options.ocr_max_pages})")
            break
        try:
            text = engine.page_text(path, number, options.ocr_page_timeout_s)
        except OcrUnavailable as err:
            raise LoadError(str(err)) from err
        except OcrError as err:
            warnings_.append(f"page {number}: {err}")
            continue
        if text.strip():
            sections.append(Section(text=text, page=number if frames > 1 else None, meta={"ocr": True}))
        else:
            warnings_.append(f"page {number}: OCR found no text")
    meta = {"pages": frames, "width": width, "height": height}
    return Document(kind=KIND, sections=sections, meta=meta, warnings=warnings_)
