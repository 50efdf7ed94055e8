"""What parsing libraries say about a file lands in that file's report warnings, once per message with
its count, and never on the console."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from ingest.parsing.worker import library_notes, parse
from tests.helpers import corpus

ROOT = Path(__file__).resolve().parents[2]


def _shifted_pdf(directory: Path) -> Path:
    """A good PDF whose startxref points a few bytes off: pypdf recovers, and logs warnings."""
    data = corpus.write_pdf(directory).path.read_bytes()
    data = re.sub(rb"startxref\s+(\d+)", lambda m: b"startxref\n%d" % (int(m.group(1)) + 7), data)
    path = directory / "shifted.pdf"
    path.write_bytes(data)
    return path


def test_library_warnings_become_file_notes_not_console_output(tmp_path):
    path = _shifted_pdf(tmp_path)
    code = (
        "import sys; from ingest.parsing.worker import parse; from ingest.loaders import LoadOptions; "
        "doc = parse(sys.argv[1], LoadOptions(ocr='off')); print(len(doc.sections)); "
        "print('\\n'.join(doc.warnings))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert out.stderr == ""
    lines = out.stdout.splitlines()
    assert int(lines[0]) == 4  # every page with text still indexed
    notes = [line for line in lines[1:] if line.startswith("library: ")]
    assert notes and any("pypdf" in n and "startxref" in n for n in notes)
    assert len(notes) == len(set(notes))


def test_repeated_messages_are_counted_once(tmp_path):
    from collections import Counter

    seen = Counter({"pypdf: fontTools is required": 300, "pypdf: other": 1})
    assert library_notes(seen) == ["library: pypdf: fontTools is required (×300)", "library: pypdf: other"]
    many = Counter({f"m{i}": 1 for i in range(9)})
    assert library_notes(many)[-1] == "library: 4 more kinds of message" and len(library_notes(many)) == 6
    assert parse(str(tmp_path / "missing.md")).reason.startswith("cannot read")
