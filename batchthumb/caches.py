"""The site's shared cache, where a library caches the metadata batchthumb changes.

sorl-thumbnail's ``cached_db`` key value store reads every row through the Django cache
(``THUMBNAIL_CACHE``, else ``default``) and keeps it there for ten years by default, a miss
too (``EMPTY_VALUE``). A row changed in the database alone is not seen by the site until
that entry goes: so whenever a run writes or deletes sorl's rows it deletes the same cache
keys sorl itself deletes, before the files it deletes (sorl's own order: rows and cache
keys first, then the file).

Only a shared cache can be reached from outside the site: Redis (Django's ``RedisCache``,
or django-redis) here. A per-process cache (``LocMemCache``) lives inside each web process;
no other process can clear it (the docs say what to configure instead).

The key a Django cache stores is ``KEY_PREFIX:VERSION:key`` (Django's default
``KEY_FUNCTION``), which :class:`RedisCache` reproduces.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol
from urllib.parse import urlsplit

from batchthumb.errors import CacheError

CACHE_BATCH = 1000
"""Keys per ``DEL``."""


def django_cache_key(key: str, key_prefix: str = "", version: int = 1) -> str:
    """Django's default ``make_key``: ``f"{KEY_PREFIX}:{VERSION}:{key}"``."""
    return f"{key_prefix}:{version}:{key}"


class SiteCache(Protocol):
    """The cache a site's library reads its metadata through: batchthumb only deletes from it."""

    url: str
    """Where it is, without credentials (for messages)."""
    deleted: int
    """Keys deleted so far (asked to delete: a key that was not cached counts too)."""

    async def delete(self, keys: Sequence[str]) -> None:
        """Delete these keys (the library's keys, before Django's prefix and version)."""
        ...

    async def aclose(self) -> None: ...


class RedisCache:
    """A Redis server behind Django's ``RedisCache`` (or django-redis), through redis-py's asyncio
    client: one connection pool, ``DEL`` of up to :data:`CACHE_BATCH` keys a request."""

    def __init__(self, url: str, key_prefix: str = "", version: int = 1) -> None:
        import redis.asyncio

        parts = urlsplit(url)
        port = f":{parts.port}" if parts.port else ""
        self.url = f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path}"  # no credentials
        self.key_prefix = key_prefix
        self.version = version
        self.deleted = 0
        self._client = redis.asyncio.Redis.from_url(url, socket_timeout=10, socket_connect_timeout=10)

    async def check(self) -> None:
        """Reach the server once before anything is changed: a wrong URL stops the run at its start."""
        await self._call("reaching", self._client.ping())

    async def delete(self, keys: Sequence[str]) -> None:
        wanted = sorted({django_cache_key(key, self.key_prefix, self.version) for key in keys})
        for start in range(0, len(wanted), CACHE_BATCH):
            batch = wanted[start : start + CACHE_BATCH]
            await self._call("deleting keys from", self._client.delete(*batch))
            self.deleted += len(batch)

    async def _call(self, what: str, awaitable: object) -> object:
        import redis.exceptions

        try:
            return await awaitable  # type: ignore[misc]
        except (redis.exceptions.RedisError, OSError) as exc:
            raise CacheError(
                f"{what} the site's cache {self.url} failed: {exc}; nothing was deleted after it "
                "(the site would serve rows from the cache that name deleted files)"
            ) from exc

    async def aclose(self) -> None:
        await self._client.aclose()


async def open_cache(url: str, key_prefix: str = "", version: int = 1) -> RedisCache:
    """The cache at ``url`` (``redis://``, ``rediss://``, ``unix://``), reached once."""
    scheme = urlsplit(url).scheme
    if scheme not in ("redis", "rediss", "unix"):
        raise CacheError(f"cache {url.split('@')[-1]!r}: only Redis caches are supported (redis://...)")
    cache = RedisCache(url, key_prefix, version)
    try:
        await cache.check()
    except BaseException:
        await cache.aclose()
        raise
    return cache
