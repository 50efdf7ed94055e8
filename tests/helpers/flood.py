"""A flood of abusive requests against `kb serve`, from a process of its own (so that the clients' own
work does not slow the measuring test): reranked searches with a large k, 10 MB JSON bodies, and
/v1/embeddings calls with thousands of long inputs, each kind from its own threads, until the time is up.

``python -m tests.helpers.flood URL TOKEN SECONDS RERANKERS BODIES EMBEDDERS`` prints one JSON line:
the statuses each kind got (``"error"`` for a connection the service closed on a refused body).
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
import time
from collections import Counter
from urllib.parse import urlsplit

BIG_BODY = b'{"query": "' + b"x" * (10 << 20) + b'"}'
LONG_INPUT = "a long input about flooding services with work " * 30  # ~1.4 KB, a few hundred tokens
EMBED_INPUTS = 2048


def _post(host: str, port: int, token: str, path: str, body: bytes) -> str:
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
        conn.request("POST", path, body, headers)
        resp = conn.getresponse()
        resp.read()
        return str(resp.status)
    except OSError:
        return "error"
    finally:
        conn.close()


def flood(url: str, token: str, seconds: float, rerankers: int, bodies: int, embedders: int) -> dict:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    rerank = json.dumps({"query": "topic term", "k": 200, "rerank": True}).encode()
    embed = json.dumps({"input": [LONG_INPUT] * EMBED_INPUTS}).encode()
    kinds = {"rerank": ("/search", rerank), "body": ("/search", BIG_BODY), "embed": ("/v1/embeddings", embed)}
    counts: dict[str, Counter] = {kind: Counter() for kind in kinds}
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def client(kind: str) -> None:
        path, body = kinds[kind]
        while time.monotonic() < stop:
            status = _post(host, port, token, path, body)
            with lock:
                counts[kind][status] += 1

    threads = [
        threading.Thread(target=client, args=(kind,), daemon=True)
        for kind, n in (("rerank", rerankers), ("body", bodies), ("embed", embedders))
        for _ in range(n)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 90)
    return {kind: dict(c) for kind, c in counts.items()}


if __name__ == "__main__":
    url, token, seconds, *n = sys.argv[1:]
    print(json.dumps(flood(url, token, float(seconds), *map(int, n))), flush=True)
