"""Checks a ZIP-based document (DOCX, PPTX, XLSX, EPUB, ODT) before a library opens it.

Refused, each with its reason: a password-protected Office file (an encrypted OOXML document is an
OLE compound file, not a ZIP; an encrypted OpenDocument file is a ZIP whose manifest gives its
members' encryption data), a file that is not a ZIP at all, encrypted ZIP members, archives
whose members unpack to more than ``MAX_UNPACKED_MB`` or compress better than ``MAX_RATIO`` (zip
bombs: the declared sizes are what ``zipfile`` reads at most, so they bound the real work), too many
members, and XML members that declare entities. Office and EPUB XML never needs them, and they are
what entity-expansion attacks ("billion laughs", external entities) are made of: every XML member's
prolog (where a document type declaration and its entities must stand) is read by defusedxml, with
entities forbidden, up to its root element.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import iterparse

from ingest.loaders.base import LoadError

MAX_UNPACKED_MB = 1024
MAX_RATIO = 200  # deflate reaches ~1000 only on degenerate data; real documents stay under 20
RATIO_FLOOR_MB = 8  # members smaller than this may compress as well as they like
MAX_MEMBERS = 20_000
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # compound file: encrypted OOXML, or legacy .doc/.xls
XML_SUFFIXES = (".xml", ".rels", ".opf", ".ncx", ".xhtml", ".htm", ".html")

ENCRYPTED_OFFICE = "password-protected or legacy Office file (an OLE compound file, not a ZIP)"
NOT_A_ZIP = "not a ZIP-based document (damaged or misnamed)"
ODF_MANIFEST = "META-INF/manifest.xml"
ODF_ENCRYPTION_DATA = "{urn:oasis:names:tc:opendocument:xmlns:manifest:1.0}encryption-data"
ENCRYPTED_ODF = "password-protected OpenDocument file (its manifest lists encrypted members)"


def check_zip(path: Path) -> None:
    """Raise LoadError with the reason when ``path`` is not a ZIP document safe to hand to a library."""
    try:
        with path.open("rb") as f:
            head = f.read(len(OLE_MAGIC))
    except OSError as err:
        raise LoadError(f"cannot read: {err.strerror or err}") from err
    if not head:
        raise LoadError("empty file")
    if head == OLE_MAGIC:
        raise LoadError(ENCRYPTED_OFFICE)
    try:
        with zipfile.ZipFile(path) as archive:
            _check_members(archive)
    except zipfile.BadZipFile as err:
        raise LoadError(f"{NOT_A_ZIP}: {err}") from err


def _check_members(archive: zipfile.ZipFile) -> None:
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise LoadError(f"zip bomb: {len(members)} members (more than {MAX_MEMBERS})")
    unpacked = sum(m.file_size for m in members)
    if unpacked > MAX_UNPACKED_MB << 20:
        raise LoadError(f"zip bomb: unpacks to {unpacked >> 20} MB (more than {MAX_UNPACKED_MB} MB)")
    for m in members:
        if m.flag_bits & 0x1:
            raise LoadError(f"encrypted ZIP member {m.filename!r} (password-protected)")
        if m.file_size > RATIO_FLOOR_MB << 20 and m.file_size > MAX_RATIO * max(1, m.compress_size):
            ratio = m.file_size // max(1, m.compress_size)
            raise LoadError(f"zip bomb: {m.filename!r} unpacks {ratio}:1 to {m.file_size >> 20} MB")
        if m.filename.lower().endswith(XML_SUFFIXES):
            _check_prolog(archive, m)
    if ODF_MANIFEST in archive.namelist():
        _check_odf_manifest(archive)


def _check_prolog(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> None:
    """Parse ``member`` with entities forbidden up to its root element (only the prolog declares them)."""
    try:
        with archive.open(member) as stream:
            for _event, _element in iterparse(stream, events=("start",)):
                return
    except DefusedXmlException as err:
        raise LoadError(
            f"XML entity declarations in {member.filename!r} (entity expansion attack?): {type(err).__name__}"
        ) from err
    except Exception:  # noqa: BLE001 - a malformed part is the format library's to report
        return


def _check_odf_manifest(archive: zipfile.ZipFile) -> None:
    """An OpenDocument file saved with a password keeps its members encrypted, each listed in the
    manifest with its encryption data (the ZIP itself is not encrypted)."""
    try:
        with archive.open(ODF_MANIFEST) as stream:
            for _event, element in iterparse(stream, events=("start",)):
                if element.tag == ODF_ENCRYPTION_DATA:
                    raise LoadError(ENCRYPTED_ODF)
    except LoadError:
        raise
    except Exception:  # noqa: BLE001 - a malformed manifest (its prolog checked above) is the library's
        return
