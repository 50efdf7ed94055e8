"""PDF: one Section per page that has readable text, ``page`` = physical 1-based page number.

pypdf's own resource limits (its ``Configuration`` defaults) apply; what they refuse, like any
other pypdf failure on the whole file, becomes a LoadError with a reason. A page that fails alone
is reported in ``warnings`` and the rest of the file is still indexed; so are pages without a text
layer and pages whose text is unreadable (see ``textquality``).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from pypdf import PasswordType, PdfReader
from pypdf.errors import DependencyError, FileNotDecryptedError, LimitReachedError

from ..records import Section
from .base import Document, LoadError, read_bytes
from .textquality import unreadable_reason

KIND = "pdf"
NO_TEXT = "no text layer; OCR not supported"
# Only this much of a failing page's error message goes into its warning.
MAX_ERROR_CHARS = 200


def _why(err: BaseException) -> str:
    message = str(err).strip() or type(err).__name__
    return message[:MAX_ERROR_CHARS]


def _open(data: bytes) -> PdfReader:
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == PasswordType.NOT_DECRYPTED:
            raise LoadError("encrypted (user password)")
        len(reader.pages)  # resolves the page tree now, so that its damage is reported here
    except LoadError:
        raise
    except FileNotDecryptedError as err:
        raise LoadError("encrypted (user password)") from err
    except DependencyError as err:
        raise LoadError(f"encrypted with an algorithm pypdf cannot decrypt here: {_why(err)}") from err
    except LimitReachedError as err:
        raise LoadError(f"exceeds pypdf's safety limits: {_why(err)}") from err
    except Exception as err:  # pypdf raises many kinds on damaged files (PdfReadError, KeyError, …)
        hint = "" if b"%%EOF" in data[-2048:] else " (no %EOF marker)"
        raise LoadError(f"truncated or damaged PDF{hint}: {_why(err)}") from err
    return reader


def _clean(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip()


def _page_labels(reader: PdfReader) -> list[str]:
    try:
        return list(reader.page_labels)
    except Exception:  # noqa: BLE001 - labels are a nicety: a broken label tree must not cost the document
        return []


def _doc_meta(reader: PdfReader, n_pages: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"pages": n_pages}
    try:
        info = reader.metadata
        title, author = (info.title, info.author) if info is not None else (None, None)
    except Exception:  # noqa: BLE001 - so are title and author
        title = author = None
    if isinstance(title, str) and title.strip():
        meta["title"] = title.strip()
    if isinstance(author, str) and author.strip():
        meta["author"] = author.strip()
    return meta


def load_pdf(path: Path) -> Document:
    reader = _open(read_bytes(path))
    n_pages = len(reader.pages)
    labels = _page_labels(reader)
    sections: list[Section] = []
    warnings: list[str] = []
    for number in range(1, n_pages + 1):
        try:
            text = _clean(reader.pages[number - 1].extract_text())
        except Exception as err:  # noqa: BLE001 - one bad page (broken stream, limit) costs only itself
            warnings.append(f"page {number}: text extraction failed ({type(err).__name__}: {_why(err)})")
            continue
        if not text:
            warnings.append(f"page {number}: {NO_TEXT}")
            continue
        reason = unreadable_reason(text)
        if reason is not None:
            warnings.append(f"page {number}: unreadable text ({reason})")
            continue
        label = labels[number - 1] if len(labels) == n_pages else str(number)
        meta = {"page_label": label} if label != str(number) else {}
        sections.append(Section(text=text, page=number, meta=meta))
    return Document(kind=KIND, sections=sections, meta=_doc_meta(reader, n_pages), warnings=warnings)
