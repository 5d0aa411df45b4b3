"""The user's tables: the source sets, checked against the catalog, planned and counted.

batchthumb only reads these tables. Their names and columns come from the config, so
they are validated against the catalog and quoted (``queries.py``) before any query
uses them; planning and counting anti-join them with the registry in SQL.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from batchthumb.config import SourceSetConfig
from batchthumb.database import Database
from batchthumb.errors import ConfigError, IdentifierError, QueryRefused
from batchthumb.placeholders import Placeholders
from batchthumb.queries import (
    SourceIdentifiers,
    check_expression,
    name_literal,
    query,
    quote_identifier,
    split_table,
)
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
    """``missing``, ``damaged`` (marked by ``verify``), ``stale`` or ``done`` (with ``--force``),
    per rendition."""
    row_key: str | None = None
    """The row's key column, as text (column write-back updates by it)."""
    ppoi: str | None = None
    """The source set's PPOI column, as stored (``"0.3x0.7"``), if it has one."""
    placeholders: bool = False
    """Its placeholders are wanted (missing or stale, the set making them)."""
    plain_fingerprint: str | None = None
    """The fingerprint without the focal point: that of the renditions that do not crop about it."""

    def fingerprint_for(self, focal: bool) -> str | None:
        """What a rendition's row records: with the focal point if it crops about it."""
        return self.fingerprint if focal else self.plain_fingerprint


@dataclass(frozen=True)
class ColumnTarget:
    """A column of a source table that a rendition's name is written to, checked in the catalog."""

    column: str
    """Quoted."""
    max_length: int | None
    nullable: bool
    key_type: str
    """The key column's type, for casting the keys given as text."""

    @property
    def empty(self) -> str:
        """What a purge leaves in it: NULL where the column takes it (Django's blank=True, null=True)."""
        return "NULL" if self.nullable else "''"


@dataclass(frozen=True)
class FileColumn:
    """A column of some table that holds names of files in the source store, checked in the
    catalog: a source set's path column, or one ``[uploads]`` lists."""

    table: str
    """Quoted."""
    column: str
    """Quoted."""
    label: str
    """``table.column`` as the config names it, for messages."""


DerivedForm = Literal["stem", "compact"]
"""How a name without metadata says which source it is of (:meth:`RenditionSpec.derived_source`)."""

KEY_TYPE = re.compile(r"^[a-z][a-z0-9_ ]*(\([0-9, ]+\))?$")


@dataclass(frozen=True)
class RenditionCounts:
    rendition: str
    done: int
    missing: int
    stale: int
    bytes: int
    damaged: int = 0
    """Marked by ``verify``: the object is gone or has another size than recorded."""


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
            if source_set.ppoi_column:
                columns["ppoi_column"] = source_set.ppoi_column
            focal = source_set.focal_point
            if focal is not None:
                for part in ("x", "y", "width", "height"):
                    if getattr(focal, part) is not None:
                        columns[f"focal_point.{part}"] = getattr(focal, part)
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
        fingerprint = f"t.{quoted['fingerprint_column']}" if "fingerprint_column" in quoted else "NULL"
        if source_set.object_fingerprint:  # the file's, as the last listing saw it
            name, path = name_literal(source_set.name), quoted["path_column"]
            fingerprint = (
                f"(SELECT o.fingerprint FROM {self.db.schema}.source_objects AS o "
                f"WHERE o.source_set = {name} AND o.source_key = t.{path}::text)"
            )
        plain = fingerprint
        ppoi = focal_expression(source_set, quoted)
        if ppoi != "NULL":  # a moved focal point moves the crops: they become stale
            fingerprint = f"concat_ws(' ppoi=', {fingerprint}::text, {ppoi}::text)"
        ids = SourceIdentifiers(
            table=f"{quote_identifier(schema)}.{quote_identifier(table)}",
            key_column=quoted["key_column"],
            path_column=quoted["path_column"],
            fingerprint=fingerprint,
            plain_fingerprint=plain,
            filter=check_expression(source_set.filter, f"{where}: filter") if source_set.filter else "TRUE",
            ppoi=ppoi,
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
        specs: Sequence[tuple[str, str, bool]],
        states: Sequence[str],
        target: str,
        page_size: int,
        retry_failed: bool = False,
        shard: Shard = WHOLE,
        placeholders: str | None = None,
    ) -> AsyncIterator[list[WorkItem]]:
        """Keyset pages of work: sources (of ``shard``) whose renditions are in ``states``, or
        (``placeholders``: their version, when the set makes them) whose placeholders are."""
        names = [name for name, _, _ in specs]
        hashes = [spec_hash for _, spec_hash, _ in specs]
        focal = [crops for _, _, crops in specs]
        first = ids.fill("plan_page", self.db.schema, after="")
        following = ids.fill("plan_page", self.db.schema, after=f"t.{ids.key_column} > $12 AND")
        last_key: Any = None
        while True:
            args: list[Any] = [names, hashes, source_set, list(states), retry_failed, target]
            args += [page_size, shard.count, shard.index, placeholders, focal]
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
                        plain_fingerprint=row["plain_fingerprint"],
                        renditions=tuple(row["renditions"]),
                        old_object_keys=tuple(row["old_object_keys"]),
                        old_bytes=tuple(row["old_bytes"]),
                        states=tuple(row["states"]),
                        row_key=None if row["row_key"] is None else str(row["row_key"]),
                        ppoi=row["ppoi"],
                        placeholders=bool(row["placeholders"]),
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
        specs: Sequence[tuple[str, str, bool]],
        target: str,
    ) -> list[RenditionCounts]:
        """Per rendition: how many sources are done, missing and stale, and their bytes."""
        rows = await self.db.fetch(
            "counting",
            ids.fill("rendition_counts", self.db.schema),
            [name for name, _, _ in specs],
            [spec_hash for _, spec_hash, _ in specs],
            source_set,
            target,
            [crops for _, _, crops in specs],
        )
        by_name = {row["rendition"]: row for row in rows}
        return [
            RenditionCounts(
                name,
                **{
                    state: by_name[name][state] if name in by_name else 0
                    for state in ("done", "missing", "stale", "bytes", "damaged")
                },
            )
            for name, _, _ in specs
        ]

    # -- drop-in: names the sources hold, and the columns renditions fill ---------------------

    async def referenced_source_keys(
        self, tables: Sequence[SourceIdentifiers], names: Sequence[str]
    ) -> set[str]:
        """Which of ``names`` a row of any of these tables holds as its file."""
        found: set[str] = set()
        for ids in tables:
            rows = await self.db.fetch(
                "checking names against the sources",
                ids.fill("referenced_source_keys", self.db.schema),
                list(names),
            )
            found.update(row[0] for row in rows)
        return found

    async def sources_named(
        self, tables: Sequence[SourceIdentifiers], form: DerivedForm, values: Sequence[str]
    ) -> set[str]:
        """Which of ``values`` a row of any of these tables holds as its file, in that form:
        ``stem`` (less its extension) or ``compact`` (without spaces)."""
        if not values:
            return set()
        name = "sources_by_stem" if form == "stem" else "sources_by_compact_name"
        found: set[str] = set()
        for ids in tables:
            rows = await self.db.fetch(
                "checking names against the sources", ids.fill(name, self.db.schema), list(values)
            )
            found.update(row[0] for row in rows)
        return found

    async def checked_column(self, table: str, column: str, where: str, textual: bool = False) -> str:
        """Check that ``table.column`` exists (and, if asked, holds text); the column, quoted."""
        try:
            schema, name = split_table(table)
            quoted = quote_identifier(column, "column")
        except IdentifierError as exc:
            raise IdentifierError(f"{where}: {exc.message}") from None
        (found,) = await self._column(schema, name, column) or (None,)
        if found is None:
            raise IdentifierError(f"{where}: {column!r} is not a column of {schema}.{name}")
        if textual and not found["textual"]:
            raise ConfigError(f"{where}: column {column!r} is {found['type']}, not a text column")
        return quoted

    async def file_column(self, table: str, column: str, where: str) -> FileColumn:
        """Check that ``table.column`` exists and holds text (a ``FileField``); quote them."""
        quoted = await self.checked_column(table, column, where, textual=True)
        schema, name = split_table(table)
        return FileColumn(f"{quote_identifier(schema)}.{quote_identifier(name)}", quoted, f"{table}.{column}")

    async def referenced_files(self, columns: Sequence[FileColumn], names: Sequence[str]) -> set[str]:
        """Which of ``names`` any of these columns holds, in any row."""
        found: set[str] = set()
        for column in columns:
            sql = query("file_references", table=column.table, column=column.column)
            rows = await self.db.fetch("checking references to the files", sql, list(names))
            found.update(row[0] for row in rows)
        return found

    async def key_type(self, source_set: SourceSetConfig, index: int) -> str:
        """The type of the set's key column, for casting keys given as text back to it."""
        schema, table = split_table(source_set.table)
        key = await self._column(schema, table, source_set.key_column)
        key_type: str = key[0]["type"] if key else ""
        if not KEY_TYPE.match(key_type):
            raise ConfigError(
                f"sources[{index}] ({source_set.name}): key column {source_set.key_column!r} "
                "has a type batchthumb can't cast to"
            )
        return key_type

    async def column_target(self, source_set: SourceSetConfig, index: int, column: str) -> ColumnTarget:
        """Check in the catalog that ``column`` can hold a rendition's name; quote it."""
        where = f"sources[{index}] ({source_set.name})"
        schema, table = split_table(source_set.table)
        quoted = quote_identifier(column, "column")
        (found,) = await self._column(schema, table, column) or (None,)
        if found is None:
            raise IdentifierError(f"{where}: column {column!r} is not a column of {schema}.{table}")
        if not found["textual"]:
            raise ConfigError(
                f"{where}: column {column!r} is {found['type']}, not a text column a FileField uses"
            )
        return ColumnTarget(
            quoted, found["max_length"], found["nullable"], await self.key_type(source_set, index)
        )

    async def _column(self, schema: str, table: str, column: str) -> list[Any]:
        return await self.db.fetch("reading the catalog", query("column_type"), schema, table, column)

    async def write_back(
        self,
        ids: SourceIdentifiers,
        target: ColumnTarget,
        rows: Sequence[tuple[str, str, str | None]],
        force: bool,
    ) -> set[str]:
        """Set the column to each (row key, name, previous name); return the row keys changed."""
        if not rows:
            return set()
        sql = ids.fill("write_back", self.db.schema, column=target.column, key_type=target.key_type)
        keys, names, previous = (list(column) for column in zip(*rows, strict=True))
        changed = await self.db.fetch("filling the rendition column", sql, keys, names, previous, force)
        return {row[0] for row in changed}

    async def placeholder_targets(self, source_set: SourceSetConfig, index: int) -> dict[str, ColumnTarget]:
        """The set's placeholder columns, checked in the catalog: text, and long enough."""
        chosen = source_set.placeholder_columns.chosen() if source_set.placeholder_columns else {}
        targets = {}
        for name, column in chosen.items():
            target = await self.column_target(source_set, index, column)
            needed = PLACEHOLDER_LENGTHS[name]
            if target.max_length is not None and target.max_length < needed:
                raise ConfigError(
                    f"sources[{index}] ({source_set.name}): placeholder_columns.{name}: column {column!r} "
                    f"holds {target.max_length} characters; a {name} needs up to {needed} (use a text column)"
                )
            targets[name] = target
        return targets

    async def write_placeholders(
        self,
        ids: SourceIdentifiers,
        targets: dict[str, ColumnTarget],
        rows: Sequence[tuple[str, Placeholders]],
    ) -> int:
        """Set the placeholder columns of these rows (row key, placeholders); the rows changed."""
        if not rows or not targets:
            return 0
        key_type = next(iter(targets.values())).key_type
        assignments = ", ".join(f"{target.column} = u.{name}" for name, target in targets.items())
        sql = ids.fill("write_placeholders", self.db.schema, assignments=assignments, key_type=key_type)
        return await self.db.execute(
            "filling the placeholder columns",
            sql,
            [key for key, _ in rows],
            [made.blurhash for _, made in rows],
            [made.color for _, made in rows],
            [made.lqip for _, made in rows],
        )

    async def clear_column(self, ids: SourceIdentifiers, target: ColumnTarget, names: Sequence[str]) -> int:
        """Empty the column where it holds one of these (deleted) names."""
        if not names:
            return 0
        sql = ids.fill("clear_column", self.db.schema, column=target.column, empty=target.empty)
        return await self.db.execute("clearing the rendition column", sql, list(names))


PLACEHOLDER_LENGTHS = {"blurhash": 64, "color": 7, "lqip": 4096}
"""The characters a placeholder column must hold (a BlurHash of up to 4x4 components is 34,
a 20 px WebP's data URI under 1,000 as measured: room to spare)."""


def focal_expression(source_set: SourceSetConfig, quoted: dict[str, str]) -> str:
    """The source set's focal point as one text value per row (NULL where it has none):
    a PPOI column as stored (``0.3x0.7``); focal point columns as ``f:x,y`` (fractions) or
    ``px:x,y[,width,height]`` (pixels). :func:`batchthumb.specs.parse_focal` reads them."""
    if "ppoi_column" in quoted:
        return f"t.{quoted['ppoi_column']}"
    focal = source_set.focal_point
    if focal is None:
        return "NULL"
    parts = ["x", "y"] + (["width", "height"] if focal.width is not None else [])
    columns = [f"t.{quoted[f'focal_point.{part}']}" for part in parts]
    tag = "'f:'" if focal.units == "fraction" else "'px:'"
    present = " AND ".join(f"{column} IS NOT NULL" for column in columns[:2])
    joined = " || ',' || ".join(f"coalesce({column}::text, '')" for column in columns)
    return f"(CASE WHEN {present} THEN {tag} || {joined} END)"
