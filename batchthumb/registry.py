"""The registry's own rows: what was written, what failed, the runs, and purge plans.

The schema is created and migrated by :meth:`Registry.migrate` under a
transaction-scoped advisory lock, so concurrent ``init`` runs are safe. Every
statement goes through :class:`~batchthumb.database.Database` (named SQL,
translated errors, idempotent statements retried on a lost connection). The user's
tables are read by ``sources.py``, never here.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import anyio

from batchthumb.config import DatabaseConfig
from batchthumb.database import Database, touched, translated
from batchthumb.errors import RegistryError, StoreError
from batchthumb.placeholders import Placeholders
from batchthumb.queries import SourceIdentifiers, migrations, query
from batchthumb.shards import WHOLE, Shard
from batchthumb.stores import ObjectInfo, Store


@dataclass(frozen=True)
class RecordRow:
    """One rendition as stored: the registry row written after its object."""

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
class PlaceholderRow:
    """A source's placeholders, as recorded."""

    source_set: str
    source_key: str
    fingerprint: str | None
    version: str
    placeholders: Placeholders


@dataclass(frozen=True)
class FailureRow:
    source_set: str
    source_key: str
    fingerprint: str | None
    error_class: str
    message: str
    permanent: bool


@dataclass(frozen=True)
class PlannedDelete:
    """One object a purge will delete, with its registry row when it has one."""

    object_key: str
    bytes: int
    source_set: str | None = None
    source_key: str | None = None
    rendition: str | None = None
    row_key: str | None = None
    """``purge uploads --delete-rows``: the source row that goes after its file (and
    ``object_key`` is its file, or '' when it has none)."""
    shared: bool = False
    """A row outside the plan references the object too: this row goes, the object stays."""


class WorkTables:
    """Session temp tables on one dedicated connection: a purge's plan and a store's listing.

    The plan is complete before anything is deleted: the count checked against
    ``--max-delete`` and shown by ``--dry-run`` is exactly what the deletes read. The
    listing holds what a store listed (``verify``, ``adopt``, missing sources, object
    fingerprints), for the registry or a source table to be compared with it in SQL.
    """

    def __init__(self, conn: Any, db: Database) -> None:
        self.conn = conn
        self.db = db

    async def add_query(self, name: str, *args: Any, **identifiers: str) -> None:
        with translated("planning the purge"):
            await self.conn.execute(self.db.q(name, **identifiers), *args)

    async def add_orphan_rows(self, source_set: str, ids: SourceIdentifiers, target: str) -> None:
        """Rows of ``source_set`` whose source row is gone from its table."""
        with translated("planning the purge"):
            await self.conn.execute(ids.fill("plan_orphan_rows", self.db.schema), source_set, target)

    async def add_objects(self, objects: Sequence[tuple[str, int]]) -> None:
        """Objects found by listing the store (no registry row)."""
        if objects:
            with translated("planning the purge"):
                await self.conn.copy_records_to_table(
                    "batchthumb_purge_plan",
                    records=[(None, None, None, key, size) for key, size in objects],
                    columns=["source_set", "source_key", "rendition", "object_key", "bytes"],
                )

    # -- the listing ------------------------------------------------------------------

    async def add_listed(self, page: Sequence[ObjectInfo]) -> None:
        """A page of a store's listing (one ``COPY``)."""
        if page:
            with translated("keeping the listing"):
                await self.conn.copy_records_to_table(
                    "batchthumb_listing",
                    records=[(info.key, info.size, info.fingerprint) for info in page],
                    columns=["object_key", "bytes", "fingerprint"],
                )

    async def load_listing(self, store: Store, prefix: str, consequence: str) -> int:
        """Every object of ``store`` under ``prefix`` into the listing (emptied first); how many.

        A failed page raises a ``StoreError`` that says what it means (``consequence``:
        "so nothing was deleted"): a partial listing must never be acted on.
        """
        await self.clear_listing()
        listed = 0
        try:
            async for page in store.list_pages(prefix):
                listed += len(page)
                await self.add_listed(page)
        except StoreError as error:
            where = f"{store.location.url}{prefix}"
            raise StoreError(f"listing {where} failed, {consequence}: {error.message}") from error
        await self.listing_done()
        return listed

    async def listing_done(self) -> None:
        """The listing is complete: give the planner its statistics."""
        with translated("keeping the listing"):
            await self.conn.execute(self.db.q("listing_analyze"))

    async def clear_listing(self) -> None:
        with translated("keeping the listing"):
            await self.conn.execute(self.db.q("listing_truncate"))

    async def sizes(self, object_keys: Sequence[str]) -> dict[str, int]:
        """Which of these object keys the listing holds, with their sizes (``adopt``'s lookup)."""
        with translated("looking up listed objects"):
            rows = await self.conn.fetch(self.db.q("listing_sizes"), list(object_keys))
        return {row["object_key"]: int(row["bytes"]) for row in rows}

    async def execute(self, what: str, sql: str, *args: Any) -> int:
        """A statement over these tables; the rows it touched."""
        with translated(what):
            status = await self.conn.execute(sql, *args)
        return touched(status)

    async def fetchval(self, what: str, sql: str, *args: Any) -> Any:
        with translated(what):
            return await self.conn.fetchval(sql, *args)

    async def fetchrow(self, what: str, sql: str, *args: Any) -> Any:
        with translated(what):
            return await self.conn.fetchrow(sql, *args)

    async def rows(self, what: str, sql: str, *args: Any, size: int = 1000) -> AsyncIterator[Any]:
        """The rows of a query over these tables, through a server-side cursor."""
        with translated(what):
            async with self.conn.transaction():
                async for row in self.conn.cursor(sql, *args, prefetch=size):
                    yield row

    async def keep_shard(self, shard: Shard) -> None:
        if not shard.whole:
            with translated("planning the purge"):
                await self.conn.execute(self.db.q("plan_shard"), shard.count, shard.index)

    async def mark_shared(self, target: str) -> None:
        """Mark the planned rows whose object a row outside the plan references."""
        with translated("planning the purge"):
            await self.conn.execute(self.db.q("plan_shared"), target)

    async def summary(self) -> tuple[int, int]:
        """(objects, bytes) in the plan."""
        with translated("planning the purge"):
            row = await self.conn.fetchrow(self.db.q("plan_summary"))
        return int(row["objects"]), int(row["bytes"])

    async def pages(self, size: int) -> AsyncIterator[list[PlannedDelete]]:
        """The plan in pages of ``size``, read through a server-side cursor."""
        with translated("reading the purge plan"):
            async with self.conn.transaction():
                page: list[PlannedDelete] = []
                async for row in self.conn.cursor(self.db.q("plan_rows"), prefetch=size):
                    page.append(
                        PlannedDelete(
                            row["object_key"],
                            row["bytes"],
                            row["source_set"],
                            row["source_key"],
                            row["rendition"],
                            row["row_key"],
                            row["shared"],
                        )
                    )
                    if len(page) >= size:
                        yield page
                        page = []
                if page:
                    yield page


class Registry:
    """The registry tables in the database's registry schema."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @classmethod
    async def connect(cls, config: DatabaseConfig) -> Registry:
        """A registry on a pool of its own (``init``, ``status --runs``); ``close`` it."""
        return cls(await Database.connect(config))

    async def close(self) -> None:
        await self.db.close()

    # -- schema ------------------------------------------------------------------

    async def migrate(self) -> tuple[int, int]:
        """Create or update the registry schema; return (version before, version after)."""

        async def apply(conn: Any) -> tuple[int, int]:
            async with conn.transaction():
                await conn.execute(query("schema_lock"), self.db.schema_name)
                await conn.execute(self.db.q("create_version_table"))
                before = current = await conn.fetchval(self.db.q("schema_version"))
                for version, template in migrations():
                    if version > current:
                        await conn.execute(template.format(schema=self.db.schema))
                        await conn.execute(self.db.q("set_schema_version"), version)
                        current = version
            return before, current

        # One transaction under an advisory lock: running it again is harmless.
        result: tuple[int, int] = await self.db.run("migrating the schema", apply)
        return result

    async def check_ready(self) -> None:
        """Refuse to run against a registry that ``init`` has not created or migrated."""
        latest = migrations()[-1][0]
        exists = await self.db.fetchval(
            "checking the schema", "SELECT to_regclass($1) IS NOT NULL", f"{self.db.schema}.schema_version"
        )
        version = await self.db.fetchval("checking the schema", self.db.q("schema_version")) if exists else 0
        if version < latest:
            raise RegistryError(
                f"the registry schema {self.db.schema_name!r} is at version {version}, "
                f"this batchthumb needs {latest}: run `batchthumb init`"
            )

    # -- renditions and failures ---------------------------------------------------

    async def record(self, rows: Sequence[RecordRow]) -> None:
        """Upsert rendition rows and clear their sources' failures, in one transaction."""
        if not rows:
            return
        columns = [
            list(column)
            for column in zip(
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
        ]
        # An upsert: running it twice records each row once.
        await self.db.transaction(
            "recording",
            [
                (self.db.q("record_renditions"), tuple(columns)),
                (self.db.q("clear_failures"), (columns[0], columns[1])),
            ],
        )

    async def record_placeholders(self, rows: Sequence[PlaceholderRow]) -> None:
        """Upsert sources' placeholders and clear their failures, in one transaction."""
        if not rows:
            return
        columns = (
            [row.source_set for row in rows],
            [row.source_key for row in rows],
            [row.fingerprint for row in rows],
            [row.version for row in rows],
            [row.placeholders.width for row in rows],
            [row.placeholders.height for row in rows],
            [row.placeholders.blurhash for row in rows],
            [row.placeholders.color for row in rows],
            [row.placeholders.lqip for row in rows],
        )
        await self.db.transaction(
            "recording placeholders",
            [
                (self.db.q("record_placeholders"), columns),
                (self.db.q("clear_failures"), (columns[0], columns[1])),
            ],
        )

    async def record_failures(self, rows: Sequence[FailureRow], run_id: int | None) -> None:
        if not rows:
            return
        await self.db.execute(
            "recording failures",
            self.db.q("record_failures"),
            [row.source_set for row in rows],
            [row.source_key for row in rows],
            [row.fingerprint for row in rows],
            [row.error_class for row in rows],
            [row.message for row in rows],
            [row.permanent for row in rows],
            [run_id] * len(rows),
        )

    async def failure_count(self, source_set: str) -> int:
        count: int = await self.db.fetchval("counting failures", self.db.q("failure_count"), source_set)
        return count

    # -- runs ----------------------------------------------------------------------

    async def start_run(
        self,
        command: str,
        arguments: dict[str, Any],
        shard: Shard = WHOLE,
        lock_backend_pid: int | None = None,
    ) -> int:
        run_id: int = await self.db.fetchval(
            "starting the run",
            self.db.q("start_run"),
            command,
            json.dumps(arguments, default=str),
            socket.gethostname(),
            os.getpid(),
            None if shard.whole else str(shard),
            lock_backend_pid,
            idempotent=False,  # an insert: twice would be two runs
        )
        return run_id

    async def finish_run(self, run_id: int, counts: dict[str, Any], outcome: str) -> None:
        await self.db.execute(
            "finishing the run", self.db.q("finish_run"), run_id, json.dumps(counts), outcome
        )

    async def recent_runs(self, limit: int) -> list[dict[str, Any]]:
        """The latest runs, newest first; ``state`` says ``died`` for a run whose process is gone."""
        rows = await self.db.fetch("listing runs", self.db.q("recent_runs"), limit)
        return [dict(row) for row in rows]

    async def recent_failures(self, source_sets: Sequence[str], limit: int) -> list[dict[str, Any]]:
        """The failing sources, most recently seen first (``source_sets`` empty: all)."""
        rows = await self.db.fetch(
            "listing failures", self.db.q("recent_failures"), list(source_sets) or None, limit
        )
        return [dict(row) for row in rows]

    # -- purging -------------------------------------------------------------------

    @asynccontextmanager
    async def work_tables(self) -> AsyncIterator[WorkTables]:
        """A fresh, empty plan table on a connection held for the whole purge."""
        async with self.db.connection("holding the purge plan") as conn:
            with translated("creating the purge plan"):
                await conn.execute(self.db.q("plan_create"))
            try:
                yield WorkTables(conn, self.db)
            finally:
                if not conn.is_closed():  # a lost connection took its temp table with it
                    with anyio.CancelScope(shield=True), translated("dropping the purge plan"):
                        await conn.execute(self.db.q("plan_drop"))

    async def referenced_object_keys(self, target: str, object_keys: Sequence[str]) -> set[str]:
        rows = await self.db.fetch(
            "checking references", self.db.q("referenced_object_keys"), target, list(object_keys)
        )
        return {row[0] for row in rows}

    async def shared_object_keys(self, target: str, object_keys: Sequence[str]) -> set[str]:
        """Which of these objects a row not marked for deletion still references (a purge
        that plans one variant of a width set must not delete the object another shares)."""
        rows = await self.db.fetch(
            "checking shared objects", self.db.q("shared_object_keys"), target, list(object_keys)
        )
        return {row[0] for row in rows}

    async def mark_deleting(self, target: str, batch: Sequence[PlannedDelete]) -> None:
        """Before a purge deletes these objects: their rows stop being trusted (planned as missing)."""
        await self._by_row_or_key("marking rows for deletion", "mark_deleting", target, batch)

    async def unmark_deleting(self, target: str, object_keys: Sequence[str]) -> None:
        """The objects a delete could not remove are still there: their rows are trusted again."""
        if object_keys:
            await self.db.execute("unmarking rows", self.db.q("unmark_deleting"), target, list(object_keys))

    async def unrecord(self, target: str, deleted: Sequence[PlannedDelete]) -> int:
        """Remove the rows of deleted objects: by primary key where known, else by object key."""
        return await self._by_row_or_key("unrecording", "unrecord", target, deleted)

    async def _by_row_or_key(self, what: str, query: str, target: str, items: Sequence[PlannedDelete]) -> int:
        """Run ``<query>_rows`` on the items planned from registry rows (by primary key) and
        ``<query>_object_keys`` on those found by listing (by object key); the rows touched."""
        with_rows = [item for item in items if item.source_set is not None]
        by_key = [item.object_key for item in items if item.source_set is None]
        touched = 0
        if with_rows:
            touched += await self.db.execute(
                what,
                self.db.q(f"{query}_rows"),
                [item.source_set for item in with_rows],
                [item.source_key for item in with_rows],
                [item.rendition for item in with_rows],
            )
        if by_key:
            touched += await self.db.execute(what, self.db.q(f"{query}_object_keys"), target, by_key)
        return touched

    async def unrecord_target_except(self, target: str, kept_object_keys: Sequence[str]) -> int:
        return await self.db.execute(
            "unrecording the prefix", self.db.q("unrecord_target_except"), target, list(kept_object_keys)
        )

    async def clear(
        self, target: str, source_sets: Sequence[str], renditions: Sequence[str], dry_run: bool
    ) -> int:
        """Forget rows (objects untouched); with ``dry_run``, count them."""
        args = (target, list(source_sets), list(renditions))
        if dry_run:
            count: int = await self.db.fetchval("counting rows", self.db.q("count_rows"), *args)
            return count
        return await self.db.execute("clearing", self.db.q("clear_rows"), *args)

    async def clear_batch(
        self, target: str, source_sets: Sequence[str], renditions: Sequence[str], limit: int
    ) -> list[tuple[str, str]]:
        """Forget up to ``limit`` rows; their (object key, source key)."""
        rows = await self.db.fetch(
            "clearing",
            self.db.q("clear_rows_batch"),
            target,
            list(source_sets),
            list(renditions),
            limit,
            idempotent=False,
        )
        return [(row["object_key"], row["source_key"]) for row in rows]
