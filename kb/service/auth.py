"""Team access: local accounts with salted password hashes and roles, API tokens, login sessions.

The accounts file (``KB_ACCOUNTS_FILE``, default ``DATA_DIR/accounts.json``, mode 0600) is written by
``kb user …`` / ``kb token …`` on the machine and read by ``kb serve``, which sees edits without a
restart. It holds no secret in the clear: passwords as scrypt hashes with a random salt each, API
tokens as SHA-256 digests of their random secret (a token is shown once, when it is made).

Roles, each including the one before: ``reader`` (search, read documents and files, status, the
embeddings API), ``editor`` (upload, delete, ingest a folder under ``KB_INGEST_ROOTS``), ``admin``
(ingest any folder when no roots are configured, rebuild).

Browser logins get a session token (random, kept in the service's memory, expiring after
``KB_SESSION_HOURS``) and a read-only file token for links that a browser opens without headers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.contract import ROLES, role_at_least

TOKEN_PREFIX = "kb_"
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")
MIN_PASSWORD = 8
# scrypt at 16 MiB per hash: ~50 ms here, expensive for a guesser
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
FAILED_LOGINS_MAX = 5  # failures per user name within FAILED_LOGINS_WINDOW_S before logins are refused
FAILED_LOGINS_WINDOW_S = 300.0


class AuthError(ValueError):
    """A bad name, password, role or token, or an account that does not exist."""


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    b64 = base64.b64encode
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        want = base64.b64decode(digest)
        got = hashlib.scrypt(
            password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p), dklen=len(want)
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, want)


def _token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _check_name(name: str) -> str:
    if not name or len(name) > 64 or not set(name) <= NAME_CHARS:
        raise AuthError("a name is 1–64 letters, digits or . _ - @")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError(f"role must be one of {', '.join(ROLES)}")
    return role


@dataclass(frozen=True)
class Principal:
    """Who a request is: a user (by login or token) and the role it acts with."""

    name: str
    role: str
    via: str  # "session" | "token" | "file"


class Accounts:
    """The accounts file: read when changed on disk, written atomically with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[int, int] | None = None
        self._data: dict[str, Any] = {"users": {}, "tokens": {}}

    # --- file -------------------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._seen, self._data = None, {"users": {}, "tokens": {}}
                return self._data
            if self._seen != (st.st_mtime_ns, st.st_size):
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._data = {
                    "users": dict(data.get("users") or {}),
                    "tokens": dict(data.get("tokens") or {}),
                }
                self._seen = (st.st_mtime_ns, st.st_size)
            return self._data

    def _save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        os.chmod(self.path, 0o600)

    def empty(self) -> bool:
        data = self._load()
        return not data["users"] and not data["tokens"]

    # --- users ------------------------------------------------------------------------------------
    def users(self) -> list[dict[str, str]]:
        return [
            {"name": n, "role": u["role"], "created": u.get("created", "")}
            for n, u in sorted(self._load()["users"].items())
        ]

    def set_user(self, name: str, password: str, role: str | None = None) -> None:
        """Add a user, or change a user's password (and role when given)."""
        _check_name(name)
        if len(password) < MIN_PASSWORD:
            raise AuthError(f"a password has at least {MIN_PASSWORD} characters")
        data = self._load()
        old = data["users"].get(name)
        role = _check_role(role or (old["role"] if old else "reader"))
        users = {
            **data["users"],
            name: {
                "role": role,
                "hash": hash_password(password),
                "created": old["created"] if old else _now(),
            },
        }
        self._save({**data, "users": users})

    def set_role(self, name: str, role: str) -> None:
        data = self._load()
        if name not in data["users"]:
            raise AuthError(f"no user {name!r}")
        users = {**data["users"], name: {**data["users"][name], "role": _check_role(role)}}
        self._save({**data, "users": users})

    def remove_user(self, name: str) -> None:
        data = self._load()
        if name not in data["users"]:
            raise AuthError(f"no user {name!r}")
        users = {n: u for n, u in data["users"].items() if n != name}
        self._save({**data, "users": users})

    def check_password(self, name: str, password: str) -> Principal | None:
        user = self._load()["users"].get(name)
        if user is None:
            verify_password(password, _DUMMY_HASH)  # the same work whether or not the name exists
            return None
        return Principal(name, user["role"], "session") if verify_password(password, user["hash"]) else None

    # --- API tokens -------------------------------------------------------------------------------
    def tokens(self) -> list[dict[str, str]]:
        return [
            {"id": i, "name": t["name"], "role": t["role"], "created": t.get("created", "")}
            for i, t in sorted(self._load()["tokens"].items())
        ]

    def create_token(self, name: str, role: str) -> str:
        """A new API token for ``name`` (a person or a tool) with ``role``; the only time it is shown."""
        _check_name(name)
        _check_role(role)
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        data = self._load()
        tokens = {
            **data["tokens"],
            token_id: {"name": name, "role": role, "digest": _token_digest(secret), "created": _now()},
        }
        self._save({**data, "tokens": tokens})
        return f"{TOKEN_PREFIX}{token_id}_{secret}"

    def revoke_token(self, token_id: str) -> None:
        data = self._load()
        if token_id not in data["tokens"]:
            raise AuthError(f"no token {token_id!r}")
        self._save({**data, "tokens": {i: t for i, t in data["tokens"].items() if i != token_id}})

    def check_token(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        token_id, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
        entry = self._load()["tokens"].get(token_id)
        if entry is None or not hmac.compare_digest(entry["digest"], _token_digest(secret)):
            return None
        return Principal(entry["name"], entry["role"], "token")


_DUMMY_HASH = hash_password(secrets.token_hex(8))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class _Session:
    principal: Principal
    file_token: str
    expires: float


class Sessions:
    """Browser logins: random session tokens in memory (a restart logs everyone out)."""

    def __init__(self, accounts: Accounts, hours: float) -> None:
        self.accounts, self.ttl = accounts, hours * 3600
        self._lock = threading.Lock()
        self._by_token: dict[str, _Session] = {}
        self._by_file_token: dict[str, str] = {}
        self._failures: dict[str, list[float]] = {}

    def login(self, name: str, password: str) -> dict[str, Any]:
        """``{token, file_token, user, role, expires}``; AuthError on a wrong name or password, or
        after too many recent failures for that name."""
        now = time.time()
        with self._lock:
            recent = [t for t in self._failures.get(name, []) if now - t < FAILED_LOGINS_WINDOW_S]
            self._failures[name] = recent
            if len(recent) >= FAILED_LOGINS_MAX:
                raise AuthError("too many failed logins for this name; try again in a few minutes")
        principal = self.accounts.check_password(name, password)
        if principal is None:
            with self._lock:
                self._failures.setdefault(name, []).append(now)
            raise AuthError("wrong user name or password")
        token, file_token = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self._lock:
            self._failures.pop(name, None)
            self._by_token[token] = _Session(principal, file_token, now + self.ttl)
            self._by_file_token[file_token] = token
        return {
            "token": token,
            "file_token": file_token,
            "user": principal.name,
            "role": principal.role,
            "expires": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + self.ttl)),
        }

    def logout(self, token: str) -> None:
        with self._lock:
            session = self._by_token.pop(token, None)
            if session:
                self._by_file_token.pop(session.file_token, None)

    def _live(self, token: str) -> _Session | None:
        session = self._by_token.get(token)
        if session is None:
            return None
        if session.expires < time.time():
            self.logout(token)
            return None
        # the account may have been removed or its role changed since the login
        user = next((u for u in self.accounts.users() if u["name"] == session.principal.name), None)
        if user is None:
            self.logout(token)
            return None
        return _Session(Principal(user["name"], user["role"], "session"), session.file_token, session.expires)

    def check(self, token: str) -> Principal | None:
        """The principal behind a session token or an API token."""
        if token.startswith(TOKEN_PREFIX):
            return self.accounts.check_token(token)
        session = self._live(token)
        return session.principal if session else None

    def check_file_token(self, file_token: str) -> Principal | None:
        """A file token reads files only, as a reader, while its session lives."""
        token = self._by_file_token.get(file_token)
        session = self._live(token) if token else None
        return Principal(session.principal.name, "reader", "file") if session else None


__all__ = [
    "ROLES",
    "Accounts",
    "AuthError",
    "Principal",
    "Sessions",
    "hash_password",
    "role_at_least",
    "verify_password",
]
