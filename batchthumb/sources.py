"""The user's tables: the source sets, checked against the catalog, planned and counted.

batchthumb only reads these tables. Their names and columns come from the config, so
they are validated against the catalog and quoted (``queries.py``) before any query
uses them; planning and counting anti-join them with the registry in SQL.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from batchthumb.config import SourceSetConfig
from batchthumb.database import Database
from batchthumb.errors import ConfigError, IdentifierError, QueryRefused
from batchthumb.queries import SourceIdentifiers, query, quote_identifier, split_table
from batchthumb.shards import WHOLE, Shard


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
class RenditionCounts:
    rendition: str
    done: int
    missing: int
    stale: int
    bytes: int


class SourceTables:
    """Reads the source sets' tables, joined with the registry in ``db.schema``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def identifiers(self, source_set: SourceSetConfig, index: int) -> SourceIdentifiers:
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
        rows = await self.db.fetch("reading the catalog", query("table_columns"), schema, table)
        existing = {row[0] for row in rows}
        if not existing:
            raise IdentifierError(f"{where}: table {schema}.{table} does not exist")
        for key, value in columns.items():
            if value not in existing:
                raise IdentifierError(f"{where}: {key} {value!r} is not a column of {schema}.{table}")
        ids = SourceIdentifiers(
            table=f"{quote_identifier(schema)}.{quote_identifier(table)}",
            key_column=quoted["key_column"],
            path_column=quoted["path_column"],
            fingerprint=f"t.{quoted['fingerprint_column']}" if "fingerprint_column" in quoted else "NULL",
            filter=source_set.filter or "TRUE",
        )
        if source_set.filter:
            try:
                await self.db.execute("checking the filter", ids.fill("check_filter", self.db.schema))
            except QueryRefused as exc:
                reason = exc.__cause__ if exc.__cause__ is not None else exc
                raise ConfigError(f"{where}: filter {source_set.filter!r}: {reason}") from None
        return ids

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
        first = ids.fill("plan_page", self.db.schema, after="")
        following = ids.fill("plan_page", self.db.schema, after=f"t.{ids.key_column} > $10 AND")
        last_key: Any = None
        while True:
            args: list[Any] = [names, hashes, source_set, list(states), retry_failed, target]
            args += [page_size, shard.count, shard.index]
            if last_key is None:
                rows = await self.db.fetch("planning", first, *args)
            else:
                rows = await self.db.fetch("planning", following, *args, last_key)
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
        """Per rendition: how many sources are done, missing and stale, and their bytes."""
        rows = await self.db.fetch(
            "counting",
            ids.fill("rendition_counts", self.db.schema),
            [name for name, _ in specs],
            [spec_hash for _, spec_hash in specs],
            source_set,
            target,
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
