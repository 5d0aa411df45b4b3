"""What a job runs against: the config, the database (registry and source tables), the two stores."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

import anyio

from batchthumb.caches import SiteCache, open_cache
from batchthumb.config import Config
from batchthumb.database import Database
from batchthumb.django import LIBRARIES
from batchthumb.registry import Registry
from batchthumb.sources import SourceTables
from batchthumb.stores import Store, open_store


@dataclass
class Runtime:
    config: Config
    registry: Registry
    sources: SourceTables
    source_store: Store
    target_store: Store
    site_caches: dict[str, SiteCache] = field(default_factory=dict)
    """By library: the site's shared cache it reads its rows through (sorl's ``cached_db``,
    Wagtail's renditions cache)."""

    @property
    def target_url(self) -> str:
        """The target's identity in the registry: its URL, never its credentials."""
        return self.target_store.location.url


@asynccontextmanager
async def open_runtime(
    config: Config,
    *,
    source_store: Store | None = None,
    target_store: Store | None = None,
) -> AsyncIterator[Runtime]:
    """Connect to the database and open the stores (or use the ones given, for tests)."""
    io = config.limits.io_concurrency
    async with AsyncExitStack() as stack:
        db = await Database.connect(config.database)
        stack.push_async_callback(_shielded, db.close)
        if source_store is None:
            source_store = await open_store(config.stores.source, max_connections=io + 8)
            stack.push_async_callback(_shielded, source_store.aclose)
        if target_store is None:
            target_store = await open_store(config.stores.target, max_connections=io + 8)
            stack.push_async_callback(_shielded, target_store.aclose)
        site_caches: dict[str, SiteCache] = {}
        opened: dict[tuple[str, str, int], SiteCache] = {}
        for owner in LIBRARIES.values() if config.drop_in else ():
            named = owner.site_cache(config.django)
            if named is None:
                continue
            if named not in opened:  # two libraries reading through one cache share a client
                opened[named] = await open_cache(*named)
                stack.push_async_callback(_shielded, opened[named].aclose)
            site_caches[owner.name] = opened[named]
        yield Runtime(config, Registry(db), SourceTables(db), source_store, target_store, site_caches)


async def _shielded(close: Callable[[], Awaitable[None]]) -> None:
    """Closing must finish, even in a run being cancelled: connections are not left open."""
    with anyio.CancelScope(shield=True):
        await close()
