"""Who reads which source: a source's ``allow`` list (users and groups) against the caller.

A source with an empty ``allow`` is readable by every signed-in user; a restricted one by the users
it names, the members of the groups it names (``auth.Accounts`` keeps the groups) and by admins. The
uploads are everyone's. With team access off there is no caller and nothing is restricted.

``Access`` is what one request may read. Searches get it as ``SearchFilter.readable`` (the store's
query itself is narrowed, so a hidden source's hits are never returned, counted or paged through);
the routes that name a document or a source ask ``reads``/``reads_source`` and answer 404 otherwise,
the same answer as for a document that does not exist.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ingest.sources import Source, SourceError
from ingest.store.base import SearchFilter
from kb.contract import UPLOAD_SOURCE, role_at_least, split_source
from kb.service.auth import Accounts, Principal
from kb.settings import Settings


@dataclass(frozen=True)
class Access:
    """The source names one caller may read; ``readable`` None: every source."""

    readable: frozenset[str] | None = None

    def narrow(self, flt: SearchFilter) -> SearchFilter:
        """``flt`` restricted to the readable sources (in the store's query)."""
        if self.readable is None:
            return flt
        return dataclasses.replace(flt, readable=tuple(sorted(self.readable)))

    def reads_source(self, name: str) -> bool:
        return self.readable is None or name in self.readable

    def reads(self, key: str) -> bool:
        """Whether the document ``name/path`` is in a readable source."""
        return self.reads_source(split_source(key)[0])

    def only(self, rows: Iterable[dict[str, Any]], name_field: str) -> list[dict[str, Any]]:
        """The rows (sources, documents, jobs) whose ``name_field`` names a readable source."""
        return [r for r in rows if self.reads_source(str(r.get(name_field) or ""))]


EVERYTHING = Access()


def may_read(source: Source, who: Principal) -> bool:
    """Whether ``who`` (not an admin) may read ``source``."""
    return not source.allow or bool({who.name, *who.groups} & set(source.allow))


def access_for(who: Principal | None, sources: Iterable[Source]) -> Access:
    """What ``who`` may read among the registered ``sources`` (None: team access off).

    Nothing restricted for ``who``: everything, as without restrictions (points of no registered
    source too, e.g. a collection imported before its folders are added again). Otherwise only the
    readable registered sources and the uploads: what is not known to be readable is not shown."""
    if who is None or role_at_least(who.role, "admin"):
        return EVERYTHING
    sources = list(sources)
    readable = {s.name for s in sources if may_read(s, who)}
    if len(readable) == len(sources):
        return EVERYTHING
    return Access(frozenset({UPLOAD_SOURCE, *readable}))


def checked_allow(settings: Settings, allow: Iterable[str]) -> tuple[str, ...]:
    """``allow`` without repeats, each name a user, a group or a token's name in the accounts file;
    SourceError naming the others (a typo would lock the source away from the one it was meant for)."""
    names = tuple(dict.fromkeys(a.strip() for a in allow if a.strip()))
    accounts = Accounts(settings.accounts_path)
    unknown = [n for n in names if not accounts.known(n)]
    if unknown:
        raise SourceError(
            f"no user or group named {', '.join(map(repr, unknown))} in {settings.accounts_path} "
            "(`kb user list`, `kb group list`)"
        )
    return names


__all__ = ["EVERYTHING", "Access", "access_for", "checked_allow", "may_read"]
