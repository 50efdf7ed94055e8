"""Model hubs a registry file can come from, each with its own URL layout and checksum record.

- **Hugging Face** (or a mirror of it: ``HF_ENDPOINT``, e.g. https://hf-mirror.com): the file is
  ``{endpoint}/{repo}/resolve/main/{file}``; a HEAD of that URL answers (for an LFS file, with a
  redirect to the CDN it is not followed for) ``X-Linked-Etag``: the file's SHA-256, and
  ``X-Linked-Size``.
- **ModelScope** (``www.modelscope.cn``, or ``MODELSCOPE_DOMAIN`` as the modelscope tools read it):
  the file is ``{endpoint}/api/v1/models/{repo}/repo?Revision=master&FilePath={file}``; the repo's
  file list, ``{endpoint}/api/v1/models/{repo}/repo/files?Revision=master&Recursive=True``, answers
  JSON whose ``Data.Files[]`` give each ``Path`` its ``Sha256`` and ``Size``.

Both serve byte ranges (``Range: bytes=N-`` answered ``206``), which is how a partial download is
resumed (ingest/model/transfer.py).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Literal

HubName = Literal["huggingface", "modelscope"]
HF_DEFAULT = "https://huggingface.co"
MODELSCOPE_DEFAULT = "https://www.modelscope.cn"
REVISION_HF = "main"
REVISION_MODELSCOPE = "master"
METADATA_TIMEOUT_S = 30.0
SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


class HubError(Exception):
    """The hub could not be reached, or does not have the file."""


@dataclass(frozen=True, slots=True)
class RemoteFile:
    url: str  # what to GET (with Range to resume)
    sha256: str | None  # as the hub records it (None: the hub gave none)
    size: int | None


def endpoint_url(value: str, default: str) -> str:
    """An endpoint from a setting: a bare domain gets https://, a trailing slash goes."""
    value = (value or "").strip() or default
    if not value.startswith(("http://", "https://")):
        value = "https://" + value
    return value.rstrip("/")


@dataclass(frozen=True, slots=True)
class Hub:
    name: HubName
    endpoint: str

    def file_url(self, repo: str, filename: str) -> str:
        if self.name == "modelscope":
            query = urllib.parse.urlencode({"Revision": REVISION_MODELSCOPE, "FilePath": filename})
            return f"{self.endpoint}/api/v1/models/{repo}/repo?{query}"
        return f"{self.endpoint}/{repo}/resolve/{REVISION_HF}/{urllib.parse.quote(filename)}"

    def page(self, repo: str) -> str:
        """Where a person finds the repository in a browser, for messages."""
        if self.name == "modelscope":
            return f"{self.endpoint}/models/{repo}"
        return f"{self.endpoint}/{repo}"

    def remote(self, repo: str, filename: str) -> RemoteFile:
        """The file's download URL with the checksum and size the hub records; HubError if it cannot say."""
        if self.name == "modelscope":
            return self._modelscope_remote(repo, filename)
        return self._hf_remote(repo, filename)

    def _hf_remote(self, repo: str, filename: str) -> RemoteFile:
        url = self.file_url(repo, filename)
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(urllib.request.Request(url, method="HEAD"), timeout=METADATA_TIMEOUT_S) as r:
                headers = r.headers
        except urllib.error.HTTPError as err:
            if err.code not in (301, 302, 303, 307, 308):
                raise HubError(http_reason(err, url)) from err
            headers = err.headers  # an LFS file: the redirect carries the file's checksum and size
        except (urllib.error.URLError, OSError) as err:
            raise HubError(net_reason(err)) from err
        tag = _etag(headers.get("X-Linked-Etag") or headers.get("ETag") or "")
        size = headers.get("X-Linked-Size") or headers.get("Content-Length")
        return RemoteFile(url, tag if SHA256_RE.match(tag) else None, int(size) if size else None)

    def _modelscope_remote(self, repo: str, filename: str) -> RemoteFile:
        query = urllib.parse.urlencode({"Revision": REVISION_MODELSCOPE, "Recursive": "True"})
        listing = f"{self.endpoint}/api/v1/models/{repo}/repo/files?{query}"
        try:
            with urllib.request.urlopen(listing, timeout=METADATA_TIMEOUT_S) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as err:
            raise HubError(http_reason(err, listing)) from err
        except (urllib.error.URLError, OSError) as err:
            raise HubError(net_reason(err)) from err
        except ValueError as err:
            raise HubError(f"{listing} did not answer JSON") from err
        if not isinstance(body, dict) or body.get("Code") != 200:
            message = body.get("Message") if isinstance(body, dict) else None
            raise HubError(f"ModelScope refused the file list of {repo}: {message or 'no reason given'}")
        files = (body.get("Data") or {}).get("Files") or []
        for f in files:
            if isinstance(f, dict) and f.get("Path") == filename:
                tag = str(f.get("Sha256") or "").lower()
                size = f.get("Size")
                return RemoteFile(
                    self.file_url(repo, filename),
                    tag if SHA256_RE.match(tag) else None,
                    int(size) if isinstance(size, int) else None,
                )
        raise HubError(f"ModelScope's {repo} has no file {filename}")


def hub_named(name: HubName, hf_endpoint: str = "", modelscope_domain: str = "") -> Hub:
    if name == "modelscope":
        return Hub("modelscope", endpoint_url(modelscope_domain, MODELSCOPE_DEFAULT))
    return Hub("huggingface", endpoint_url(hf_endpoint, HF_DEFAULT))


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # the redirect itself is the answer (its headers name the file)


def _etag(value: str) -> str:
    return value.strip().removeprefix("W/").strip('"').lower()


def http_reason(err: urllib.error.HTTPError, url: str) -> str:
    if err.code in (401, 403, 404):
        return f"{url} answered {err.code} (no such file, or not public)"
    return f"{url} answered {err.code} {err.reason}"


def net_reason(err: Exception) -> str:
    reason = getattr(err, "reason", err)
    text = str(reason).strip() or type(err).__name__
    if any(
        w in text.lower() for w in ("resolution", "name or service", "refused", "unreachable", "timed out")
    ):
        return f"no network connection to the model hub ({text})"
    return text[:200]
