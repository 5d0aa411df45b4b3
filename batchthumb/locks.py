"""Run locks: two runs of the same job never overlap.

A Postgres advisory lock, held for the whole run on a connection of its own: asyncpg's
pool resets a connection's session state, advisory locks included, when it goes back to
the pool, so the pool can't hold one. If the process dies, its connection closes and
Postgres releases the lock; the run's row then shows as ``died`` (its lock backend is
gone from ``pg_stat_activity``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from batchthumb import database
from batchthumb.config import DatabaseConfig
from batchthumb.errors import RunLocked
from batchthumb.queries import query, quote_identifier


@asynccontextmanager
async def run_lock(config: DatabaseConfig, key: str, wait: bool) -> AsyncIterator[int]:
    """Hold the lock named ``key`` for the block; yield the lock connection's backend pid."""
    conn = await database.connect(config, " for the run lock")
    schema = quote_identifier(config.registry_schema)
    try:
        with database.translated("taking the run lock"):
            if wait:
                await conn.fetchval(query("wait_run_lock", schema=schema), key)
                taken = True
            else:
                taken = await conn.fetchval(query("try_run_lock", schema=schema), key)
        if not taken:
            raise RunLocked(
                f"another run holds the lock for {key}: it is still running (exit status 4); "
                "try again later, or pass --wait to queue behind it"
            )
        yield conn.get_server_pid()
    finally:
        with anyio.CancelScope(shield=True), database.translated("releasing the run lock"):
            await conn.close()  # releases the lock
