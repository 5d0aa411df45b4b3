"""What a job runs against: the config, the registry and the two stores, opened together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from batchthumb.config import Config
from batchthumb.registry import Registry
from batchthumb.stores import Store, open_store


@dataclass
class Runtime:
    config: Config
    registry: Registry
    source_store: Store
    target_store: Store

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
    """Connect to the registry and open the stores (or use the ones given, for tests)."""
    io = config.limits.io_concurrency
    async with AsyncExitStack() as stack:
        registry = await Registry.connect(config.database, pool_size=config.database.pool_size)
        stack.push_async_callback(registry.close)
        if source_store is None:
            source_store = await open_store(config.stores.source, max_connections=io + 8)
            stack.push_async_callback(source_store.aclose)
        if target_store is None:
            target_store = await open_store(config.stores.target, max_connections=io + 8)
            stack.push_async_callback(target_store.aclose)
        yield Runtime(config, registry, source_store, target_store)
