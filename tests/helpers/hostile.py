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
