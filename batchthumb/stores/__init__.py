"""Object stores: S3, a local directory, and in-memory (unit tests, injected: no config URL
names it). See ``base.Store``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchthumb.location import StoreLocation
from batchthumb.stores.base import DELETE_BATCH, DeleteResult, ObjectInfo, Store, Version, check_key
from batchthumb.stores.local import LocalStore
from batchthumb.stores.memory import MemoryStore

if TYPE_CHECKING:
    from batchthumb.models import StoreConfig

__all__ = [
    "DELETE_BATCH",
    "DeleteResult",
    "LocalStore",
    "MemoryStore",
    "ObjectInfo",
    "Store",
    "StoreLocation",
    "Version",
    "check_key",
    "open_store",
]


async def open_store(config: StoreConfig, max_connections: int = 64) -> Store:
    """The store a config names, opened; close it with ``aclose``."""
    location = config.location
    if location.scheme == "file":
        return LocalStore(location)
    # Imported here, not above: aioboto3 and botocore take about 0.35 s and 20 MB to import,
    # which a run on local directories (and every CLI start) need not pay.
    from batchthumb.stores.s3 import S3Store

    return await S3Store(config, max_connections=max_connections).open()
