"""``purge uploads``: originals under the upload prefix that nothing references.

The seed's ``cleanup_orphaned_photos``, for a whole bucket. The config's ``[uploads]``
section names the prefix and every column that can reference a file under it (each
``[[sources]]`` path column counts without being listed). Without the section nothing
is deleted; a prefix that holds renditions or overlaps the target is refused.

- **plan** (files): the prefix is listed page by page (one request per 1000 files); each
  page is checked against every referencing column in SQL, and the unreferenced files
  older than ``--older-than`` go into the plan;
- **plan** (``--delete-rows``): the rows of the source set's table matching ``--where``,
  older than ``--older-than`` by ``--age-column``, with their file (under the prefix) or
  none;
- **delete**, a batch at a time, each step re-checked in SQL just before it:

  - files: a file a row references *now* (inserted since the plan) is kept;
  - ``--delete-rows``: the rows that still match; their files, unless a row that stays
    (or another listed column) names them; the renditions of the files that went; then
    the rows themselves (again only where they still match), in that order. A row
    whose file could not be deleted stays.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import anyio

from batchthumb.counters import RunCounters, UploadCounters
from batchthumb.errors import ConfigError, PurgeRefused, QueryRefused, StoreError, UsageError
from batchthumb.pipeline import Deleter
from batchthumb.purge import PurgeJob, PurgeOptions
from batchthumb.queries import SourceIdentifiers, check_expression
from batchthumb.registry import PlannedDelete, WorkTables
from batchthumb.report import Reporter
from batchthumb.runtime import Runtime
from batchthumb.sources import FileColumn
from batchthumb.stores import DELETE_BATCH, ObjectInfo


@dataclass(frozen=True)
class RowSelection:
    """``--delete-rows``: the source set's table, its file column, and the operator's condition."""

    source_set: str
    ids: SourceIdentifiers
    files: FileColumn
    key_type: str
    where: str
    age_column: str
    """Quoted."""

    def sql(self, name: str, schema: str) -> str:
        return self.ids.fill(
            name, schema, where=self.where, age_column=self.age_column, key_type=self.key_type
        )


class UploadPurge(PurgeJob):
    """``purge uploads``: unreferenced old files under the upload prefix (or, with
    ``--delete-rows``, the rows a condition selects, with their files and renditions)."""

    kind = "uploads"
    counters: UploadCounters

    def __init__(
        self, runtime: Runtime, options: PurgeOptions, reporter: Reporter, *, stop: anyio.Event | None = None
    ) -> None:
        super().__init__(runtime, options, reporter, stop=stop)
        self.counters = UploadCounters()
        self.renditions = RunCounters()
        self.deleter = Deleter(runtime.target_store, self.renditions, reporter, "rendition ")
        self.files = Deleter(runtime.source_store, self.counters, reporter)
        self.source_url = runtime.source_store.location.url
        self.prefix = ""
        self.references: list[FileColumn] = []
        self.rows: RowSelection | None = None

    async def check(self) -> None:
        await super().check()
        options, config = self.options, self.runtime.config
        if config.uploads is None:
            raise ConfigError(
                "purge uploads deletes originals: it needs an [uploads] section naming the upload "
                "prefix and every table and column that references files under it; nothing was deleted"
            )
        if options.source_keys is not None or options.unconfigured or options.missing_sources:
            raise UsageError("source keys, --unconfigured and --missing-sources are not for `purge uploads`")
        self.prefix = config.uploads.prefix
        self.refuse_overlap()
        for index, source_set in enumerate(config.sources):
            ids = await self.runtime.sources.identifiers(source_set, index)
            label = f"{source_set.table}.{source_set.path_column}"
            self.references.append(FileColumn(ids.table, ids.path_column, label))
        for index, reference in enumerate(config.uploads.references):
            where = f"uploads.references[{index}]"
            self.references.append(
                await self.runtime.sources.file_column(reference.table, reference.column, where)
            )
        if options.where is not None or options.age_column is not None or options.delete_rows:
            self.rows = await self.row_selection()
        elif options.source_sets or options.renditions:
            raise UsageError("`purge uploads` takes the whole prefix: --source is for --delete-rows only")

    def refuse_overlap(self) -> None:
        """The upload prefix must hold no rendition: not the target, not a preset's namespace."""
        upload = self.runtime.source_store.location.child(self.prefix)
        if not self.runtime.config.drop_in:
            target = self.runtime.target_store.location
            if upload.overlaps(target):
                raise ConfigError(
                    f"uploads.prefix {self.prefix!r}: {upload.url} overlaps the target {target.url}, "
                    "where renditions are written: refused"
                )
            return
        for spec in self.specs:
            namespace = spec.namespace
            if namespace.startswith(self.prefix) or self.prefix.startswith(namespace):
                where = f"under {namespace!r}" if namespace else "beside the sources"
                raise ConfigError(
                    f"uploads.prefix {self.prefix!r} holds the renditions of {spec.name!r} ({where}): refused"
                )

    async def row_selection(self) -> RowSelection:
        """``--where``, ``--age-column`` and ``--delete-rows`` go together, over one source set."""
        options, config = self.options, self.runtime.config
        if not (options.where and options.age_column and options.delete_rows):
            raise UsageError(
                "--where selects rows to delete with their files: give --where, --age-column and "
                "--delete-rows together"
            )
        if len(options.source_sets) > 1 or (not options.source_sets and len(config.sources) > 1):
            raise UsageError("--delete-rows works on one source set's table: name it with --source")
        source_set = config.source_set(options.source_sets[0]) if options.source_sets else config.sources[0]
        index = config.sources.index(source_set)
        sources = self.runtime.sources
        ids = await sources.identifiers(source_set, index)
        selection = RowSelection(
            source_set.name,
            ids,
            FileColumn(ids.table, ids.path_column, f"{source_set.table}.{source_set.path_column}"),
            await sources.key_type(source_set, index),
            check_expression(options.where, "--where"),
            await sources.checked_column(source_set.table, options.age_column, "--age-column"),
        )
        try:  # Postgres parses the condition (and the age column's comparison) before anything runs
            await sources.db.execute(
                "checking --where", selection.sql("upload_rows_recheck", sources.db.schema), 0.0, []
            )
        except QueryRefused as exc:
            reason = exc.__cause__ if exc.__cause__ is not None else exc
            raise UsageError(f"--where {options.where!r} on {source_set.table}: {reason}") from None
        return selection

    # -- plan ------------------------------------------------------------------------

    async def plan(self, plan: WorkTables) -> None:
        store = self.runtime.source_store
        if self.rows is None:
            try:
                await self.plan_files(plan)
            except StoreError as error:
                raise StoreError(
                    f"listing {self.source_url}{self.prefix} failed, so nothing was deleted: {error.message}"
                ) from error
        else:
            await self.plan_rows(plan, self.rows)
        self.reporter.detail(f"listed {self.counters.listed:,} files under {store.location.url}{self.prefix}")

    async def plan_files(self, plan: WorkTables) -> None:
        """Unreferenced files older than the grace, a listing page at a time."""
        counters = self.counters
        cutoff = datetime.now(UTC) - timedelta(seconds=self.options.older_than_s)
        async for page in self.runtime.source_store.list_pages(self.prefix):
            counters.listed += len(page)
            await self.refuse_renditions(page)
            referenced = await self.runtime.sources.referenced_files(self.references, [i.key for i in page])
            counters.referenced += len(referenced)
            unreferenced = [info for info in page if info.key not in referenced]
            old = [info for info in unreferenced if info.last_modified < cutoff]
            counters.too_young += len(unreferenced) - len(old)
            await plan.add_objects([(info.key, info.size) for info in old])

    async def refuse_renditions(self, page: list[ObjectInfo]) -> None:
        """A listed name of a preset's pattern, or one the registry records, is a rendition."""
        keys = [info.key for info in page]
        found = [key for key in keys if any(spec.owns(key) for spec in self.specs)]
        found += sorted(await self.runtime.registry.referenced_object_keys(self.source_url, keys))
        if found:
            raise PurgeRefused(
                f"{self.source_url}{self.prefix} holds renditions ({self.source_url}{found[0]}"
                + (f" and {len(found) - 1:,} more" if len(found) > 1 else "")
                + "): purge uploads is for originals; nothing was deleted"
            )

    async def plan_rows(self, plan: WorkTables, rows: RowSelection) -> None:
        """The rows the condition selects, with their files' sizes from one listing of the prefix."""
        store = self.runtime.source_store
        self.counters.listed = await plan.load_listing(store, self.prefix, "so nothing was deleted")
        schema = self.runtime.registry.db.schema
        await plan.execute(
            "planning the rows", rows.sql("plan_upload_rows", schema), self.options.older_than_s, self.prefix
        )

    async def describe(self, plan: WorkTables) -> None:
        """--dry-run: one line per file (or row) the real run would delete."""
        rows = self.rows
        async for page in plan.pages(DELETE_BATCH):
            for item in page:
                size = f" ({item.bytes:,} bytes)" if self.reporter.verbose and item.object_key else ""
                if rows is None:
                    self.reporter.info(f"would delete {self.source_url}{item.object_key}{size}")
                    continue
                file = f", its file {self.source_url}{item.object_key}{size}" if item.object_key else ""
                self.reporter.info(
                    f"would delete {rows.source_set} row {item.row_key}{file} and its renditions"
                )

    # -- delete ----------------------------------------------------------------------

    async def delete_batch(self, batch: list[PlannedDelete]) -> None:
        if self.stop.is_set():
            return  # queued, not started
        if self.rows is None:
            await self.delete_files(batch)
        else:
            await self.delete_rows(batch, self.rows)
        self.reporter.advance(len(batch))

    async def delete_files(self, batch: list[PlannedDelete]) -> None:
        """The planned files no column references now: a row inserted since the plan protects its file."""
        referenced = await self.runtime.sources.referenced_files(
            self.references, [i.object_key for i in batch]
        )
        for key in sorted(referenced):
            self.counters.protected += 1
            self.reporter.info(f"kept {self.source_url}{key}: a row references it now")
        doomed = [(item.object_key, item.bytes) for item in batch if item.object_key not in referenced]
        result = await self.files.delete(doomed)
        for key, reason in result.errors.items():
            self.counters.add_failure(f"{self.source_url}{key}: {reason}")

    async def delete_rows(self, batch: list[PlannedDelete], rows: RowSelection) -> None:
        """Files, then their renditions, then the rows: each step re-checked just before it."""
        db, schema = self.runtime.registry.db, self.runtime.registry.db.schema
        grace_s = self.options.older_than_s
        sizes = {item.object_key: item.bytes for item in batch}
        still = await db.fetch(
            "re-checking the rows",
            rows.sql("upload_rows_recheck", schema),
            grace_s,
            [i.row_key for i in batch],
        )
        paths = {row["row_key"]: row["path"] for row in still}
        self.counters.rows_kept += len(batch) - len(paths)
        named = sorted({path for path in paths.values() if path})
        shared = await self.referenced_elsewhere(named, list(paths), rows)
        for path in shared:
            self.reporter.info(f"kept {self.source_url}{path}: a row that stays references it")
        result = await self.files.delete([(path, sizes.get(path, 0)) for path in named if path not in shared])
        for key, reason in result.errors.items():
            self.counters.add_failure(f"{self.source_url}{key}: {reason}")
        if result.deleted:
            found = await db.fetch(
                "finding their renditions", db.q("renditions_of_sources"), self.target_url, result.deleted
            )
            renditions = [
                PlannedDelete(r["object_key"], r["bytes"], r["source_set"], r["source_key"], r["rendition"])
                for r in found
            ]
            await self.delete_renditions(await self.recheck(renditions))
        going = [key for key, path in paths.items() if path not in result.errors]
        with anyio.CancelScope(shield=True):  # their files are gone: the rows must follow
            deleted = await db.execute(
                "deleting the rows", rows.sql("upload_rows_delete", schema), grace_s, going
            )
        self.counters.rows_deleted += deleted
        self.counters.rows_kept += len(paths) - deleted
        self.reporter.detail(f"deleted {deleted} rows of {rows.source_set}")

    async def referenced_elsewhere(
        self, paths: list[str], row_keys: list[str], rows: RowSelection
    ) -> set[str]:
        """Which of ``paths`` a row that stays names: of the same table, or of another column."""
        if not paths:
            return set()
        db = self.runtime.registry.db
        sql = rows.sql("file_references_except_rows", db.schema)
        found = {row[0] for row in await db.fetch("checking references to the files", sql, paths, row_keys)}
        others = [column for column in self.references if column != rows.files]
        return found | await self.runtime.sources.referenced_files(others, paths)

    async def after_deletes(self) -> None:
        self.counters.renditions_deleted = self.renditions.deleted
