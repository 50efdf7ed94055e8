"""Writers of hostile files: inputs a knowledge base meets in the wild or that someone crafts to hurt it.

Each writer puts one thing into a directory (a file, a link, a FIFO, a folder) and returns its
name relative to that directory. ``write_hostile`` lays all of them out and says, for each, what
an ingest must make of it: ``Expect.reason`` is a fragment of the reason it is skipped with, or
None when it is fine and must be indexed. The big ones are cheap to make: the zip bomb is a
DEFLATE stream built from a repeating 13-byte pattern (never compressed from gigabytes), and the
200 MB file is mostly a hole.
"""

from __future__ import annotations

import io
import os
import random
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.corpus import (
    _RawPdf,
    write_binary_as_markdown,
    write_encrypted_pdf,
    write_pdf,
    write_truncated_pdf,
)

EXCEEDED = "parser exceeded limits"
XSS_MARKDOWN = """# Links and scripts

<script>alert("owned")</script>

Click [here](javascript:alert(document.cookie)) or <a href="javascript:void(0)" onclick="steal()">there</a>.

<img src=x onerror="alert(1)">
"""


ANY_REASON = ""  # skipped, for whatever reason the parser that gives up names
INDEXED_OR_SKIPPED = "*"  # either is right: which depends on how lenient the PDF parsers are


@dataclass(frozen=True)
class Expect:
    reason: str | None  # a fragment of the skip reason (or one of the two above); None: indexed
    note: str  # what the file is


# ----------------------------------------------------------------------------------------------
# DEFLATE by hand: one literal, then matches of length 258 at distance 1 (fixed Huffman codes)

_LITERAL_BASE = 0x30  # fixed code of literal 0..143 is 0x30 + value, 8 bits
_LENGTH_258 = (0b11000101, 8)  # symbol 285
_DISTANCE_1 = (0b00000, 5)  # distance code 0
_END_OF_BLOCK = (0b0000000, 7)  # symbol 256
_MATCH_BITS = _LENGTH_258[1] + _DISTANCE_1[1]  # 13: eight matches fill 13 bytes exactly
_ADLER_MOD = 65521


def _code_bits(code: int, width: int) -> list[int]:
    """Huffman codes go into the stream most significant bit first."""
    return [(code >> (width - 1 - i)) & 1 for i in range(width)]


def _pack(bits: list[int]) -> bytes:
    out = bytearray((len(bits) + 7) // 8)
    for i, b in enumerate(bits):
        out[i // 8] |= b << (i % 8)
    return bytes(out)


def deflate_run(byte: int, matches: int) -> tuple[bytes, int]:
    """(raw DEFLATE, inflated size) of ``1 + 258 * matches`` copies of ``byte`` (< 144), in about
    ``13 * matches / 8`` bytes made in no time: the bits of the matches repeat every 13 bytes."""
    assert 0 <= byte < 144 and matches % 8 == 0 and matches >= 16
    head = [1, 1, 0] + _code_bits(_LITERAL_BASE + byte, 8)  # BFINAL, BTYPE=01 (fixed), the literal
    unit = _code_bits(*_LENGTH_258) + _code_bits(*_DISTANCE_1)
    # the bits up to the first byte boundary after 8 matches, then whole 13-byte periods
    first = _pack(head + unit * 8)[: (len(head) + 8 * _MATCH_BITS) // 8]
    used_bits = len(first) * 8 - len(head)  # bits of the matches already in `first`
    period = _pack((unit * 16)[used_bits : used_bits + 8 * 13])
    periods = (matches * _MATCH_BITS - used_bits) // (8 * 13) - 1
    done_bits = used_bits + periods * 8 * 13
    tail_bits = (unit * matches)[done_bits:] + _code_bits(*_END_OF_BLOCK)
    return first + period * periods + _pack(tail_bits), 1 + 258 * matches


def zlib_run(byte: int, matches: int) -> tuple[bytes, int]:
    """The same as a zlib stream (what a PDF's FlateDecode holds), with its Adler-32 computed in closed form."""
    raw, n = deflate_run(byte, matches)
    a = (1 + n * byte) % _ADLER_MOD
    b = (n + byte * (n * (n + 1) // 2)) % _ADLER_MOD
    return b"\x78\x01" + raw + ((b << 16) | a).to_bytes(4, "big"), n


# ----------------------------------------------------------------------------------------------
# PDFs


def _page_tree_pdf(contents: bytes, content_dict: bytes = b"") -> _RawPdf:
    pdf = _RawPdf()
    catalog = pdf.add(b"")
    pages = pdf.add(b"")
    font = pdf.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    stream = pdf.add(
        b"<< /Length %d %s >>\nstream\n" % (len(contents), content_dict) + contents + b"\nendstream"
    )
    page = pdf.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
        b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (pages, stream, font)
    )
    pdf.set(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % pages)
    pdf.set(pages, b"<< /Type /Pages /Kids [%d 0 R] /Count 1 >>" % page)
    return pdf


def write_zip_bomb_pdf(directory: Path, name: str = "zipbomb.pdf", gigabytes: int = 4) -> str:
    """One page whose content stream inflates to ``gigabytes`` GB of spaces (FlateDecode twice:
    the file is a few kB)."""
    matches = (gigabytes << 30) // 258 // 8 * 8
    inner, _size = zlib_run(ord(" "), matches)
    outer = zlib.compress(inner, 9)
    pdf = _page_tree_pdf(outer, b"/Filter [/FlateDecode /FlateDecode]")
    (Path(directory) / name).write_bytes(pdf.render(1))
    return name


def write_deep_page_tree_pdf(directory: Path, name: str = "deep_pages.pdf", depth: int = 100_000) -> str:
    """A page tree ``depth`` levels deep: Pages → Pages → … → one Page."""
    pdf = _RawPdf()
    catalog = pdf.add(b"")
    first = len(pdf.objects) + 1
    for level in range(depth):
        number = first + level
        parent = b" /Parent %d 0 R" % (number - 1) if level else b""
        pdf.add(b"<< /Type /Pages /Kids [%d 0 R] /Count 1%s >>" % (number + 1, parent))
    stream = pdf.stream(b"BT /F1 12 Tf 72 720 Td (deep) Tj ET")
    pdf.add(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R >>"
        % (first + depth - 1, stream)
    )
    pdf.set(catalog, b"<< /Type /Catalog /Pages %d 0 R >>" % first)
    (Path(directory) / name).write_bytes(pdf.render(catalog))
    return name


def write_xref_loop_pdf(directory: Path, name: str = "xref_loop.pdf") -> str:
    """Two cross-reference sections whose /Prev name each other, and a page tree whose Kids holds
    itself: every naive walk of either goes round forever."""
    pdf = _page_tree_pdf(b"BT /F1 12 Tf 72 720 Td (loop) Tj ET")
    pages, page = 2, 5
    pdf.set(pages, b"<< /Type /Pages /Kids [%d 0 R %d 0 R] /Count 2 >>" % (page, pages))
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(pdf.objects, 1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    first = out.tell()
    table = b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    table += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    size = len(offsets) + 1
    second = first + len(table)
    for _ in range(3):  # the first trailer's length depends on the digits of the second's offset
        trailer = b"trailer\n<< /Size %d /Root 1 0 R /Prev %d >>\n" % (size, second)
        second = first + len(table) + len(trailer)
    out.write(table + trailer)
    assert out.tell() == second
    out.write(
        b"xref\n0 1\n0000000000 65535 f \ntrailer\n<< /Size %d /Root 1 0 R /Prev %d >>\n" % (size, first)
    )
    out.write(b"startxref\n%d\n%%%%EOF\n" % second)
    (Path(directory) / name).write_bytes(out.getvalue())
    return name


def write_password_pdf(directory: Path) -> str:
    return write_encrypted_pdf(directory, "password.pdf").name


def write_cut_pdf(directory: Path) -> str:
    return write_truncated_pdf(directory, "truncated.pdf").name


def write_empty_pdf(directory: Path, name: str = "empty.pdf") -> str:
    (Path(directory) / name).write_bytes(b"")
    return name


# ----------------------------------------------------------------------------------------------
# text files


def write_huge_line(directory: Path, name: str = "huge_line.txt", megabytes: int = 200) -> str:
    """``megabytes`` MB in one line: a little text, then a hole (sparse, made instantly)."""
    path = Path(directory) / name
    with path.open("wb") as f:
        f.write(b"one endless line " * 4096)
        f.truncate(megabytes << 20)
    return name


def write_invalid_utf8_source(directory: Path, name: str = "broken_utf8.py") -> str:
    """Python whose bytes are UTF-8 except for a few stray Latin-1 and invalid sequences."""
    data = (
        b"def greet(name):\n    return 'hello ' + name  # caf\xe9 \xff\xfe\n\n"
        b"def part(x):\n    return x[1:]  # \xc3\x28 broken pair\n"
    )
    (Path(directory) / name).write_bytes(data)
    return name


def write_nul_text(directory: Path, name: str = "nul.txt") -> str:
    (Path(directory) / name).write_bytes(b"text\x00with\x00nuls\x00" * 2000)
    return name


def write_zero_bytes(directory: Path, name: str) -> str:
    (Path(directory) / name).write_bytes(b"")
    return name


def write_xss_markdown(directory: Path, name: str = "xss.md") -> str:
    (Path(directory) / name).write_text(XSS_MARKDOWN, encoding="utf-8")
    return name


def write_deep_list_markdown(directory: Path, name: str = "deep_list.md", depth: int = 100_000) -> str:
    """A list nested ``depth`` levels deep (each item opens the next: ``- - - … item``), then a
    quote as deep, after a normal heading and paragraph."""
    text = (
        "# Deep\n\nA list that never ends follows.\n\n"
        + "- " * depth
        + "bottom\n\n"
        + "> " * depth
        + "quoted\n"
    )
    (Path(directory) / name).write_text(text, encoding="utf-8")
    return name


def write_yaml_bomb_markdown(directory: Path, name: str = "yaml_bomb.md") -> str:
    """Front matter whose aliases expand to 10^9 strings (the "billion laughs")."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level, letter in enumerate("bcdefghi"):
        prev = "abcdefghi"[level]
        lines.append(f"{letter}: &{letter} [" + ",".join(f"*{prev}" for _ in range(10)) + "]")
    text = "---\n" + "\n".join(lines) + "\n---\n\n# Laughs\n\nA body after the front matter.\n"
    (Path(directory) / name).write_text(text, encoding="utf-8")
    return name


def write_gzip_as_text(directory: Path, name: str = "log.txt") -> str:
    (Path(directory) / name).write_bytes(zlib.compress(b"not really text " * 1000))
    return name


def write_bad_name(directory: Path) -> str:
    """A file whose name is not valid UTF-8 (bytes a Latin-1 system wrote); returned as reports
    print it, the bad byte escaped."""
    with open(os.fsencode(str(directory)) + b"/caf\xe9.txt", "wb") as f:
        f.write(b"a file with a Latin-1 name\n")
    return "caf\\xe9.txt"


# ----------------------------------------------------------------------------------------------
# things that are not files


def write_symlink_loop(directory: Path) -> str:
    """``loop_a.md`` → ``loop_b.md`` → ``loop_a.md``, and a folder link to its own parent."""
    d = Path(directory)
    (d / "loop_a.md").symlink_to("loop_b.md")
    (d / "loop_b.md").symlink_to("loop_a.md")
    (d / "sub").mkdir(exist_ok=True)
    (d / "sub" / "up").symlink_to("..", target_is_directory=True)
    return "loop_a.md"


def write_fifo(directory: Path, name: str = "pipe.txt") -> str:
    os.mkfifo(Path(directory) / name)
    return name


def write_device_link(directory: Path, name: str = "zero.txt") -> str:
    """A link to /dev/zero: reading it never ends."""
    (Path(directory) / name).symlink_to("/dev/zero")
    return name


def write_folder_named_like_a_file(directory: Path, name: str = "x.pdf") -> str:
    """A folder called ``x.pdf`` with a real note inside (it is a folder: its content is indexed)."""
    (Path(directory) / name).mkdir()
    (Path(directory) / name / "inside.md").write_text("# Inside\n\nA note in a folder named x.pdf.\n")
    return f"{name}/inside.md"


# ----------------------------------------------------------------------------------------------


def write_hostile(directory: Path) -> dict[str, Expect]:
    """Every hostile thing above in ``directory``, by relative path, with what an ingest must do."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    binary = write_binary_as_markdown(d, "photo.md").name
    found = {
        write_password_pdf(d): Expect("encrypted (user password)", "PDF with a user password"),
        write_cut_pdf(d): Expect("truncated or damaged PDF", "PDF cut at 60 %"),
        write_xref_loop_pdf(d): Expect(INDEXED_OR_SKIPPED, "PDF whose xref sections and page tree loop"),
        write_deep_page_tree_pdf(d): Expect(INDEXED_OR_SKIPPED, "PDF page tree 100,000 levels deep"),
        write_zip_bomb_pdf(d): Expect(ANY_REASON, "content stream inflating to 4 GB (FlateDecode twice)"),
        write_empty_pdf(d): Expect("empty file", "zero-byte .pdf"),
        write_zero_bytes(d, "empty.md"): Expect("empty file", "zero-byte .md"),
        write_zero_bytes(d, "empty.txt"): Expect("empty file", "zero-byte .txt"),
        binary: Expect("binary file", "PNG bytes named .md"),
        write_huge_line(d): Expect("larger than", "200 MB in a single line"),
        write_invalid_utf8_source(d): Expect(None, "Python with invalid UTF-8 bytes"),
        write_symlink_loop(d): Expect("symbolic link", "symlink loop"),
        "loop_b.md": Expect("symbolic link", "symlink loop (other end)"),
        write_xss_markdown(d): Expect(None, "Markdown with <script> and javascript: links"),
        write_deep_list_markdown(d): Expect(None, "list and quote nested 100,000 deep"),
        write_yaml_bomb_markdown(d): Expect(None, "billion-laughs YAML front matter"),
        write_nul_text(d): Expect("binary file", "text full of NUL bytes"),
        write_gzip_as_text(d): Expect("binary file", "zlib data named .txt"),
        write_bad_name(d): Expect("not valid UTF-8", "file name that is not UTF-8"),
        write_fifo(d): Expect("not a regular file", "FIFO"),
        write_device_link(d): Expect("not a regular file", "link to /dev/zero"),
        write_folder_named_like_a_file(d): Expect(None, "folder named x.pdf"),
        **write_hostile_documents(d),
    }
    return found


def write_good(directory: Path) -> list[str]:
    """Ordinary files that must go in whatever lies beside them."""
    d = Path(directory)
    (d / "good").mkdir(parents=True, exist_ok=True)
    write_pdf(d / "good", "report.pdf")
    (d / "good" / "notes.md").write_text("# Notes\n\nThe kingfisher canary is here.\n", encoding="utf-8")
    (d / "good" / "plain.txt").write_text("Plain text about otters.\n", encoding="utf-8")
    return ["good/report.pdf", "good/notes.md", "good/plain.txt"]


# ----------------------------------------------------------------------------------------------
# ZIP documents (DOCX, PPTX, XLSX, EPUB): written member by member, so a member may lie or explode

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + "".join(
        f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n' for i in range(1, 10)
    )
    + "]>\n"
)
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _raw_deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def write_zip(path: Path, members: list[tuple[str, bytes | tuple[bytes, int, int]]], flags: int = 0) -> None:
    """A ZIP of ``members``: (name, content) deflated here, or (name, (raw deflate, declared size,
    CRC-32)) written as given, sizes and checksum unchecked."""
    out = io.BytesIO()
    central = io.BytesIO()
    for name, content in members:
        raw, size, crc = (
            content
            if isinstance(content, tuple)
            else (_raw_deflate(content), len(content), zlib.crc32(content))
        )
        offset = out.tell()
        fields = (20, flags, 8, 0, 0, crc, len(raw), size, len(name.encode()), 0)
        out.write(b"PK\x03\x04" + b"".join(_le(v, w) for v, w in zip(fields, (2, 2, 2, 2, 2, 4, 4, 4, 2, 2))))
        out.write(name.encode() + raw)
        central.write(
            b"PK\x01\x02"
            + b"".join(
                _le(v, w)
                for v, w in zip(
                    (20, 20, flags, 8, 0, 0, crc, len(raw), size, len(name.encode()), 0, 0, 0, 0, 0, offset),
                    (2, 2, 2, 2, 2, 2, 4, 4, 4, 2, 2, 2, 2, 2, 4, 4),
                )
            )
            + name.encode()
        )
    start, listing = out.tell(), central.getvalue()
    out.write(listing)
    count = len(members)
    out.write(
        b"PK\x05\x06"
        + b"".join(
            _le(v, w) for v, w in zip((0, 0, count, count, len(listing), start, 0), (2, 2, 2, 2, 4, 4, 2))
        )
    )
    path.write_bytes(out.getvalue())


def _le(value: int, width: int) -> bytes:
    return value.to_bytes(width, "little")


def _members_of(made: Path) -> list[tuple[str, bytes | tuple[bytes, int, int]]]:
    import zipfile

    with zipfile.ZipFile(made) as archive:
        return [(m.filename, archive.read(m)) for m in archive.infolist()]


def _good_docx(directory: Path) -> Path:
    import docx

    path = Path(directory) / ".template.docx"
    document = docx.Document()
    document.add_paragraph("An ordinary paragraph.")
    document.save(path)
    return path


def _replace_member(directory: Path, name: str, member: str, content, base: Path | None = None) -> str:
    template = base or _good_docx(directory)
    members = [(n, content if n == member else c) for n, c in _members_of(template)]
    if member not in dict(members):
        members.append((member, content))
    write_zip(Path(directory) / name, members)
    template.unlink()
    return name


def write_zip_bomb_docx(directory: Path, name: str = "zipbomb.docx", gigabytes: int = 3) -> str:
    """A real DOCX plus a member declared (truthfully) to inflate to ``gigabytes`` GB."""
    matches = (gigabytes << 30) // 258 // 8 * 8
    raw, size = deflate_run(ord(" "), matches)
    return _replace_member(directory, name, "word/media/bomb.xml", (raw, size, 0))


def write_lying_zip_bomb_xlsx(directory: Path, name: str = "lying_bomb.xlsx") -> str:
    """A workbook whose sheet inflates to 2 GB while its headers declare 1 MB: whoever believes the
    header reads at most 1 MB, whoever does not is stopped by the memory cap."""
    import openpyxl

    template = Path(directory) / ".template.xlsx"
    book = openpyxl.Workbook()
    book.active["A1"] = "cell"
    book.save(template)
    raw, _size = deflate_run(ord(" "), (2 << 30) // 258 // 8 * 8)
    return _replace_member(directory, name, "xl/worksheets/sheet1.xml", (raw, 1 << 20, 0), base=template)


def write_entity_bomb_docx(directory: Path, name: str = "laughs.docx") -> str:
    """``word/document.xml`` opening with the billion laughs (entities expanding to 10^9 "lol")."""
    template = _good_docx(directory)
    body = dict(_members_of(template))["word/document.xml"]
    xml = body.decode().split("?>", 1)[1]
    patched = BILLION_LAUGHS + xml.replace("An ordinary paragraph.", "&lol9;")
    return _replace_member(directory, name, "word/document.xml", patched.encode(), base=template)


def write_external_entity_xlsx(directory: Path, name: str = "xxe.xlsx") -> str:
    """A shared-strings part whose entity reads /etc/passwd (XXE)."""
    import openpyxl

    template = Path(directory) / ".template.xlsx"
    book = openpyxl.Workbook()
    book.active["A1"] = "cell"
    book.save(template)
    xxe = (
        '<?xml version="1.0"?>\n<!DOCTYPE sst [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1">'
        "<si><t>&xxe;</t></si></sst>"
    )
    return _replace_member(directory, name, "xl/sharedStrings.xml", xxe.encode(), base=template)


def write_entity_bomb_epub(directory: Path, name: str = "laughs.epub") -> str:
    """An EPUB whose package document (content.opf) opens with the billion laughs."""
    from ebooklib import epub

    template = Path(directory) / ".template.epub"
    book = epub.EpubBook()
    book.set_identifier("bomb")
    book.set_title("Bomb")
    chapter = epub.EpubHtml(title="One", file_name="one.xhtml")
    chapter.content = "<h1>One</h1><p>text</p>"
    book.add_item(chapter)
    book.spine = [chapter]
    epub.write_epub(str(template), book)
    opf = dict(_members_of(template))["EPUB/content.opf"].decode()
    patched = BILLION_LAUGHS + opf.split("?>", 1)[1].replace("<dc:title>Bomb", "<dc:title>&lol9;")
    return _replace_member(directory, name, "EPUB/content.opf", patched.encode(), base=template)


def _good_odt(directory: Path) -> Path:
    from odfdo import Document, Paragraph

    path = Path(directory) / ".template.odt"
    document = Document("text")
    document.body.append(Paragraph("An ordinary paragraph."))
    document.save(path)
    return path


def write_entity_bomb_odt(directory: Path, name: str = "laughs.odt") -> str:
    """An OpenDocument text whose ``content.xml`` opens with the billion laughs."""
    template = _good_odt(directory)
    content = dict(_members_of(template))["content.xml"].decode()
    patched = BILLION_LAUGHS + content.split("?>", 1)[1].replace("An ordinary paragraph.", "&lol9;")
    return _replace_member(directory, name, "content.xml", patched.encode(), base=template)


ODF_ENCRYPTION_DATA = (
    '<manifest:encryption-data manifest:checksum-type="SHA1/1K" manifest:checksum="AAAA">'
    '<manifest:algorithm manifest:algorithm-name="Blowfish CFB" manifest:initialisation-vector="AAAA"/>'
    '<manifest:key-derivation manifest:key-derivation-name="PBKDF2" manifest:iteration-count="1024"'
    ' manifest:salt="AAAA"/></manifest:encryption-data>'
)


def write_encrypted_odt(directory: Path, name: str = "locked.odt") -> str:
    """What LibreOffice writes for a password-protected .odt: a plain ZIP whose content.xml is
    ciphertext (random bytes here) and whose manifest gives that member's encryption data."""
    template = _good_odt(directory)
    members = dict(_members_of(template))
    template.unlink()
    manifest, found = re.subn(
        r'(<manifest:file-entry manifest:full-path="content\.xml"[^>]*?)\s*/>',
        rf' \1 manifest:size="1234">{ODF_ENCRYPTION_DATA}</manifest:file-entry>',
        members["META-INF/manifest.xml"].decode(),
    )
    assert found == 1
    members["META-INF/manifest.xml"] = manifest.encode()
    members["content.xml"] = random.Random(17).randbytes(2048)
    write_zip(Path(directory) / name, list(members.items()))
    return name


def write_deep_docx(directory: Path, name: str = "deep.docx", depth: int = 100_000) -> str:
    """A document body nested ``depth`` elements deep (a table in a cell in a table …, abbreviated)."""
    template = _good_docx(directory)
    body = dict(_members_of(template))["word/document.xml"].decode()
    nested = "<w:sdt><w:sdtContent>" * depth + "</w:sdtContent></w:sdt>" * depth
    patched = body.replace("<w:body>", "<w:body>" + nested, 1)
    return _replace_member(directory, name, "word/document.xml", patched.encode(), base=template)


def write_million_row_xlsx(directory: Path, name: str = "million_rows.xlsx", rows: int = 1_000_000) -> str:
    """A workbook with a header, one data row and ``rows`` empty but styled rows after them."""
    import openpyxl

    template = Path(directory) / ".template.xlsx"
    book = openpyxl.Workbook()
    book.active.append(["name", "value"])
    book.active.append(["million", 1])
    book.save(template)
    sheet = dict(_members_of(template))["xl/worksheets/sheet1.xml"].decode()
    empty = "".join(f'<row r="{r}"><c r="A{r}" s="0"/></row>' for r in range(3, rows + 3))
    patched = sheet.replace("</sheetData>", empty + "</sheetData>", 1)
    return _replace_member(directory, name, "xl/worksheets/sheet1.xml", patched.encode(), base=template)


def write_ole_as(directory: Path, name: str) -> str:
    """What Office writes for a password-protected document: an OLE compound file (its header here)."""
    (Path(directory) / name).write_bytes(OLE_MAGIC + bytes(504) + b"EncryptionInfo".ljust(512, b"\0"))
    return name


def write_encrypted_member_pptx(directory: Path, name: str = "zipcrypto.pptx") -> str:
    """A deck whose ZIP members carry the "encrypted" flag (ZIP's own password protection)."""
    from pptx import Presentation

    template = Path(directory) / ".template.pptx"
    Presentation().save(template)
    members = _members_of(template)
    write_zip(Path(directory) / name, members, flags=0x1)
    template.unlink()
    return name


def write_text_as(directory: Path, name: str) -> str:
    (Path(directory) / name).write_text("just some text, not a ZIP at all\n", encoding="utf-8")
    return name


def write_bad_notebook(directory: Path, name: str = "broken.ipynb") -> str:
    (Path(directory) / name).write_text('{"cells": [ {"cell_type": "code", ', encoding="utf-8")
    return name


def write_png_bomb(directory: Path, name: str = "huge.png") -> str:
    """A PNG whose header claims 100,000 x 100,000 pixels (40 GB decoded); the rest is one tiny chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return len(data).to_bytes(4, "big") + kind + data + zlib.crc32(kind + data).to_bytes(4, "big")

    header = (100_000).to_bytes(4, "big") * 2 + bytes([8, 2, 0, 0, 0])
    png = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )
    (Path(directory) / name).write_bytes(png)
    return name


def write_hostile_documents(directory: Path) -> dict[str, Expect]:
    """The ZIP-document, notebook and image cases, by name, with what an ingest must make of them."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    return {
        write_zip_bomb_docx(d): Expect("zip bomb", "DOCX with a member inflating to 3 GB"),
        write_lying_zip_bomb_xlsx(d): Expect(ANY_REASON, "XLSX whose sheet inflates to 2 GB, declared 1 MB"),
        write_entity_bomb_docx(d): Expect("XML entity declarations", "DOCX with the billion laughs"),
        write_external_entity_xlsx(d): Expect(
            "XML entity declarations", "XLSX with an external entity (XXE)"
        ),
        write_entity_bomb_epub(d): Expect("XML entity declarations", "EPUB whose OPF has the billion laughs"),
        write_deep_docx(d): Expect(ANY_REASON, "DOCX body nested 100,000 elements deep"),
        write_million_row_xlsx(d): Expect(None, "XLSX with a million empty styled rows"),
        write_ole_as(d, "locked.docx"): Expect("password-protected", "password-protected DOCX"),
        write_entity_bomb_odt(d): Expect(
            "XML entity declarations", "ODT whose content.xml has the billion laughs"
        ),
        write_encrypted_odt(d): Expect("password-protected OpenDocument", "password-protected ODT"),
        write_ole_as(d, "locked.xlsx"): Expect("password-protected", "password-protected XLSX"),
        write_encrypted_member_pptx(d): Expect("encrypted ZIP member", "PPTX with ZIP-encrypted members"),
        write_text_as(d, "fake.pptx"): Expect("not a ZIP-based document", "text named .pptx"),
        write_text_as(d, "fake.epub"): Expect("not a ZIP-based document", "text named .epub"),
        write_bad_notebook(d): Expect("not a Jupyter notebook", "notebook cut mid-JSON"),
        write_png_bomb(d): Expect("image too large", "PNG claiming 100,000 x 100,000 pixels"),
    }
