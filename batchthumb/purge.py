"""The purges: the generate pipeline in reverse, list -> select -> delete -> unrecord.

- **list**: registry rows (``referenced``, and the rows of ``orphans`` whose source
  row is gone) selected in SQL, and/or the target prefix listed page by page
  (``orphans``, ``prefix``), each listing page checked against the registry in
  one query;
- **select**: everything planned goes into a plan table first; nothing is deleted
  until the whole plan is known, so ``--max-delete`` and ``--dry-run`` see exactly
  what the deletes will read, and a failed listing page deletes nothing;
- **delete**: batches of 1000 keys (one ``DeleteObjects`` each), several in
  flight; a per-key error is a failure, never a deletion;
- **unrecord**: the registry rows of a batch are marked before its objects are
  deleted and removed after them, so an interruption leaves marked rows (which no run
  trusts: generate plans them as missing), never a trusted row pointing at nothing.

:class:`PurgeJob` holds what every purge does; ``ReferencedPurge``, ``OrphanPurge``
and ``PrefixPurge`` say only how each one plans.
"""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from batchthumb.config import SourceSetConfig
from batchthumb.counters import PurgeCounters
from batchthumb.errors import ConfigError, PurgeRefused, StoreError, UsageError
from batchthumb.lifecycle import Job, options_arguments, run_settings
from batchthumb.metadata import Gone, LibraryMetadata
from batchthumb.pipeline import Deleter, stream
from batchthumb.queries import SourceIdentifiers
from batchthumb.registry import PlannedDelete, WorkTables
from batchthumb.report import Reporter
from batchthumb.runtime import Runtime
from batchthumb.shards import WHOLE, Shard
from batchthumb.sources import ColumnTarget, DerivedForm, FileColumn
from batchthumb.specs import RenditionSpec, listing_prefixes, specs_for
from batchthumb.stores import DELETE_BATCH, ObjectInfo

PurgeKind = Literal["referenced", "orphans", "prefix", "uploads"]
DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
UNITS_S = {"": 3600, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w``; a bare number is hours."""
    match = DURATION.match(text)
    if not match:
        raise UsageError(f"--older-than {text!r}: use a number with s, m, h, d or w (e.g. 24h)")
    return float(match.group(1)) * UNITS_S[match.group(2)]


@dataclass(frozen=True)
class PurgeOptions:
    kind: PurgeKind
    source_sets: tuple[str, ...] = ()
    renditions: tuple[str, ...] = ()
    source_keys: tuple[str, ...] | None = None
    """``purge referenced``: only the renditions of these source keys."""
    unconfigured: bool = False
    """``purge referenced``: only renditions no longer in the config."""
    older_than_s: float = 24 * 3600
    """``purge orphans``: the age an unreferenced object must reach before it is deleted."""
    missing_sources: bool = False
    """``purge orphans``: also the renditions of sources whose row is there but whose object
    is gone, found by listing the source store (not a HEAD per source)."""
    where: str | None = None
    """``purge uploads --delete-rows``: a SQL condition over the source set's table selecting
    the rows that go, with their files and renditions (the seed's ``--incomplete-only``)."""
    age_column: str | None = None
    """``purge uploads --delete-rows``: the column that dates a row (``uploaded_at``)."""
    delete_rows: bool = False
    dry_run: bool = False
    max_delete: int | None = None
    shard: Shard = WHOLE
    """Only the objects whose source key (or, for listed objects, object key) hashes to it."""
    wait: bool = False
    """Wait for the run lock instead of exiting when another purge holds it."""
    changed_urls: str | None = None
    """Write the URLs of the objects deleted, one per line."""


class PurgeJob(Job[PurgeCounters]):
    """What every purge does: plan into a table, check it, delete it in batches, unrecord."""

    kind: ClassVar[PurgeKind]

    def __init__(
        self, runtime: Runtime, options: PurgeOptions, reporter: Reporter, *, stop: anyio.Event | None = None
    ) -> None:
        super().__init__(runtime, reporter, stop=stop, **run_settings(options))
        self.options = options
        self.command = f"purge {self.kind}"
        self.counters = PurgeCounters()
        self.target_url = runtime.target_url
        self.deleter = Deleter(runtime.target_store, self.counters, reporter)
        self.kept: list[str] = []
        """Object keys whose delete failed: their rows stay."""
        self.specs: list[RenditionSpec] = []
        """A drop-in config's renditions: their patterns bound what may be deleted."""
        self.tables: list[SourceIdentifiers] = []
        self.columns: list[tuple[SourceIdentifiers, ColumnTarget]] = []
        self.column_files: list[FileColumn] = []
        """The renditions' columns (a model's thumbnail field), as columns that name files."""
        self.metadata = LibraryMetadata([])

    def lock_key(self) -> str:
        # every purge of a target, whatever its kind, takes the same lock: purges never overlap
        return f"purge {self.target_url} shard {self.shard}"

    def arguments(self) -> dict[str, Any]:
        arguments = options_arguments(self.options, exclude=("kind", "wait"))
        keys = self.options.source_keys
        arguments["source_keys"] = None if keys is None else len(keys)  # how many, not the list
        return arguments

    async def check(self) -> None:
        await super().check()
        options = self.options
        if options.max_delete is not None and options.max_delete < 0:
            raise UsageError("--max-delete must be 0 or more")
        if options.older_than_s < 0:
            raise ConfigError("--older-than must not be negative")
        config = self.runtime.config
        if config.drop_in:
            # at the storage root: every table that lists files there, every column a name is in
            self.specs = specs_for(config.renditions, config.django)
            self.metadata = await LibraryMetadata.checked(
                self.runtime.sources.db, config.django, self.specs, caches=self.runtime.site_caches
            )
            for index, source_set in enumerate(config.sources):
                ids = await self.runtime.sources.identifiers(source_set, index)
                self.tables.append(ids)
                for rendition in config.renditions_for(source_set).values():
                    column = getattr(rendition, "column", None)
                    if column:
                        target = await self.runtime.sources.column_target(source_set, index, column)
                        self.columns.append((ids, target))
                        self.column_files.append(FileColumn(ids.table, target.column, column))

    async def run(self) -> None:
        async with self.runtime.registry.work_tables() as plan:
            await self.plan(plan)
            await plan.keep_shard(self.shard)
            await plan.mark_shared(self.target_url)
            self.counters.planned, self.counters.planned_bytes = await plan.summary()
            self.refuse_above_max_delete()
            if self.dry_run:
                await self.describe(plan)
            else:
                await self.delete(plan)
                await self.after_deletes()
                for note in self.metadata.after_deletes():
                    self.reporter.info(note)

    # -- stages ----------------------------------------------------------------------

    @abstractmethod
    async def plan(self, plan: WorkTables) -> None:
        """Put every object this purge will delete into ``plan``."""

    def refuse_above_max_delete(self) -> None:
        limit, planned = self.options.max_delete, self.counters.planned
        if limit is not None and planned > limit:
            raise PurgeRefused(
                f"{self.command} would delete {planned:,} objects, more than "
                f"--max-delete {limit:,}: nothing was deleted"
            )

    async def describe(self, plan: WorkTables) -> None:
        """--dry-run: one line per object the real run would delete."""
        verbose = self.reporter.verbose
        previous = None
        async for page in plan.pages(DELETE_BATCH):
            for item in page:
                if item.shared:
                    self.reporter.info(
                        f"would forget {item.source_set}/{item.rendition} of {item.source_key}: its object "
                        f"{self.target_url}{item.object_key} stays, another variant's too"
                    )
                    continue
                if item.object_key == previous:
                    continue  # planned by two variants that share it (the plan is in key order)
                previous = item.object_key
                size = f" ({item.bytes:,} bytes)" if verbose else ""
                self.reporter.info(f"would delete {self.target_url}{item.object_key}{size}")

    async def delete(self, plan: WorkTables) -> None:
        """Delete the plan in batches, several in flight; unrecord what went."""
        workers = max(1, min(16, self.runtime.config.limits.io_concurrency // 8))
        self.reporter.start(self.command, total=self.counters.planned)
        send, receive = stream(workers)
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.read_plan, plan, send)
            with receive:
                for _ in range(workers):
                    tg.start_soon(self.delete_worker, receive.clone())

    async def read_plan(self, plan: WorkTables, send: MemoryObjectSendStream[list[PlannedDelete]]) -> None:
        async with send:
            async for page in plan.pages(DELETE_BATCH):
                if self.stop.is_set():
                    return
                await send.send(page)

    async def delete_worker(self, receive: MemoryObjectReceiveStream[list[PlannedDelete]]) -> None:
        async with receive:
            async for batch in receive:
                await self.delete_batch(batch)

    async def delete_batch(self, batch: list[PlannedDelete]) -> None:
        """One batch of the plan: re-checked, then deleted."""
        if self.stop.is_set():
            return  # queued, not started
        await self.delete_renditions(await self.recheck(batch))
        self.reporter.advance(len(batch))

    async def delete_renditions(self, batch: list[PlannedDelete]) -> None:
        """The library's rows and cache keys, then the objects, then our rows and the columns
        naming them."""
        registry = self.runtime.registry
        # Rows are marked before their objects go, removed after: a crash in between leaves
        # marked rows no run trusts (generate plans them as missing), never a trusted row
        # pointing at nothing.
        await registry.mark_deleting(self.target_url, batch)
        shared = await registry.shared_object_keys(self.target_url, [item.object_key for item in batch])
        doomed = [item for item in batch if item.object_key not in shared]
        with anyio.CancelScope(shield=True):
            # the library's own order (sorl's delete): its rows and cache keys first, then the
            # file, so that the site never reads a row naming a file that is gone
            await self.metadata.forget([Gone(item.object_key, item.source_key) for item in doomed])
        result = await self.deleter.delete([(item.object_key, item.bytes) for item in doomed])
        self.changed.add(result.deleted)
        for key, reason in result.errors.items():
            self.kept.append(key)
            self.counters.add_failure(f"{self.target_url}{key}: {reason}")
        deleted = set(result.deleted)
        gone = [item for item in batch if item.object_key in deleted]
        # a row whose object another row shares goes; the object stays with that row
        unshared = [item for item in batch if item.object_key in shared]
        with anyio.CancelScope(shield=True):
            await registry.unmark_deleting(self.target_url, list(result.errors))
            self.counters.rows_removed += await registry.unrecord(self.target_url, gone + unshared)
            for ids, column in self.columns:
                names = [item.object_key for item in gone]
                self.counters.columns_cleared += await self.runtime.sources.clear_column(ids, column, names)
            # once more: a page view between the two may have found the file and written rows again
            await self.metadata.forget([Gone(item.object_key, item.source_key) for item in gone])

    async def recheck(self, batch: list[PlannedDelete]) -> list[PlannedDelete]:
        """What of a batch may still go, checked just before its delete.

        At the storage root (a drop-in config), only names of a preset's pattern that no
        source row references, checked in SQL now, whatever the plan said.
        """
        if not self.specs:
            return batch
        ours = [item for item in batch if self.owned(item)]
        referenced = await self.runtime.sources.referenced_source_keys(
            self.tables, [item.object_key for item in ours]
        )
        allowed = [item for item in ours if item.object_key not in referenced]
        for item in batch:
            if item not in allowed:
                self.counters.protected += 1
                self.reporter.info(
                    f"kept {self.target_url}{item.object_key}: "
                    + ("a source row references it" if item in ours else "not a name of a preset's pattern")
                )
        return allowed

    def owned(self, item: PlannedDelete) -> bool:
        """A name its rendition's pattern produces (for a listed object: any preset's)."""
        return any(spec.owns(item.object_key) for spec in self.specs if item.rendition in (None, spec.name))

    async def site_references(self, object_keys: Sequence[str]) -> set[str]:
        """Of these listed names at a storage root, those the site still uses, whoever made them:
        its library lists them (sorl's key value rows, easy-thumbnails' rows) for a source a row
        of a source table still holds, or for a source it does not name; a model's rendition
        column holds them; or, for a library that keeps no metadata, the name is of a source a
        row still holds. Checked in SQL, one statement per kind and call."""
        if not self.specs or not object_keys:
            return set()
        listed = await self.metadata.in_use(object_keys)
        used = {name for name, source in listed.items() if source is None}
        sources = sorted({source for source in listed.values() if source is not None})
        if sources:
            existing = await self.runtime.sources.referenced_source_keys(self.tables, sources)
            used |= {name for name, source in listed.items() if source in existing}
        used |= await self.runtime.sources.referenced_files(self.column_files, object_keys)
        # a library that keeps no metadata (imagekit, versatileimagefield): its name says whose
        # thumbnail it is, and a thumbnail of a source that exists is the site's to keep
        derived: dict[str, tuple[DerivedForm, str]] = {}
        for key in object_keys:
            for spec in self.specs:
                found = spec.derived_source(key)
                if found is not None:
                    derived[key] = found
                    break
        for form in ("stem", "compact"):
            values = sorted({value for kind, value in derived.values() if kind == form})
            existing = await self.runtime.sources.sources_named(self.tables, form, values)
            used |= {key for key, (kind, value) in derived.items() if kind == form and value in existing}
        return used

    async def after_deletes(self) -> None:
        """Registry work once every batch is done (``prefix`` clears the target's rows)."""

    async def listing(self, prefixes: list[str]) -> AsyncIterator[list[ObjectInfo]]:
        """Pages of the target: the presets' namespaces only at a storage root, names of their patterns."""
        store = self.runtime.target_store
        for prefix in prefixes:
            async for page in store.list_pages(prefix):
                if self.specs:
                    page = [info for info in page if any(spec.owns(info.key) for spec in self.specs)]
                yield page

    async def sweep_listing(self, plan: WorkTables, *, keep_referenced: bool, older_than_s: float) -> None:
        """List the target (a drop-in: the presets' namespaces) into the plan; a failed page aborts."""
        registry = self.runtime.registry
        counters = self.counters
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_s)
        try:
            async for page in self.listing(listing_prefixes(self.specs)):
                counters.listed += len(page)
                if not keep_referenced:
                    await plan.add_objects([(info.key, info.size) for info in page])
                    continue
                referenced = await registry.referenced_object_keys(self.target_url, [i.key for i in page])
                counters.referenced += len(referenced)
                unreferenced = [info for info in page if info.key not in referenced]
                old = [info for info in unreferenced if info.last_modified < cutoff]
                counters.too_young += len(unreferenced) - len(old)
                used = await self.site_references([info.key for info in old])
                counters.site_referenced += len(used)
                await plan.add_objects([(info.key, info.size) for info in old if info.key not in used])
        except StoreError as error:
            raise StoreError(
                f"listing {self.target_url} failed, so nothing was deleted: {error.message}"
            ) from error
        self.reporter.detail(f"listed {counters.listed:,} objects under {self.target_url}")


class ReferencedPurge(PurgeJob):
    """``purge referenced``: the renditions the registry references (filtered), then their rows."""

    kind = "referenced"

    async def plan(self, plan: WorkTables) -> None:
        config, options = self.runtime.config, self.options
        configured = [
            f"{source_set.name}/{rendition}"
            for source_set in config.sources
            for rendition in config.variant_names(list(config.renditions_for(source_set)))
        ]
        await plan.add_query(
            "plan_referenced",
            self.target_url,
            list(options.source_sets),
            list(options.renditions),
            None if options.source_keys is None else list(options.source_keys),
            options.unconfigured,
            configured,
        )


class OrphanPurge(PurgeJob):
    """``purge orphans``: rows whose source row is gone, and old objects nothing references."""

    kind = "orphans"

    async def check(self) -> None:
        await super().check()
        _only_for_referenced(self.options)
        for name in self.options.source_sets:
            self.runtime.config.source_set(name)  # raises ConfigError for an unknown one

    async def plan(self, plan: WorkTables) -> None:
        config = self.runtime.config
        selected = [config.source_set(name) for name in self.options.source_sets] or list(config.sources)
        for source_set in selected:
            ids = await self.runtime.sources.identifiers(source_set, config.sources.index(source_set))
            await plan.add_orphan_rows(source_set.name, ids, self.target_url)
        if self.options.missing_sources:
            await self.plan_missing_sources(plan, selected)
        await self.sweep_listing(plan, keep_referenced=True, older_than_s=self.options.older_than_s)

    async def plan_missing_sources(self, plan: WorkTables, selected: list[SourceSetConfig]) -> None:
        """The renditions of sources whose row is there but whose object is gone: each set's
        ``listing_prefix`` of the source store listed once, anti-joined with the registry in SQL."""
        config, db = self.runtime.config, self.runtime.registry.db
        store = self.runtime.source_store
        by_prefix: dict[str, list[SourceSetConfig]] = {}
        for source_set in selected:
            by_prefix.setdefault(source_set.listing_prefix, []).append(source_set)
        for prefix, source_sets in by_prefix.items():
            where = f"{store.location.url}{prefix}"
            listing_began = await db.fetchval("reading the clock", db.q("database_now"))
            listed = await plan.load_listing(store, prefix, "so nothing was deleted")
            if not listed:
                raise PurgeRefused(
                    f"listing {where} found no object at all: every source would count as missing "
                    "(a wrong bucket, prefix or credentials?), so nothing was deleted"
                )
            self.counters.sources_listed += listed
            for source_set in source_sets:
                ids = await self.runtime.sources.identifiers(source_set, config.sources.index(source_set))
                missing = await plan.fetchval(
                    "planning the purge",
                    ids.fill("plan_missing_sources", db.schema),
                    source_set.name,
                    self.target_url,
                    prefix,
                    listing_began,
                )
                self.counters.sources_missing += missing
                if missing:
                    self.reporter.info(
                        f"{source_set.name}: {missing:,} sources listed in {source_set.table} are gone "
                        f"from {where}: their renditions are planned"
                    )

    async def recheck(self, batch: list[PlannedDelete]) -> list[PlannedDelete]:
        batch = await super().recheck(batch)
        # A listed object may have been recorded since it was listed: check again, just before.
        listed = [item.object_key for item in batch if item.source_set is None]
        if not listed:
            return batch
        now_referenced = await self.runtime.registry.referenced_object_keys(self.target_url, listed)
        # ... or the site's library has listed it since (it made the same name meanwhile)
        now_referenced |= await self.site_references([key for key in listed if key not in now_referenced])
        return [item for item in batch if item.object_key not in now_referenced]


class PrefixPurge(PurgeJob):
    """``purge prefix``: every object under the target prefix, then the target's rows."""

    kind = "prefix"

    async def check(self) -> None:
        await super().check()
        _only_for_referenced(self.options)
        if self.options.source_sets or self.options.renditions:
            raise UsageError("`purge prefix` takes the whole prefix: no --source or --rendition")

    async def plan(self, plan: WorkTables) -> None:
        await self.sweep_listing(plan, keep_referenced=False, older_than_s=0)

    async def after_deletes(self) -> None:
        if not self.stop.is_set():
            removed = await self.runtime.registry.unrecord_target_except(self.target_url, self.kept)
            self.counters.rows_removed += removed


def _only_for_referenced(options: PurgeOptions) -> None:
    if options.source_keys is not None or options.unconfigured:
        raise UsageError("source keys and --unconfigured apply to `purge referenced` only")
