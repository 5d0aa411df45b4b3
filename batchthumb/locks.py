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
import asyncpg

from batchthumb.config import DatabaseConfig
from batchthumb.errors import BatchthumbError, RegistryError
from batchthumb.queries import query, quote_identifier


class RunLocked(BatchthumbError):
    """Another run holds this job's lock."""

    exit_status = 4


@asynccontextmanager
async def run_lock(database: DatabaseConfig, key: str, wait: bool) -> AsyncIterator[int]:
    """Hold the lock named ``key`` for the block; yield the lock connection's backend pid."""
    try:
        conn = await asyncpg.connect(database.dsn.get_secret_value(), timeout=database.connect_timeout_s)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise RegistryError(
            f"cannot connect to {database.redacted_dsn()} for the run lock: {type(exc).__name__}"
        ) from None
    schema = quote_identifier(database.registry_schema)
    try:
        if wait:
            await conn.fetchval(query("wait_run_lock", schema=schema), key)
        elif not await conn.fetchval(query("try_run_lock", schema=schema), key):
            raise RunLocked(
                f"another run holds the lock for {key}: it is still running (exit status 4); "
                "try again later, or pass --wait to queue behind it"
            )
        yield conn.get_server_pid()
    finally:
        with anyio.CancelScope(shield=True):
            await conn.close()  # releases the lock
