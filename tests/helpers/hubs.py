"""A local stand-in for Hugging Face (or a mirror of it) and ModelScope: the one boundary the
download tests cannot reach. It serves files the way each hub does.

- Hugging Face: ``HEAD|GET /{repo}/resolve/main/{file}`` answers ``302`` to the CDN with
  ``X-Linked-Etag`` (the file's SHA-256, quoted), ``X-Linked-Size``, ``X-Repo-Commit`` and the git
  ``ETag``; the CDN (``/cdn/{sha256}``) answers ``200``/``206`` with ``Accept-Ranges``,
  ``Content-Range`` and the SHA-256 as ``ETag``.
- ModelScope: ``GET /api/v1/models/{repo}/repo/files?Revision=master&Recursive=True`` answers
  ``{"Code": 200, "Data": {"Files": [{"Name", "Path", "Size", "Sha256", "Type"}]}, ...}``;
  ``GET /api/v1/models/{repo}/repo?Revision=master&FilePath={file}`` serves the bytes, honouring
  ``Range``.

``cut_after`` makes the next transfer stop after that many bytes (the connection closes with the
rest unsent), as a dropped download does; ``served`` holds the bytes to send when they should differ
from the recorded checksum (a corrupted transfer or a tampered mirror).
"""

from __future__ import annotations

import hashlib
import http.server
import json
import re
import threading
import urllib.parse
from dataclasses import dataclass, field

RANGE_RE = re.compile(r"bytes=(\d+)-(\d*)")


@dataclass
class HostedFile:
    repo: str
    name: str
    data: bytes
    served: bytes | None = None  # what actually goes out (default: data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class FakeHub:
    files: list[HostedFile]
    cut_after: int | None = None
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)  # method, path, Range

    def __post_init__(self) -> None:
        hub = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_HEAD(self) -> None:
                hub._answer(self, head=True)

            def do_GET(self) -> None:
                hub._answer(self, head=False)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def ranged(self) -> list[str]:
        """The Range headers the requests carried (a redirect is followed with the same one)."""
        return [r for _, _, r in self.requests if r]

    # the two layouts

    def _answer(self, h: http.server.BaseHTTPRequestHandler, head: bool) -> None:
        self.requests.append((h.command, h.path, h.headers.get("Range")))
        url = urllib.parse.urlsplit(h.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        path = urllib.parse.unquote(url.path)
        for f in self.files:
            if path == f"/{f.repo}/resolve/main/{f.name}":
                return self._hf_redirect(h, f)
            if path == f"/cdn/{f.sha256}":
                return self._bytes(h, f, head)
            if path == f"/api/v1/models/{f.repo}/repo/files" and query.get("Revision") == "master":
                return self._ms_listing(h)
            if path == f"/api/v1/models/{f.repo}/repo" and query.get("FilePath") == f.name:
                return self._bytes(h, f, head)
        self._send(h, 404, b'{"error":"Entry not found"}', {"Content-Type": "application/json"}, head)

    def _hf_redirect(self, h: http.server.BaseHTTPRequestHandler, f: HostedFile) -> None:
        headers = {
            "Location": f"{self.url}/cdn/{f.sha256}",
            "X-Linked-Etag": f'"{f.sha256}"',
            "X-Linked-Size": str(len(f.data)),
            "X-Repo-Commit": "1" * 40,
            "ETag": '"' + hashlib.sha1(f.data).hexdigest() + '"',
        }
        self._send(h, 302, b"", headers, head=True)

    def _ms_listing(self, h: http.server.BaseHTTPRequestHandler) -> None:
        files = [
            {"Name": f.name, "Path": f.name, "Size": len(f.data), "Sha256": f.sha256, "Type": "blob"}
            for f in self.files
        ]
        body = json.dumps({"Code": 200, "Data": {"Files": files}, "Message": "success", "Success": True})
        self._send(h, 200, body.encode(), {"Content-Type": "application/json"}, head=False)

    def _bytes(self, h: http.server.BaseHTTPRequestHandler, f: HostedFile, head: bool) -> None:
        data = f.data if f.served is None else f.served
        match = RANGE_RE.match(h.headers.get("Range") or "")
        headers = {
            "Accept-Ranges": "bytes",
            "ETag": f'"{f.sha256}"',
            "Content-Type": "application/octet-stream",
        }
        status, start = 200, 0
        if match:
            start = int(match.group(1))
            if start >= len(data):
                headers["Content-Range"] = f"bytes */{len(data)}"
                return self._send(h, 416, b"", headers, head)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        body = data[start:]
        if head:
            return self._send(h, status, b"", {**headers, "Content-Length": str(len(body))}, head=True)
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if self.cut_after is not None:  # the connection drops mid-file
            h.wfile.write(body[: self.cut_after])
            h.wfile.flush()
            self.cut_after = None
            h.close_connection = True
            return
        h.wfile.write(body)

    @staticmethod
    def _send(
        h: http.server.BaseHTTPRequestHandler, status: int, body: bytes, headers: dict[str, str], head: bool
    ) -> None:
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        if "Content-Length" not in headers:
            h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if not head:
            h.wfile.write(body)
