"""An in-memory store, for unit tests only."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime

from batchthumb.errors import ObjectNotFound, SourceTooLarge
from batchthumb.location import StoreLocation
from batchthumb.stores.base import (
    DELETE_BATCH,
    HEAD_BYTES,
    Admit,
    DeleteResult,
    ObjectInfo,
    SourceBytes,
    Version,
    check_key,
)


def _version(data: bytes, modified: datetime) -> Version:
    return Version(f"{len(data)}:{id(data)}:{modified.isoformat()}", size=len(data))


class MemoryStore:
    """A dict of key -> (bytes, last modified). Shares nothing between instances."""

    def __init__(self, location: StoreLocation | None = None, page_size: int = 1000) -> None:
        self.location = location or StoreLocation("memory", "default", "")
        self.requests: Counter[str] = Counter()
        self.objects: dict[str, tuple[bytes, datetime]] = {}
        self.page_size = page_size

    async def get(self, key: str, max_bytes: int | None = None, admit: Admit | None = None) -> SourceBytes:
        data, _ = await self.get_versioned(key, max_bytes, admit)
        return data

    async def get_versioned(
        self, key: str, max_bytes: int | None = None, admit: Admit | None = None
    ) -> tuple[SourceBytes, Version]:
        self.requests["get"] += 1
        try:
            data, modified = self.objects[check_key(key)]
        except KeyError:
            raise ObjectNotFound(f"{self.location.url}{key}: no such object") from None
        if max_bytes is not None and len(data) > max_bytes:
            raise SourceTooLarge(f"{len(data)} bytes, more than the limit of {max_bytes}")
        if admit is not None:
            await admit(len(data), data[:HEAD_BYTES])
        return data, _version(data, modified)

    async def version(self, key: str) -> Version | None:
        self.requests["head"] += 1
        found = self.objects.get(check_key(key))
        return None if found is None else _version(*found)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.requests["put"] += 1
        self.objects[check_key(key)] = (bytes(data), datetime.now(UTC))

    async def delete_many(self, keys: Sequence[str]) -> DeleteResult:
        if len(keys) > DELETE_BATCH:
            raise ValueError(f"at most {DELETE_BATCH} keys per delete")
        self.requests["delete"] += 1
        for key in keys:
            self.objects.pop(check_key(key), None)
        return DeleteResult(deleted=list(keys))

    async def list_pages(self, prefix: str = "") -> AsyncIterator[list[ObjectInfo]]:
        keys = sorted(key for key in self.objects if key.startswith(prefix))
        for start in range(0, len(keys), self.page_size):
            page = keys[start : start + self.page_size]
            self.requests["list"] += 1
            yield [ObjectInfo(k, len(self.objects[k][0]), self.objects[k][1]) for k in page]

    async def aclose(self) -> None:
        return None
