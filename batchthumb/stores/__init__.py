"""Object stores: S3, a local directory, and in-memory (tests). See ``base.Store``."""

from __future__ import annotations

from batchthumb.config import StoreConfig
from batchthumb.location import StoreLocation
from batchthumb.stores.base import DELETE_BATCH, DeleteResult, ObjectInfo, Store, check_key
from batchthumb.stores.local import LocalStore
from batchthumb.stores.memory import MemoryStore
from batchthumb.stores.s3 import S3Store

__all__ = [
    "DELETE_BATCH",
    "DeleteResult",
    "LocalStore",
    "MemoryStore",
    "ObjectInfo",
    "S3Store",
    "Store",
    "StoreLocation",
    "check_key",
    "open_store",
]


async def open_store(config: StoreConfig, max_connections: int = 64) -> Store:
    """The store a config names, opened; close it with ``aclose``."""
    location = config.location
    if location.scheme == "file":
        return LocalStore(location)
    if location.scheme == "memory":
        return MemoryStore(location)
    return await S3Store(config, max_connections=max_connections).open()
