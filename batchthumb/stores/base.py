"""The store protocol: the few operations batchthumb needs from an object store.

Keys are relative to the store's location (its bucket prefix or directory), use
``/`` separators, and are never empty. Every implementation counts the requests
it sends in ``requests`` (by operation), so a run can prove it sent none.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from batchthumb.errors import UnsafeKeyError
from batchthumb.location import StoreLocation

DELETE_BATCH = 1000
"""Keys per ``DeleteObjects`` request: the S3 maximum."""

HEAD_BYTES = 256 * 1024
"""What ``get`` reads of an object before it calls ``admit``."""

SourceBytes = bytes | bytearray
"""What ``get`` returns: an S3 body read into one buffer of its length stays a bytearray
(turning it into bytes would copy it)."""

Admit = Callable[[int, bytes], Awaitable[None]]
"""``get``'s hook: given the object's size and its first bytes, waits until the rest may be
read (the memory budget), or raises to read no more."""


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    last_modified: datetime
    version: str | None = None
    """What changes when the object is replaced in place: its ETag on S3, its modification
    time in nanoseconds on disk."""

    @property
    def fingerprint(self) -> str:
        """The object's identity as a listing gives it (no HEAD): its size and version."""
        return f"{self.size}:{self.version or self.last_modified.isoformat()}"


@dataclass(frozen=True)
class Version:
    """Which version of an object was read, to compare with the object as it is later.

    On disk: its size, modification time (ns) and inode (a replacement by rename is a new
    inode even when it keeps the old time); on S3: its size and ETag."""

    tag: str
    modified_ns: int | None = None
    """Its modification time, where the store keeps one that can be set (a local file)."""
    size: int | None = None
    """Its size in bytes, where the store said."""


@dataclass
class DeleteResult:
    """What a batch delete did: ``deleted`` keys, and the per-key ``errors`` it reported."""

    deleted: list[str] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)


@runtime_checkable
class Store(Protocol):
    location: StoreLocation
    requests: Counter[str]

    async def get(self, key: str, max_bytes: int | None = None, admit: Admit | None = None) -> SourceBytes:
        """The object's bytes; ``ObjectNotFound`` if absent, ``SourceTooLarge`` past ``max_bytes``.

        ``admit`` is awaited with the size and the first ``HEAD_BYTES`` before the rest is read."""
        ...

    async def get_versioned(
        self, key: str, max_bytes: int | None = None, admit: Admit | None = None
    ) -> tuple[SourceBytes, Version]:
        """``get``, and the version of the object that was read."""
        ...

    async def version(self, key: str) -> Version | None:
        """The object's version now (one HEAD on S3, a ``stat`` on disk); ``None``: it is gone."""
        ...

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        """Store ``data`` at ``key``, replacing what was there; readers never see a partial object."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> DeleteResult:
        """Delete up to ``DELETE_BATCH`` keys; an absent key counts as deleted."""
        ...

    def list_pages(self, prefix: str = "") -> AsyncIterator[list[ObjectInfo]]:
        """Every object under ``prefix``, a page (at most 1000) at a time: one request each."""
        ...

    async def aclose(self) -> None:
        """Release connections and clients."""
        ...


def check_key(key: str) -> str:
    """Refuse keys that could escape a store's root or mean something else on disk."""
    if not key:
        raise UnsafeKeyError("empty key")
    if "\x00" in key:
        raise UnsafeKeyError(f"key {key!r} contains NUL")
    if "\\" in key:
        raise UnsafeKeyError(f"key {key!r} contains a backslash")
    if key.startswith("/"):
        raise UnsafeKeyError(f"key {key!r} is absolute")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise UnsafeKeyError(f"key {key!r} has an empty, '.' or '..' segment")
    return key
