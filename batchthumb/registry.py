"""The Postgres registry: what was written, what failed, and the runs.

All SQL is in ``sql/``; this module runs it through one asyncpg pool. The
registry schema is created and migrated by :meth:`Registry.migrate` under a
transaction-scoped advisory lock, so concurrent ``init`` runs are safe.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import anyio
import asyncpg

from batchthumb.config import DatabaseConfig, SourceSetConfig
from batchthumb.errors import ConfigError, IdentifierError, RegistryError
from batchthumb.queries import (
    SourceIdentifiers,
    migrations,
    query,
    quote_identifier,
    split_table,
)
from batchthumb.shards import WHOLE, Shard

CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,  # class 08: the connection failed
    asyncpg.ConnectionDoesNotExistError,  # closed under us
    asyncpg.exceptions.AdminShutdownError,  # server restart
    asyncpg.CannotConnectNowError,  # server starting up
    OSError,  # reset, refused
)
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0)
"""Waits before each new attempt of an idempotent statement whose connection was lost."""


def connection_lost(exc: BaseException) -> bool:
    """True for errors that mean the connection went away (not misuse of a live one)."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    # e.g. "cannot call Transaction.__aexit__(): the underlying connection is closed"
    return isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)


async def retrying(what: str, operation: Callable[[], Awaitable[Any]]) -> Any:
    """Run an idempotent registry operation, again on a fresh connection if one is lost."""
    for delay_s in (*RETRY_DELAYS_S, None):
        try:
            return await operation()
        except (*CONNECTION_ERRORS, asyncpg.InterfaceError) as exc:
            if not connection_lost(exc):
                raise
            if delay_s is None:
                raise RegistryError(
                    f"registry connection lost during {what} and not regained after "
                    f"{len(RETRY_DELAYS_S)} retries: {type(exc).__name__}: {exc}; the run stops, "
                    "a re-run resumes"
                ) from exc
            await anyio.sleep(delay_s)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class WorkItem:
    """One source with the renditions it needs, as planned from the registry."""

    source_set: str
    source_key: str
    fingerprint: str | None
    renditions: tuple[str, ...]
    old_object_keys: tuple[str | None, ...]
    """The object each rendition had in the target store, if any (deleted when superseded)."""
    old_bytes: tuple[int | None, ...]
    states: tuple[str, ...]
    """``missing``, ``stale`` or ``done`` (with ``--force``), per rendition."""


@dataclass(frozen=True)
class RecordRow:
    source_set: str
    source_key: str
    rendition: str
    spec_hash: str
    fingerprint: str | None
    target: str
    object_key: str
    width: int
    height: int
    bytes: int


@dataclass(frozen=True)
class FailureRow:
    source_set: str
    source_key: str
    fingerprint: str | None
    error_class: str
    message: str
    permanent: bool


@dataclass(frozen=True)
class RenditionCounts:
    rendition: str
    done: int
    missing: int
    stale: int
    bytes: int


@dataclass(frozen=True)
class PlannedDelete:
    """One object a purge will delete, with its registry row when it has one."""

    object_key: str
    bytes: int
    source_set: str | None = None
    source_key: str | None = None
    rendition: str | None = None


class PurgePlan:
    """A purge's plan in a session temp table on one dedicated connection.

    The plan is complete before anything is deleted: the count checked against
    ``--max-delete`` and shown by ``--dry-run`` is exactly what the deletes read.
    """

    def __init__(self, conn: Any, registry: Registry) -> None:
        self.conn = conn
        self.registry = registry

    async def add_query(self, name: str, *args: Any, **identifiers: str) -> None:
        await self.conn.execute(self.registry.q(name, **identifiers), *args)

    async def add_objects(self, objects: Sequence[tuple[str, int]]) -> None:
        """Objects found by listing the store (no registry row)."""
        if objects:
            await self.conn.copy_records_to_table(
                "batchthumb_purge_plan",
                records=[(None, None, None, key, size) for key, size in objects],
                columns=["source_set", "source_key", "rendition", "object_key", "bytes"],
            )

    async def keep_shard(self, shard: Shard) -> None:
        if not shard.whole:
            await self.conn.execute(self.registry.q("plan_shard"), shard.count, shard.index)

    async def summary(self) -> tuple[int, int]:
        row = await self.conn.fetchrow(self.registry.q("plan_summary"))
        return int(row["objects"]), int(row["bytes"])

    async def pages(self, size: int) -> AsyncIterator[list[PlannedDelete]]:
        """The plan in pages of ``size``, read through a server-side cursor."""
        async with self.conn.transaction():
            page: list[PlannedDelete] = []
            async for row in self.conn.cursor(self.registry.q("plan_rows"), prefetch=size):
                page.append(
                    PlannedDelete(
                        row["object_key"],
                        row["bytes"],
                        row["source_set"],
                        row["source_key"],
                        row["rendition"],
                    )
                )
                if len(page) >= size:
                    yield page
                    page = []
            if page:
                yield page


class Registry:
    """The registry tables in ``schema``, reached through ``pool``."""

    def __init__(self, pool: asyncpg.Pool, schema: str) -> None:
        self.pool = pool
        self.schema_name = schema
        self.schema = quote_identifier(schema, "registry schema")

    @classmethod
    async def connect(cls, config: DatabaseConfig, pool_size: int | None = None) -> Registry:
        """Open a pool; a failure names the server (without its password) and the reason."""
        size = pool_size or config.pool_size
        try:
            pool = await asyncpg.create_pool(
                config.dsn.get_secret_value(),
                min_size=1,
                max_size=size,
                timeout=config.connect_timeout_s,
                command_timeout=None,
            )
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            reason = str(exc).replace(config.dsn.get_secret_value(), config.redacted_dsn())
            raise RegistryError(
                f"cannot connect to {config.redacted_dsn()}: {reason or type(exc).__name__}"
            ) from None
        return cls(pool, config.registry_schema)

    async def close(self) -> None:
        await self.pool.close()

    def q(self, name: str, **identifiers: str) -> str:
        return query(name, schema=self.schema, **identifiers)

    # -- schema ------------------------------------------------------------------

    async def migrate(self) -> tuple[int, int]:
        """Create or update the registry schema; return (version before, version after)."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(query("schema_lock"), self.schema_name)
            await conn.execute(self.q("create_version_table"))
            before = current = await conn.fetchval(self.q("schema_version"))
            for version, template in migrations():
                if version > current:
                    await conn.execute(template.format(schema=self.schema))
                    await conn.execute(self.q("set_schema_version"), version)
                    current = version
        return before, current

    async def check_ready(self) -> None:
        """Refuse to run against a registry that ``init`` has not created or migrated."""
        latest = migrations()[-1][0]
        async with self.pool.acquire() as conn:
            exists = await conn.fetchval(
                "SELECT to_regclass($1) IS NOT NULL", f"{self.schema}.schema_version"
            )
            version = await conn.fetchval(self.q("schema_version")) if exists else 0
        if version < latest:
            raise RegistryError(
                f"the registry schema {self.schema_name!r} is at version {version}, "
                f"this batchthumb needs {latest}: run `batchthumb init`"
            )

    async def source_identifiers(self, source_set: SourceSetConfig, index: int) -> SourceIdentifiers:
        """Validate the source set's table and columns against the catalog; quote them."""
        where = f"sources[{index}] ({source_set.name})"
        try:
            schema, table = split_table(source_set.table)
            columns = {
                "key_column": source_set.key_column,
                "path_column": source_set.path_column,
            }
            if source_set.fingerprint_column:
                columns["fingerprint_column"] = source_set.fingerprint_column
            quoted = {key: quote_identifier(value, key) for key, value in columns.items()}
        except IdentifierError as exc:
            raise IdentifierError(f"{where}: {exc.message}") from None
        async with self.pool.acquire() as conn:
            existing = {row[0] for row in await conn.fetch(query("table_columns"), schema, table)}
            if not existing:
                raise IdentifierError(f"{where}: table {schema}.{table} does not exist")
            for key, value in columns.items():
                if value not in existing:
                    raise IdentifierError(f"{where}: {key} {value!r} is not a column of {schema}.{table}")
            ids = SourceIdentifiers(
                table=f"{quote_identifier(schema)}.{quote_identifier(table)}",
                key_column=quoted["key_column"],
                path_column=quoted["path_column"],
                fingerprint=(
                    f"t.{quoted['fingerprint_column']}" if "fingerprint_column" in quoted else "NULL"
                ),
                filter=source_set.filter or "TRUE",
            )
            if source_set.filter:
                try:
                    await conn.execute(ids.fill("check_filter", self.schema))
                except asyncpg.PostgresError as exc:
                    raise ConfigError(f"{where}: filter {source_set.filter!r}: {exc}") from None
        return ids

    # -- planning ------------------------------------------------------------------

    async def plan(
        self,
        source_set: str,
        ids: SourceIdentifiers,
        specs: Sequence[tuple[str, str]],
        states: Sequence[str],
        target: str,
        page_size: int,
        retry_failed: bool = False,
        shard: Shard = WHOLE,
    ) -> AsyncIterator[list[WorkItem]]:
        """Keyset pages of work: sources (of ``shard``) whose renditions are in ``states``."""
        names = [name for name, _ in specs]
        hashes = [spec_hash for _, spec_hash in specs]
        first = ids.fill("plan_page", self.schema, after="")
        following = ids.fill("plan_page", self.schema, after=f"t.{ids.key_column} > $10 AND")
        last_key: Any = None
        while True:
            args: list[Any] = [names, hashes, source_set, list(states), retry_failed, target]
            args += [page_size, shard.count, shard.index]
            if last_key is None:
                rows = await retrying("planning", partial(self.pool.fetch, first, *args))
            else:
                rows = await retrying("planning", partial(self.pool.fetch, following, *args, last_key))
            page: list[WorkItem] = []
            cursor = None
            for row in rows:
                if row["is_cursor"]:
                    cursor = row
                    continue
                page.append(
                    WorkItem(
                        source_set=source_set,
                        source_key=row["source_key"],
                        fingerprint=row["fingerprint"],
                        renditions=tuple(row["renditions"]),
                        old_object_keys=tuple(row["old_object_keys"]),
                        old_bytes=tuple(row["old_bytes"]),
                        states=tuple(row["states"]),
                    )
                )
            if page:
                yield page
            if cursor is None or cursor["page_rows"] < page_size:
                return
            last_key = cursor["row_key"]

    async def rendition_counts(
        self,
        source_set: str,
        ids: SourceIdentifiers,
        specs: Sequence[tuple[str, str]],
        target: str,
    ) -> list[RenditionCounts]:
        rows = await retrying(
            "counting",
            partial(
                self.pool.fetch,
                ids.fill("rendition_counts", self.schema),
                [name for name, _ in specs],
                [spec_hash for _, spec_hash in specs],
                source_set,
                target,
            ),
        )
        by_name = {row["rendition"]: row for row in rows}
        return [
            RenditionCounts(
                name,
                by_name[name]["done"] if name in by_name else 0,
                by_name[name]["missing"] if name in by_name else 0,
                by_name[name]["stale"] if name in by_name else 0,
                by_name[name]["bytes"] if name in by_name else 0,
            )
            for name, _ in specs
        ]

    async def failure_count(self, source_set: str) -> int:
        count: int = await self.pool.fetchval(self.q("failure_count"), source_set)
        return count

    # -- recording -----------------------------------------------------------------

    async def record(self, rows: Sequence[RecordRow]) -> None:
        """Upsert rendition rows (one statement) and clear their sources' failures."""
        if not rows:
            return
        columns = list(
            zip(
                *(
                    (
                        row.source_set,
                        row.source_key,
                        row.rendition,
                        row.spec_hash,
                        row.fingerprint,
                        row.target,
                        row.object_key,
                        row.width,
                        row.height,
                        row.bytes,
                    )
                    for row in rows
                ),
                strict=True,
            )
        )

        async def upsert() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                await conn.execute(self.q("record_renditions"), *map(list, columns))
                await conn.execute(self.q("clear_failures"), list(columns[0]), list(columns[1]))

        # An upsert: running it twice records each row once.
        await retrying("recording", upsert)

    async def record_failures(self, rows: Sequence[FailureRow], run_id: int | None) -> None:
        if not rows:
            return
        await retrying(
            "recording failures",
            partial(
                self.pool.execute,
                self.q("record_failures"),
                [row.source_set for row in rows],
                [row.source_key for row in rows],
                [row.fingerprint for row in rows],
                [row.error_class for row in rows],
                [row.message for row in rows],
                [row.permanent for row in rows],
                [run_id] * len(rows),
            ),
        )

    async def start_run(
        self,
        command: str,
        arguments: dict[str, Any],
        shard: Shard = WHOLE,
        lock_backend_pid: int | None = None,
    ) -> int:
        run_id: int = await self.pool.fetchval(
            self.q("start_run"),
            command,
            json.dumps(arguments, default=str),
            socket.gethostname(),
            os.getpid(),
            None if shard.whole else str(shard),
            lock_backend_pid,
        )
        return run_id

    async def recent_runs(self, limit: int) -> list[dict[str, Any]]:
        """The latest runs, newest first; ``state`` says ``died`` for a run whose process is gone."""
        rows = await self.pool.fetch(self.q("recent_runs"), limit)
        return [dict(row) for row in rows]

    async def finish_run(self, run_id: int, counts: dict[str, Any], outcome: str) -> None:
        await retrying(
            "finishing the run",
            partial(self.pool.execute, self.q("finish_run"), run_id, json.dumps(counts), outcome),
        )

    # -- purging -------------------------------------------------------------------

    @asynccontextmanager
    async def purge_plan(self) -> AsyncIterator[PurgePlan]:
        """A fresh, empty plan table on a connection held for the whole purge."""
        async with self.pool.acquire() as conn:
            await conn.execute(self.q("plan_create"))
            try:
                yield PurgePlan(conn, self)
            finally:
                if not conn.is_closed():  # a lost connection took its temp table with it
                    with anyio.CancelScope(shield=True):
                        await conn.execute(self.q("plan_drop"))

    async def referenced_object_keys(self, target: str, object_keys: Sequence[str]) -> set[str]:
        rows = await retrying(
            "checking references",
            partial(self.pool.fetch, self.q("referenced_object_keys"), target, list(object_keys)),
        )
        return {row[0] for row in rows}

    async def unrecord(self, target: str, deleted: Sequence[PlannedDelete]) -> int:
        """Remove the rows of deleted objects: by primary key where known, else by object key."""
        with_rows = [item for item in deleted if item.source_set is not None]
        by_key = [item.object_key for item in deleted if item.source_set is None]
        removed = 0
        if with_rows:
            status = await retrying(
                "unrecording",
                partial(
                    self.pool.execute,
                    self.q("unrecord_rows"),
                    [item.source_set for item in with_rows],
                    [item.source_key for item in with_rows],
                    [item.rendition for item in with_rows],
                ),
            )
            removed += int(status.split()[-1])
        if by_key:
            status = await retrying(
                "unrecording", partial(self.pool.execute, self.q("unrecord_object_keys"), target, by_key)
            )
            removed += int(status.split()[-1])
        return removed

    async def unrecord_target_except(self, target: str, kept_object_keys: Sequence[str]) -> int:
        status = await self.pool.execute(self.q("unrecord_target_except"), target, list(kept_object_keys))
        return int(status.split()[-1])

    async def clear(
        self, target: str, source_sets: Sequence[str], renditions: Sequence[str], dry_run: bool
    ) -> int:
        args = (target, list(source_sets), list(renditions))
        if dry_run:
            count: int = await self.pool.fetchval(self.q("count_rows"), *args)
            return count
        status = await self.pool.execute(self.q("clear_rows"), *args)
        return int(status.split()[-1])
