"""What the bench scripts share: the Postgres they list their corpus in, and its registry."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg

from batchthumb.registry import Registry


async def sql(dsn: str, *statements: str, rows: list[tuple[Any, ...]] | None = None) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for statement in statements:
            if rows is not None and "$1" in statement:
                await conn.executemany(statement, rows)
            else:
                await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def bench_database(work: Path, keys: list[str]) -> Iterator[str]:
    """A Postgres (the embedded one unless ``BATCHTHUMB_TEST_DSN``) whose ``bench_photo`` lists ``keys``."""
    server = None
    dsn = os.environ.get("BATCHTHUMB_TEST_DSN")
    if not dsn:
        import pgserver

        server = pgserver.get_server(str(work / "pgdata"), cleanup_mode="delete")
        dsn = server.get_uri()
    try:
        asyncio.run(
            sql(
                dsn,
                "DROP TABLE IF EXISTS bench_photo",
                "CREATE TABLE bench_photo (id serial PRIMARY KEY, image text NOT NULL)",
                "INSERT INTO bench_photo (image) VALUES ($1)",
                rows=[(key,) for key in keys],
            )
        )
        yield dsn
    finally:
        if server is not None:
            server.cleanup()


async def migrate(config: Any) -> None:
    """A fresh, migrated registry: a server named by BATCHTHUMB_TEST_DSN keeps an earlier
    run's rows, and an earlier run's finished renditions would leave this one nothing to do."""
    conn = await asyncpg.connect(config.database.dsn.get_secret_value())
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{config.database.registry_schema}" CASCADE')
    finally:
        await conn.close()
    registry = await Registry.connect(config.database)
    try:
        await registry.migrate()
    finally:
        await registry.close()
