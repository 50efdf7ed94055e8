"""One file fetched over HTTP into ``<target>.part``, resumed from where an earlier try stopped.

A partial file is continued with ``Range: bytes=N-``; a server that answers ``206`` with the
matching ``Content-Range`` gets its bytes appended, one that answers ``200`` (it ignores ranges, or
the file changed) is written from the start, and ``416`` means there is nothing left to fetch. The
caller checks the whole file's SHA-256 before renaming it into place.
"""

from __future__ import annotations

import http.client
import re
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ingest.model.hubs import HubError, http_reason, net_reason

BLOCK = 1 << 20
READ_TIMEOUT_S = 60.0
CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")
USER_AGENT = "kb-model-pull"

Progress = Callable[[int, int | None], None]  # bytes on disk, total (None: unknown)


def part_path(target: Path) -> Path:
    return target.with_name(target.name + ".part")


def fetch(url: str, part: Path, size: int | None = None, progress: Progress | None = None) -> Path:
    """Complete ``part`` from ``url``; returns it. HubError when the transfer fails (the bytes
    already on disk stay, for the next try)."""
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:  # not a prefix of this file
        part.unlink()
        have = 0
    if size is not None and have == size and size > 0:
        return part
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if have:
        request.add_header("Range", f"bytes={have}-")
    try:
        response = urllib.request.urlopen(request, timeout=READ_TIMEOUT_S)
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # the range starts at the end: the file is complete
            return part
        raise HubError(http_reason(err, url)) from err
    except (http.client.HTTPException, urllib.error.URLError, OSError) as err:
        raise HubError(net_reason(err)) from err
    with response:
        mode = "ab"
        if response.status == 206:
            match = CONTENT_RANGE_RE.match(response.headers.get("Content-Range", ""))
            if not match or int(match.group(1)) != have:
                raise HubError(f"{url} answered a range that does not continue the partial file")
            if match.group(3) != "*":
                size = int(match.group(3))
        else:  # the whole file
            mode, have = "wb", 0
            length = response.headers.get("Content-Length")
            size = int(length) if length else size
        try:
            with part.open(mode) as out:
                while block := response.read(BLOCK):
                    out.write(block)
                    have += len(block)
                    if progress:
                        progress(have, size)
        except (http.client.HTTPException, urllib.error.URLError, OSError) as err:  # dropped mid-file
            raise HubError(f"the transfer stopped after {have} bytes: {net_reason(err)}") from err
    if size is not None and have < size:
        raise HubError(f"the transfer stopped after {have} of {size} bytes")
    return part
