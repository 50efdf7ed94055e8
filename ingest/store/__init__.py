"""Vector stores: the embedded Qdrant Edge engine, or a Qdrant server when a URL is set."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ingest.store.base import FileState, FingerprintMismatch, Point, SearchFilter, Store, StoreError
from kb.settings import Settings

if TYPE_CHECKING:  # the engines load on first use: `kb --help`, the app and the CLI's start need neither
    from qdrant_client import QdrantClient

    from ingest.store.edge import EdgeStore
    from ingest.store.server import ServerStore

__all__ = [
    "EdgeStore",
    "FileState",
    "FingerprintMismatch",
    "Point",
    "SearchFilter",
    "ServerStore",
    "Store",
    "StoreError",
    "make_store",
]

UNAUTHORIZED = (401, 403)


def __getattr__(name: str):
    if name == "ServerStore":
        from ingest.store.server import ServerStore

        return ServerStore
    if name == "EdgeStore":
        from ingest.store.edge import EdgeStore

        return EdgeStore
    raise AttributeError(name)


def connect(url: str, api_key: str | None, ca_cert: Path | None = None) -> QdrantClient:
    """A client for a Qdrant server, checked to answer; StoreError naming the URL if not."""
    from qdrant_client import QdrantClient
    from qdrant_client.http.exceptions import ApiException, UnexpectedResponse

    # the version check runs in a background thread and can only warn; the probe below reports instead
    tls: dict[str, Any] = {"verify": str(ca_cert)} if ca_cert else {}  # passed on to the HTTP client
    client = QdrantClient(url=url, api_key=api_key, check_compatibility=False, **tls)
    try:
        client.get_collections()
    except UnexpectedResponse as exc:
        client.close()
        if exc.status_code in UNAUTHORIZED:
            raise StoreError(
                f"Qdrant at {url} refused the API key (HTTP {exc.status_code}); check KB_QDRANT_API_KEY"
            ) from exc
        raise StoreError(f"Qdrant at {url} answered HTTP {exc.status_code}: {exc.reason_phrase}") from exc
    except (ApiException, OSError) as exc:
        client.close()
        raise StoreError(f"cannot reach Qdrant at {url}: {exc}") from exc
    return client


def make_store(settings: Settings) -> Store:
    """The store the settings point at: a server if ``qdrant_url`` is set, else the embedded engine."""
    if settings.qdrant_url:
        from ingest.store.server import ServerStore

        return ServerStore(
            connect(settings.qdrant_url, settings.qdrant_api_key, settings.qdrant_ca_cert),
            settings.collection,
        )
    from ingest.store.edge import EdgeStore

    return EdgeStore(settings.store_dir / settings.collection, settings.collection)
