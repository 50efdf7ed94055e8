"""The local token: with team access off, the service still wants a secret that only its owner can read.

On first start `kb serve` writes a random token to ``DATA_DIR/service.token`` (mode 0600, refused if
another user owns it or it is readable by others); the CLI and the app read it from the same data
folder and send it as ``Authorization: Bearer``, so nothing changes for the owner, while another
account on the machine, which cannot read the file, gets 401. Browser links to ``/files`` carry a
read-only token derived from it (``?ft=``), as a login's file token does.

With team access on, the same kind of file (``FORWARD_KEY_FILE``) holds the key the app sends beside
the browser's address when it logs a user in: the login limiter believes an ``X-Forwarded-For`` only
with that key, so another local process cannot pretend to be a thousand addresses.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

TOKEN_FILE = "service.token"
FORWARD_KEY_FILE = "forward.key"  # what lets the app forward a browser's address
FORWARD_KEY_HEADER = "X-Kb-Forward-Key"  # the header that carries it
FILE_TOKEN_LABEL = b"kb files"


class TokenFileError(PermissionError):
    """The token file is someone else's or readable by others: it cannot be trusted to be secret."""


def token_path(data_dir: Path, name: str = TOKEN_FILE) -> Path:
    return Path(data_dir) / name


def _checked(fd: int, path: Path) -> None:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode) or st.st_uid != os.getuid():
        raise TokenFileError(f"{path} is not a file of this user's: remove it and start again")
    if st.st_mode & 0o077:
        raise TokenFileError(f"{path} is readable by others (mode {st.st_mode & 0o777:o}): remove it")


def ensure_token(data_dir: Path, name: str = TOKEN_FILE) -> str:
    """The service's token (or another secret: ``name``), made (0600, atomically, never over an
    existing file) on first start."""
    path = token_path(data_dir, name)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(32) + "\n")
            f.flush()
            os.fsync(f.fileno())
    token = read_token(data_dir, strict=True, name=name)
    assert token is not None
    return token


def read_token(data_dir: Path, strict: bool = False, name: str = TOKEN_FILE) -> str | None:
    """The token in ``data_dir`` if this user may read it (None otherwise; ``strict``: TokenFileError)."""
    path = token_path(data_dir, name)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        if strict:
            raise
        return None
    with os.fdopen(fd, encoding="ascii", errors="replace") as f:
        try:
            _checked(f.fileno(), path)
        except TokenFileError:
            if strict:
                raise
            return None
        token = f.read(256).strip()
    return token or None


def file_token(token: str) -> str:
    """The read-only token for file links, derived from the local token."""
    return hmac.new(token.encode(), FILE_TOKEN_LABEL, hashlib.sha256).hexdigest()[:43]


def same(given: str | None, token: str) -> bool:
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


__all__ = [
    "FORWARD_KEY_FILE",
    "FORWARD_KEY_HEADER",
    "TOKEN_FILE",
    "TokenFileError",
    "ensure_token",
    "file_token",
    "read_token",
    "same",
    "token_path",
]
