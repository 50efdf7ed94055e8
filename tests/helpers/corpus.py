"""Writers of real test files (PDF, Markdown, code, text, broken files) and the facts about them.

Each writer puts one file into a directory and returns its path with what a test can assert
exactly: which page holds which canary phrase, which lines a heading's section or a function
spans. ``write_corpus`` lays a small knowledge base out under one folder for pipeline and app tests.
Canary phrases are unusual word pairs, so a search for one has exactly one right answer.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass, field
from pathlib import Path

# ----------------------------------------------------------------------------------------------
# PDFs made with reportlab (real fonts, real text layers)

ENGLISH_PAGES = {
    1: (
        "alpha walrus",
        [
            "Vector search in a private knowledge base.",
            "Documents are split into chunks, embedded, and stored with their source.",
            "The canary phrase on this page is alpha walrus.",
        ],
    ),
    2: (
        "beta narwhal",
        [
            "Hybrid retrieval combines dense vectors with sparse keyword scores.",
            "Reranking reorders the best candidates with a cross-encoder.",
            "The canary phrase on this page is beta narwhal.",
        ],
    ),
    5: (
        "gamma okapi",
        [
            "Incremental ingest skips files whose content hash is unchanged.",
            "Removed files have their points deleted from the collection.",
            "The canary phrase on this page is gamma okapi.",
        ],
    ),
}
CHINESE_PAGE = 3
CHINESE_CANARY = "青龙白虎"
CHINESE_LINES = [
    "向量数据库把文本的嵌入存储为稠密向量。",
    "检索时计算查询与文档片段之间的相似度。",
    "本页的金丝雀短语是青龙白虎。",
]
NO_TEXT_PAGE = 4
PDF_TITLE = "kb test document"


@dataclass(frozen=True)
class PdfFacts:
    path: Path
    n_pages: int
    canaries: dict[str, int]  # phrase -> 1-based page
    no_text_pages: tuple[int, ...] = ()
    unreadable_pages: tuple[int, ...] = ()
    title: str | None = None


def _canvas(path: Path):
    from reportlab.pdfgen import canvas

    return canvas.Canvas(str(path), invariant=1)


def _cjk_font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont

    name = "STSong-Light"
    if name not in pdfmetrics.getRegisteredFontNames():
        pdfmetrics.registerFont(UnicodeCIDFont(name))
    return name


def _draw_lines(c, font: str, lines: list[str], size: int = 12) -> None:
    c.setFont(font, size)
    y = 760
    for line in lines:
        c.drawString(72, y, line)
        y -= size * 1.6


def write_pdf(directory: Path, name: str = "multipage.pdf") -> PdfFacts:
    """Five pages: English (1, 2, 5), Chinese in reportlab's built-in STSong-Light CID font (3),
    and a page with only a drawn rectangle and no text (4)."""
    path = Path(directory) / name
    c = _canvas(path)
    c.setTitle(PDF_TITLE)
    c.setAuthor("kb tests")
    cjk = _cjk_font()
    for number in range(1, 6):
        if number in ENGLISH_PAGES:
            _draw_lines(c, "Helvetica", ENGLISH_PAGES[number][1])
        elif number == CHINESE_PAGE:
            _draw_lines(c, cjk, CHINESE_LINES, size=14)
        else:
            c.setFillColorRGB(0.2, 0.4, 0.8)
            c.rect(100, 300, 300, 200, fill=1)
        c.showPage()
    c.save()
    canaries = {phrase: page for page, (phrase, _) in ENGLISH_PAGES.items()}
    canaries[CHINESE_CANARY] = CHINESE_PAGE
    return PdfFacts(path, 5, canaries, no_text_pages=(NO_TEXT_PAGE,), title=PDF_TITLE)


def write_scanned_pdf(directory: Path, name: str = "scanned.pdf", pages: int = 2) -> Path:
    """Pages with only drawn shapes and no text layer, like a scan without OCR."""
    path = Path(directory) / name
    c = _canvas(path)
    for number in range(pages):
        c.setFillColorRGB(0.1 * number, 0.3, 0.6)
        c.rect(80 + 10 * number, 200, 400, 300, fill=1)
        c.showPage()
    c.save()
    return path


def _encrypted_copy(source: Path, path: Path, user_password: str) -> Path:
    from pypdf import PdfWriter

    writer = PdfWriter(clone_from=source)
    writer.encrypt(user_password=user_password, owner_password="owner-secret", algorithm="AES-256")
    with path.open("wb") as f:
        writer.write(f)
    return path


def write_encrypted_pdf(directory: Path, name: str = "encrypted.pdf") -> Path:
    """AES-256 with a user password: cannot be opened without it."""
    directory = Path(directory)
    facts = write_pdf(directory, "_plain_for_encrypted.pdf")
    path = _encrypted_copy(facts.path, directory / name, user_password="user-secret")
    facts.path.unlink()
    return path


def write_owner_only_pdf(directory: Path, name: str = "owner_only.pdf") -> PdfFacts:
    """AES-256 with only an owner password (permissions): opens with the empty password."""
    directory = Path(directory)
    facts = write_pdf(directory, "_plain_for_owner.pdf")
    path = _encrypted_copy(facts.path, directory / name, user_password="")
    facts.path.unlink()
    return PdfFacts(path, facts.n_pages, facts.canaries, facts.no_text_pages, title=facts.title)


def write_truncated_pdf(directory: Path, name: str = "truncated.pdf", keep: float = 0.6) -> Path:
    """A real PDF cut after ``keep`` of its bytes (a download that stopped)."""
    directory = Path(directory)
    facts = write_pdf(directory, "_plain_for_truncated.pdf")
    data = facts.path.read_bytes()
    facts.path.unlink()
    path = directory / name
    path.write_bytes(data[: int(len(data) * keep)])
    return path


# ----------------------------------------------------------------------------------------------
# PDFs written by hand: fonts without a ToUnicode map, the way CJK documents break pypdf

MOJIBAKE_CANARY = "delta lemur"
MOJIBAKE_SOURCE = (
    "向量数据库是一种专门用于存储和检索高维向量的数据库系统。在检索增强生成的应用中，文档首先被切分成"
    "较小的片段，然后通过嵌入模型转换为稠密向量，并与原始文本和元数据一起保存。用户提出问题时，系统先"
    "把问题编码成同一空间中的向量，再根据余弦相似度找出最接近的若干片段。"
)


class _RawPdf:
    """Just enough of a PDF writer to emit fonts that reportlab never would."""

    def __init__(self) -> None:
        self.objects: list[bytes] = []

    def add(self, body: bytes) -> int:
        self.objects.append(body)
        return len(self.objects)

    def set(self, number: int, body: bytes) -> None:
        self.objects[number - 1] = body

    def stream(self, data: bytes) -> int:
        return self.add(b"<< /Length %d >>\nstream\n" % len(data) + data + b"\nendstream")

    def render(self, root: int) -> bytes:
        out = io.BytesIO()
        out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
        offsets = []
        for number, body in enumerate(self.objects, 1):
            offsets.append(out.tell())
            out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
        xref = out.tell()
        out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(self.objects) + 1))
        for offset in offsets:
            out.write(b"%010d 00000 n \n" % offset)
        out.write(b"trailer\n<< /Size %d /Root %d 0 R >>\n" % (len(self.objects) + 1, root))
        out.write(b"startxref\n%d\n%%%%EOF\n" % xref)
        return out.getvalue()


def _literal(data: bytes) -> bytes:
    return b"(" + data.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)") + b")"


def _subset_glyph_ids(text: str, first: int = 1) -> list[int]:
    """Glyph ids as a subsetting PDF producer numbers them: in order of first use."""
    ids: dict[str, int] = {}
    return [ids.setdefault(ch, first + len(ids)) for ch in text]


def write_mojibake_pdf(directory: Path, name: str = "mojibake.pdf") -> PdfFacts:
    """Page 1: readable English (Helvetica). Pages 2-4: Chinese set in fonts without ToUnicode:
    2 an Identity-H font with subset glyph ids, 3 GBK bytes in a WinAnsi TrueType font, 4 an
    Identity-H font with Adobe-GB1-range CIDs. pypdf extracts garbage from pages 2-4."""
    pdf = _RawPdf()
    pages_number = pdf.add(b"")
    helvetica = pdf.add(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>")
    descriptor = pdf.add(
        b"<< /Type /FontDescriptor /FontName /SimSun /Flags 4 /FontBBox [0 -120 1000 880] /ItalicAngle 0"
        b" /Ascent 880 /Descent -120 /CapHeight 700 /StemV 80 >>"
    )
    cid_font = pdf.add(
        b"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /SimSun /CIDSystemInfo << /Registry (Adobe)"
        b" /Ordering (Identity) /Supplement 0 >> /FontDescriptor %d 0 R /DW 1000 >>" % descriptor
    )
    identity = pdf.add(
        b"<< /Type /Font /Subtype /Type0 /BaseFont /SimSun /Encoding /Identity-H /DescendantFonts [%d 0 R] >>"
        % cid_font
    )
    gbk_font = pdf.add(b"<< /Type /Font /Subtype /TrueType /BaseFont /SimSun /Encoding /WinAnsiEncoding >>")

    def hex_glyphs(ids: list[int]) -> bytes:
        return b"<" + "".join(f"{i:04X}" for i in ids).encode() + b">"

    rng = random.Random(20240501)
    half = len(MOJIBAKE_SOURCE) // 2
    subset_ids = _subset_glyph_ids(MOJIBAKE_SOURCE)
    contents = [
        (
            helvetica,
            [
                _literal(b"Fonts without a ToUnicode map break text extraction."),
                _literal(b"The canary is delta lemur."),
            ],
        ),
        # the whole passage as subset glyph ids, in lines of 40 glyphs
        (identity, [hex_glyphs(subset_ids[i : i + 40]) for i in range(0, len(subset_ids), 40)]),
        (
            gbk_font,
            [_literal(MOJIBAKE_SOURCE[:half].encode("gbk")), _literal(MOJIBAKE_SOURCE[half:].encode("gbk"))],
        ),
        (identity, [hex_glyphs([rng.randint(1000, 8000) for _ in range(60)])]),
    ]

    kids = []
    for font, lines in contents:
        ops = [b"BT /F1 12 Tf 16 TL 72 760 Td"]
        ops += [line + b" Tj T*" for line in lines]
        ops.append(b"ET")
        content = pdf.stream(b"\n".join(ops))
        kids.append(
            pdf.add(
                b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Resources << /Font << /F1 %d 0 R >> >>"
                b" /Contents %d 0 R >>" % (pages_number, font, content)
            )
        )
    pdf.set(
        pages_number,
        b"<< /Type /Pages /Kids [" + b" ".join(b"%d 0 R" % k for k in kids) + b"] /Count %d >>" % len(kids),
    )
    root = pdf.add(b"<< /Type /Catalog /Pages %d 0 R >>" % pages_number)
    path = Path(directory) / name
    path.write_bytes(pdf.render(root))
    return PdfFacts(path, len(kids), {MOJIBAKE_CANARY: 1}, unreadable_pages=(2, 3, 4))


# ----------------------------------------------------------------------------------------------
# Markdown


@dataclass(frozen=True)
class MarkdownFacts:
    path: Path
    front_matter: dict
    # (heading_path, line_start, line_end) of every section, in order
    sections: list[tuple[tuple[str, ...], int, int]]
    canaries: dict[str, tuple[str, ...]]  # phrase -> heading path of the section holding it
    fence_lines: tuple[int, int]  # the code fence, opening to closing line
    text: str = ""


class _Lines:
    """Builds a file line by line, remembering line numbers by label."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.marks: dict[str, int] = {}

    def add(self, *lines: str, mark: str | None = None) -> int:
        if mark is not None:
            self.marks[mark] = len(self.lines) + 1
        self.lines.extend(lines)
        return len(self.lines)  # 1-based number of the last line added

    @property
    def last(self) -> int:
        return len(self.lines)

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def write_markdown(directory: Path, name: str = "guide.md") -> MarkdownFacts:
    """Front matter, a preamble, nested English and Chinese headings (ATX and setext), a fence
    holding a '#' line that is not a heading."""
    b = _Lines()
    b.add("---", "title: Knowledge Base Guide", "tags: [kb, search]", "date: 2024-05-01", "---")
    sections: list[tuple[tuple[str, ...], int, int]] = []

    def section(path: tuple[str, ...], *lines: str) -> None:
        start = b.last + 1
        end = b.add(*lines)
        sections.append((path, start, end))
        b.add("")

    section((), "The preamble before any heading mentions preamble puffin.")
    section(("Guide",), "# Guide", "", "An overview of the guide: guide gecko.")
    section(("Guide", "Install"), "## Install", "", "Install it with pip; the canary is install ibis.")
    gpu_start = b.last + 1
    b.add("### GPU", "", "GPU builds need CUDA: gpu gazelle.", "")
    fence_start = b.add("```bash")
    b.add("# this comment is not a heading", "pip install kb[gpu]  # builds llama.cpp with CUDA")
    fence_end = b.add("```")
    sections.append((("Guide", "Install", "GPU"), gpu_start, fence_end))
    b.add("")
    section(("Guide", "使用方法"), "## 使用方法", "", "中文段落：本节的金丝雀是熊猫竹子。")
    section(("Guide", "使用方法", "检索"), "### 检索", "", "检索时使用向量相似度。金丝雀是白鹭青松。")
    section(("Appendix",), "# Appendix", "", "Closing notes: appendix axolotl.")
    section(("Appendix", "FAQ"), "FAQ", "---", "", "Setext headings count too: faq falcon.")

    path = Path(directory) / name
    text = b.text()
    path.write_text(text, encoding="utf-8")
    canaries = {
        "preamble puffin": (),
        "guide gecko": ("Guide",),
        "install ibis": ("Guide", "Install"),
        "gpu gazelle": ("Guide", "Install", "GPU"),
        "熊猫竹子": ("Guide", "使用方法"),
        "白鹭青松": ("Guide", "使用方法", "检索"),
        "appendix axolotl": ("Appendix",),
        "faq falcon": ("Appendix", "FAQ"),
    }
    front = {"title": "Knowledge Base Guide", "tags": ["kb", "search"], "date": "2024-05-01"}
    return MarkdownFacts(path, front, sections, canaries, (fence_start, fence_end), text)


# ----------------------------------------------------------------------------------------------
# Source code

FUNCTION_WORDS = [
    "parse",
    "render",
    "index",
    "search",
    "rerank",
    "embed",
    "store",
    "delete",
    "merge",
    "split",
    "count",
    "hash",
]


@dataclass(frozen=True)
class CodeFacts:
    path: Path
    language: str
    functions: dict[str, tuple[int, int]]  # name -> (first line, last line), 1-based inclusive
    n_lines: int
    text: str = ""


def _python(b: _Lines, name: str, k: int) -> tuple[int, int]:
    start = b.add(f"def {name}(x):")
    b.add(f'    """Return the weighted sum for {name}."""', "    total = 0", "    for i in range(x):")
    b.add(f"        total += i * {k}")
    end = b.add("    return total")
    b.add("", "")
    return start, end


def _typescript(b: _Lines, name: str, k: int) -> tuple[int, int]:
    start = b.add(f"export function {name}(x: number): number {{")
    b.add("  let total = 0;", "  for (let i = 0; i < x; i++) {", f"    total += i * {k};", "  }")
    end = b.add("  return total;", "}")
    b.add("")
    return start, end


def _go(b: _Lines, name: str, k: int) -> tuple[int, int]:
    start = b.add(f"func {name}(x int) int {{")
    b.add("\ttotal := 0", "\tfor i := 0; i < x; i++ {", f"\t\ttotal += i * {k}", "\t}")
    end = b.add("\treturn total", "}")
    b.add("")
    return start, end


def _rust(b: _Lines, name: str, k: int) -> tuple[int, int]:
    start = b.add(f"pub fn {name}(x: u64) -> u64 {{")
    b.add("    let mut total = 0;", "    for i in 0..x {", f"        total += i * {k};", "    }")
    end = b.add("    total", "}")
    b.add("")
    return start, end


def _java(b: _Lines, name: str, k: int) -> tuple[int, int]:
    start = b.add(f"    public static int {name}(int x) {{")
    b.add("        int total = 0;", "        for (int i = 0; i < x; i++) {", f"            total += i * {k};")
    end = b.add("        }", "        return total;", "    }")
    b.add("")
    return start, end


_CODE = {
    # suffix: (language, header lines, function writer, footer lines, name style)
    ".py": ("python", ['"""Demo module for kb tests."""', "", "import math", "", ""], _python, [], "snake"),
    ".ts": ("ts", ["// Demo module for kb tests.", ""], _typescript, [], "camel"),
    ".go": ("go", ["// Package demo is a kb test fixture.", "package demo", ""], _go, [], "camel"),
    ".rs": ("rust", ["//! Demo crate for kb tests.", ""], _rust, [], "snake"),
    ".java": ("java", ["package demo;", "", "public class Demo {", ""], _java, ["}"], "camel"),
}


def _function_name(suffix: str, word: str, style: str) -> str:
    stem = suffix.lstrip(".")
    return f"{stem}_{word}_items" if style == "snake" else f"{stem}{word.capitalize()}Items"


def write_code(directory: Path, suffix: str, n_functions: int = len(FUNCTION_WORDS)) -> CodeFacts:
    """``demo<suffix>`` with ``n_functions`` known functions at known lines."""
    language, header, writer, footer, style = _CODE[suffix]
    b = _Lines()
    b.add(*header)
    functions = {}
    for k, word in enumerate(FUNCTION_WORDS[:n_functions], 1):
        name = _function_name(suffix, word, style)
        functions[name] = writer(b, name, k)
    if footer:
        b.add(*footer)
    while b.lines and not b.lines[-1]:
        b.lines.pop()
    path = Path(directory) / f"demo{suffix}"
    text = b.text()
    path.write_text(text, encoding="utf-8")
    return CodeFacts(path, language, functions, len(b.lines), text)


def write_code_files(directory: Path) -> dict[str, CodeFacts]:
    """One file per language: .py, .ts, .go, .rs, .java."""
    return {suffix: write_code(directory, suffix) for suffix in _CODE}


# ----------------------------------------------------------------------------------------------
# Text and broken files

LATIN1_TEXT = (
    "Voilà l'été: la crème brûlée du café près de la forêt, façon grand-mère.\n"
    "Où est passée la clé? À côté de l'hôtel, derrière la fenêtre très sale.\n"
    "Ça coûte cher, mais le pâté et les crêpes sont déjà prêts. Noël approche.\n"
) * 4


def write_latin1_text(directory: Path, name: str = "notes_latin1.txt") -> tuple[Path, str]:
    """French text encoded as ISO-8859-1 (not UTF-8); returns the path and the text it holds."""
    path = Path(directory) / name
    path.write_bytes(LATIN1_TEXT.encode("latin-1"))
    return path, LATIN1_TEXT


def write_text(directory: Path, name: str, text: str) -> Path:
    path = Path(directory) / name
    path.write_text(text, encoding="utf-8")
    return path


def write_binary_as_markdown(directory: Path, name: str = "image.md") -> Path:
    """PNG-like bytes (NULs included) under a .md name."""
    rng = random.Random(7)
    data = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(rng.randrange(256) for _ in range(4096))
    path = Path(directory) / name
    path.write_bytes(data)
    return path


def write_empty(directory: Path, name: str = "empty.txt") -> Path:
    path = Path(directory) / name
    path.write_bytes(b"")
    return path


# ----------------------------------------------------------------------------------------------
# A whole small knowledge base


@dataclass
class Corpus:
    root: Path
    pdf: PdfFacts
    markdown: MarkdownFacts
    code: dict[str, CodeFacts]
    latin1: tuple[Path, str]
    # relative path -> the reason fragment its LoadError carries
    bad: dict[str, str] = field(default_factory=dict)
    # relative path -> pages or parts reported in warnings
    warned: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def rel(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()


def write_corpus(root: Path, *, with_bad: bool = True) -> Corpus:
    """docs/ (Markdown, PDFs), src/ (code), notes/ (Latin-1 text) and, with ``with_bad``, bad/
    (encrypted, truncated, binary-as-Markdown and empty files)."""
    root = Path(root)
    dirs = {d: root / d for d in ("docs", "src", "notes", "bad")}
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    corpus = Corpus(
        root=root,
        pdf=write_pdf(dirs["docs"]),
        markdown=write_markdown(dirs["docs"]),
        code=write_code_files(dirs["src"]),
        latin1=write_latin1_text(dirs["notes"]),
    )
    corpus.warned[corpus.rel(corpus.pdf.path)] = corpus.pdf.no_text_pages
    if with_bad:
        corpus.bad = {
            corpus.rel(write_encrypted_pdf(dirs["bad"])): "encrypted",
            corpus.rel(write_truncated_pdf(dirs["bad"])): "truncated or damaged PDF",
            corpus.rel(write_binary_as_markdown(dirs["bad"])): "binary file",
            corpus.rel(write_empty(dirs["bad"])): "empty file",
        }
    else:
        dirs["bad"].rmdir()
    return corpus
