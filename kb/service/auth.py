"""Team access: local accounts with salted password hashes and roles, API tokens, login sessions.

The accounts file (``KB_ACCOUNTS_FILE``, default ``DATA_DIR/accounts.json``, mode 0600) is written by
``kb user …`` / ``kb token …`` on the machine and read by ``kb serve``, which sees edits without a
restart. It holds no secret in the clear: passwords as scrypt hashes with a random salt each, API
tokens as SHA-256 digests of their random secret (a token is shown once, when it is made).

Roles, each including the one before: ``reader`` (search, read documents and files, status, the
embeddings API), ``editor`` (upload, delete, ingest a folder under ``KB_INGEST_ROOTS``), ``admin``
(ingest any folder when no roots are configured, rebuild).

Groups (``kb group add GROUP USER…``) name sets of users and token names; a source restricted to a
group (``kb source access NAME --allow GROUP``) is readable by its members (``access.py``).

Browser logins get a session token (random, kept in the service's memory, expiring after
``KB_SESSION_HOURS``) and a read-only file token for links that a browser opens without headers.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import hmac
import json
import os
import secrets
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kb.contract import ROLES, role_at_least
from kb.service.ratelimit import LoginLimiter
from kb.settings import DEFAULTS

TOKEN_PREFIX = "kb_"
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")
MIN_PASSWORD = 8
# scrypt at 16 MiB per hash: ~50 ms here, expensive for a guesser
SCRYPT_N, SCRYPT_R, SCRYPT_P = 1 << 14, 8, 1
MAX_NAME = 64
FAILED_LOGINS_MAX = DEFAULTS.login_failures_max  # failures per name and address within the window
FAILED_LOGINS_WINDOW_S = DEFAULTS.login_window_s


class AuthError(ValueError):
    """A bad name, password, role or token, or an account that does not exist."""


class TooManyLogins(AuthError):
    """Logins refused for a while (``retry_after`` seconds) after too many failures."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


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
    if not name or len(name) > MAX_NAME or not set(name) <= NAME_CHARS:
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
    groups: tuple[str, ...] = ()  # the groups the name belongs to, as the accounts file says now


class Accounts:
    """The accounts file: read when changed on disk, written atomically with mode 0600."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._seen: tuple[int, ...] | None = None
        self._data: dict[str, Any] = {"users": {}, "tokens": {}, "groups": {}}

    # --- file -------------------------------------------------------------------------------------
    def _load(self, fresh: bool = False) -> dict[str, Any]:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._seen, self._data = None, {"users": {}, "tokens": {}, "groups": {}}
                return self._data
            # every save replaces the file: a new inode even when an edit keeps the size and the mtime
            seen = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
            if fresh or self._seen != seen:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._data = {
                    "users": dict(data.get("users") or {}),
                    "tokens": dict(data.get("tokens") or {}),
                    "groups": dict(data.get("groups") or {}),
                }
                self._seen = seen
            return self._data

    @contextmanager
    def _editing(self) -> Iterator[dict[str, Any]]:
        """The file's current content, for one read-modify-write that no other writer interleaves with
        (an exclusive lock on a file beside it, held until the change is saved)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path.with_name(f".{self.path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self._load(fresh=True)
        finally:
            os.close(fd)  # releases the lock

    def _save(self, data: dict[str, Any]) -> None:
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
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
        hashed = hash_password(password)  # slow: outside the file's lock
        with self._editing() as data:
            if name in data["groups"]:
                raise AuthError(f"{name!r} is a group; choose another user name")
            old = data["users"].get(name)
            role = _check_role(role or (old["role"] if old else "reader"))
            users = {
                **data["users"],
                name: {"role": role, "hash": hashed, "created": old["created"] if old else _now()},
            }
            self._save({**data, "users": users})

    def set_role(self, name: str, role: str) -> None:
        with self._editing() as data:
            if name not in data["users"]:
                raise AuthError(f"no user {name!r}")
            users = {**data["users"], name: {**data["users"][name], "role": _check_role(role)}}
            self._save({**data, "users": users})

    def remove_user(self, name: str) -> None:
        """Remove a user and the API tokens made in that user's name."""
        with self._editing() as data:
            if name not in data["users"]:
                raise AuthError(f"no user {name!r}")
            users = {n: u for n, u in data["users"].items() if n != name}
            tokens = {i: t for i, t in data["tokens"].items() if t["name"] != name}
            self._save({**data, "users": users, "tokens": tokens, "groups": _without(data["groups"], {name})})

    def user(self, name: str) -> dict[str, str] | None:
        """A user's record (role, hash, created), None if there is none."""
        return self._load()["users"].get(name)

    def check_password(self, name: str, password: str) -> Principal | None:
        user = self._load()["users"].get(name)
        if user is None:
            verify_password(password, _DUMMY_HASH)  # the same work whether or not the name exists
            return None
        if not verify_password(password, user["hash"]):
            return None
        return Principal(name, user["role"], "session", self.groups_of(name))

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
        entry = {"name": name, "role": role, "digest": _token_digest(secret), "created": _now()}
        with self._editing() as data:
            self._save({**data, "tokens": {**data["tokens"], token_id: entry}})
        return f"{TOKEN_PREFIX}{token_id}_{secret}"

    def revoke_token(self, token_id: str) -> None:
        with self._editing() as data:
            if token_id not in data["tokens"]:
                raise AuthError(f"no token {token_id!r}")
            self._save({**data, "tokens": {i: t for i, t in data["tokens"].items() if i != token_id}})

    def check_token(self, token: str) -> Principal | None:
        if not token.startswith(TOKEN_PREFIX):
            return None
        token_id, _, secret = token[len(TOKEN_PREFIX) :].partition("_")
        data = self._load()
        entry = data["tokens"].get(token_id)
        if entry is None or not hmac.compare_digest(entry["digest"], _token_digest(secret)):
            return None
        user = data["users"].get(entry["name"])  # a token in a user's name acts at most with that user's role
        role = entry["role"] if user is None or role_at_least(user["role"], entry["role"]) else user["role"]
        return Principal(entry["name"], role, "token", _groups_of(data["groups"], entry["name"]))

    # --- groups -----------------------------------------------------------------------------------
    def groups(self) -> list[dict[str, Any]]:
        return [{"name": g, "members": list(m)} for g, m in sorted(self._load()["groups"].items())]

    def groups_of(self, name: str) -> tuple[str, ...]:
        """The groups ``name`` (a user, or the name tokens were made for) is a member of."""
        return _groups_of(self._load()["groups"], name)

    def known(self, name: str) -> bool:
        """Whether ``name`` is a user, a group or the name of a token."""
        data = self._load()
        return name in data["users"] or name in data["groups"] or name in _token_names(data)

    def add_to_group(self, group: str, members: list[str]) -> None:
        """Add users (or token names) to ``group``, making it if needed."""
        _check_name(group)
        with self._editing() as data:
            if group in data["users"]:
                raise AuthError(f"{group!r} is a user; a group needs a name of its own")
            unknown = [m for m in members if m not in data["users"] and m not in _token_names(data)]
            if unknown:
                raise AuthError(f"no user or token named {', '.join(map(repr, unknown))} (`kb user list`)")
            current = data["groups"].get(group, [])
            merged = sorted({*current, *members})
            self._save({**data, "groups": {**data["groups"], group: merged}})

    def remove_from_group(self, group: str, members: list[str] | None = None) -> None:
        """Take ``members`` out of ``group``; without members, remove the group itself."""
        with self._editing() as data:
            if group not in data["groups"]:
                raise AuthError(f"no group {group!r}")
            groups = dict(data["groups"])
            if members is None:
                del groups[group]
            else:
                groups[group] = [m for m in groups[group] if m not in set(members)]
            self._save({**data, "groups": groups})


def _groups_of(groups: dict[str, list[str]], name: str) -> tuple[str, ...]:
    return tuple(sorted(g for g, members in groups.items() if name in members))


def _without(groups: dict[str, list[str]], names: set[str]) -> dict[str, list[str]]:
    return {g: [m for m in members if m not in names] for g, members in groups.items()}


def _token_names(data: dict[str, Any]) -> set[str]:
    return {t["name"] for t in data["tokens"].values()}


_DUMMY_HASH = hash_password(secrets.token_hex(8))


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class _Session:
    principal: Principal
    file_token: str
    expires: float
    password_hash: str  # the hash at login: a changed password ends the session


class Sessions:
    """Browser logins: random session tokens in memory (a restart logs everyone out).

    Guesses are limited per address and name (``ratelimit.LoginLimiter``)."""

    def __init__(
        self,
        accounts: Accounts,
        hours: float,
        max_failures: int = FAILED_LOGINS_MAX,
        window_s: float = FAILED_LOGINS_WINDOW_S,
    ) -> None:
        self.accounts, self.ttl = accounts, hours * 3600
        self._lock = threading.Lock()
        self._by_token: dict[str, _Session] = {}
        self._by_file_token: dict[str, str] = {}
        self.limiter = LoginLimiter(max_failures, window_s)

    def login(self, name: str, password: str, address: str = "") -> dict[str, Any]:
        """``{token, file_token, user, role, expires}``; AuthError on a wrong name or password, TooManyLogins
        while this address (or this address for this name) has to wait."""
        wait, stamp = self.limiter.reserve(address, name[:MAX_NAME])
        if wait is not None:
            raise TooManyLogins("too many failed logins; try again later", wait)
        user = self.accounts.user(name) if len(name) <= MAX_NAME else None
        # the same work whether or not the name exists
        if not verify_password(password, user["hash"] if user else _DUMMY_HASH) or user is None:
            raise AuthError("wrong user name or password")
        self.limiter.succeeded(address, name, stamp)
        principal = Principal(name, user["role"], "session", self.accounts.groups_of(name))
        now = time.time()
        token, file_token = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        with self._lock:
            self._by_token[token] = _Session(principal, file_token, now + self.ttl, user["hash"])
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
        # the account may have been removed, its password or its role changed since the login
        user = self.accounts.user(session.principal.name)
        if user is None or user["hash"] != session.password_hash:
            self.logout(token)
            return None
        name = session.principal.name
        principal = Principal(name, user["role"], "session", self.accounts.groups_of(name))
        return _Session(principal, session.file_token, session.expires, session.password_hash)

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
        if session is None:
            return None
        return Principal(session.principal.name, "reader", "file", session.principal.groups)


__all__ = [
    "ROLES",
    "Accounts",
    "AuthError",
    "Principal",
    "Sessions",
    "TooManyLogins",
    "hash_password",
    "role_at_least",
    "verify_password",
]
