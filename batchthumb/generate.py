"""``generate`` and ``regenerate``: plan -> fetch -> render -> put -> record.

- **plan** streams keyset pages of work from one SQL query per page (the source
  table anti-joined against the registry), so a finished table costs one pass
  over Postgres and not a single store request;
- **fetch** GETs each source once, a bounded number at a time;
- **render** decodes it once and derives every rendition, in worker threads;
- **put** writes the objects concurrently;
- **record** upserts registry rows in batches, only after their objects are
  stored, and only then deletes the objects they superseded.

Each stage is a method of :class:`GenerateJob`; what they share is an attribute.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

import anyio
import anyio.to_process
import anyio.to_thread
from anyio.streams.memory import MemoryObjectSendStream

from batchthumb import fingerprints
from batchthumb import render as rendering
from batchthumb.budget import MemoryBudget
from batchthumb.config import SourceSetConfig
from batchthumb.counters import GenerateCounters
from batchthumb.errors import ConfigError, CredentialsRefused, ItemError, StoreError
from batchthumb.lifecycle import Job, options_arguments, run_settings
from batchthumb.metadata import Gone, LibraryMetadata, Written
from batchthumb.pipeline import BatchSink, Deleter, spawn_stage, stream
from batchthumb.placeholders import PLACEHOLDER_VERSION, Placeholders
from batchthumb.queries import SourceIdentifiers
from batchthumb.registry import FailureRow, PlaceholderRow, PlannedDelete, RecordRow
from batchthumb.render import Rendered
from batchthumb.report import Reporter
from batchthumb.resources import ContainerLimits, format_bytes
from batchthumb.runtime import Runtime
from batchthumb.shards import WHOLE, Shard
from batchthumb.sources import ColumnTarget, WorkItem
from batchthumb.specs import CONTENT_TYPES, RenditionSpec, specs_for
from batchthumb.stores import DELETE_BATCH, LocalStore, Version
from batchthumb.stores.base import SourceBytes

Command = Literal["generate", "regenerate"]
RenderFunction = Callable[..., list[Rendered]]
"""A renderer that runs in threads, ``render``'s arguments: tests and the bench pass their own."""

STATES: dict[tuple[Command, bool], tuple[str, ...]] = {
    ("generate", False): ("missing", "damaged"),
    ("generate", True): ("missing", "damaged", "stale", "done"),
    ("regenerate", False): ("stale",),
    ("regenerate", True): ("missing", "damaged", "stale", "done"),
}
"""Which planned states each command works on, without and with ``--force``. ``damaged``:
rows ``verify`` found without their object, or with another size."""
REPAIR_STATES = ("damaged",)
"""``verify --repair``: exactly the renditions it marked."""


@dataclass(frozen=True)
class GenerateOptions:
    command: Command = "generate"
    source_sets: tuple[str, ...] = ()
    """Only these source sets (all when empty)."""
    renditions: tuple[str, ...] = ()
    """Only these renditions (all configured for the set when empty)."""
    force: bool = False
    limit: int | None = None
    """Stop planning after this many sources."""
    dry_run: bool = False
    retry_failed: bool = False
    """Also retry sources whose last failure was permanent (corrupt, too large)."""
    shard: Shard = WHOLE
    """Only the sources whose key hashes to this shard."""
    wait: bool = False
    """Wait for the run lock instead of exiting when another run holds it."""
    repair: bool = False
    """Only the renditions ``verify`` marked damaged (its ``--repair``)."""
    changed_urls: str | None = None
    """Write the URLs of the objects overwritten or deleted here, one per line."""


@dataclass(frozen=True)
class PreparedSet:
    """A selected source set: its config, its checked identifiers, its rendition specs."""

    config: SourceSetConfig
    identifiers: SourceIdentifiers
    specs: dict[str, RenditionSpec]
    placeholders: str | None = None
    """The placeholders' version when this set makes them (and no rendition was singled out)."""

    @property
    def spec_hashes(self) -> list[tuple[str, str, bool]]:
        """(name, spec hash, whether it crops about the focal point) of each rendition."""
        return [(spec.name, spec.spec_hash, spec.crops_about_focal) for spec in self.specs.values()]


@dataclass
class Fetched:
    """A source on its way through fetch and render."""

    item: WorkItem
    data: SourceBytes = b""
    version: Version | None = None
    """The version of the source that was read: what the renditions show."""
    read_at: datetime | None = None
    """When it was read (the library's metadata times come from it, never from later)."""
    rendered: list[Rendered] = field(default_factory=list)
    reserved: int = 0
    """Bytes of the memory budget this source holds until its decode is done."""
    placeholders: Placeholders | None = None


@dataclass
class Stored:
    """What the record stage receives for one source: stored rows, or a failure, or both."""

    item: WorkItem
    rows: list[RecordRow] = field(default_factory=list)
    superseded: list[tuple[str, int]] = field(default_factory=list)
    """(object key, bytes) of objects the new renditions replace under another key."""
    failure: FailureRow | None = None
    written: list[Written] = field(default_factory=list)
    """What a library's metadata says of the stored renditions (sorl's key value rows)."""
    placeholders: PlaceholderRow | None = None
    version: Version | None = None
    """The version of the source the renditions were made from."""
    digests: dict[str, str] = field(default_factory=dict)
    """object key -> the MD5 of the bytes written there."""

    @property
    def weight(self) -> int:
        """Registry rows this source will write."""
        return len(self.rows) + (self.failure is not None) + (self.placeholders is not None)


async def prepare(
    runtime: Runtime, source_sets: Sequence[str], renditions: Sequence[str]
) -> list[PreparedSet]:
    """Resolve the selected source sets and renditions, and check them against the catalog."""
    config = runtime.config
    selected = [config.source_set(name) for name in source_sets] or list(config.sources)
    unknown = [name for name in renditions if name not in config.renditions]
    if unknown:
        raise ConfigError(
            f"no rendition named {', '.join(map(repr, unknown))} (configured: {', '.join(config.renditions)})"
        )
    prepared = []
    for source_set in selected:
        index = config.sources.index(source_set)
        identifiers = await runtime.sources.identifiers(source_set, index)
        wanted = config.renditions_for(source_set)
        if renditions:
            wanted = {name: spec for name, spec in wanted.items() if name in renditions}
        if wanted:
            specs = {spec.name: spec for spec in specs_for(wanted, config.django)}
            placeholders = PLACEHOLDER_VERSION if source_set.placeholders and not renditions else None
            prepared.append(PreparedSet(source_set, identifiers, specs, placeholders))
    return prepared


class GenerateJob(Job[GenerateCounters]):
    """``generate`` or ``regenerate``: the five stages, and the state they share."""

    def __init__(
        self,
        runtime: Runtime,
        options: GenerateOptions,
        reporter: Reporter,
        *,
        render_function: RenderFunction | None = None,
        stop: anyio.Event | None = None,
    ) -> None:
        super().__init__(runtime, reporter, stop=stop, **run_settings(options))
        self.options = options
        self.command = options.command
        self.counters = GenerateCounters()
        self.states = REPAIR_STATES if options.repair else STATES[(options.command, options.force)]
        self.prepared: dict[str, PreparedSet] = {}
        self.all_sets: list[PreparedSet] = []
        self.columns: dict[tuple[str, str], ColumnTarget] = {}
        """(source set, rendition) -> the column its name is written to."""
        self.placeholder_columns: dict[str, dict[str, ColumnTarget]] = {}
        """source set -> its placeholder columns (placeholder -> column)."""
        self.metadata = LibraryMetadata([])
        limits = runtime.config.limits
        self.limits = limits
        self.target = runtime.target_store
        self.target_url = runtime.target_url
        self.container = ContainerLimits.read()
        self.render_workers = limits.render_worker_count(self.container)
        self.fetch_workers = min(limits.io_concurrency, max(8, 4 * self.render_workers))
        self.render_limiter = anyio.CapacityLimiter(self.render_workers)
        self.budget = MemoryBudget(limits.memory_budget(self.container))
        self.counters.memory_budget = self.budget.total
        self.worst_decode = int(limits.max_pixels * 4 * rendering.DECODE_OVERHEAD)
        """A source whose header could not be read early reserves this (capped by the budget)."""
        self.render_function = render_function or rendering.render
        self.in_processes = render_function is None and limits.render_pool == "process"
        self.vips_settings = (limits.block_untrusted, limits.vips_threads, limits.blocked_loaders)
        self.store_errors_in_a_row = 0
        self.superseded = Deleter(self.target, self.counters, reporter, "superseded ")
        self.to_delete: list[tuple[str, int]] = []
        """Superseded objects whose replacements are recorded: deleted 1000 at a time, the rest at the end."""

    def lock_key(self) -> str:
        sets = ",".join(sorted(self.prepared))
        return f"{self.command} {self.target_url} {sets} shard {self.shard}"

    def arguments(self) -> dict[str, Any]:
        return options_arguments(self.options, exclude=("command", "wait"))

    async def check(self) -> None:
        await super().check()
        prepared = await prepare(self.runtime, self.options.source_sets, self.options.renditions)
        self.prepared = {entry.config.name: entry for entry in prepared}
        self.all_sets = prepared
        if self.runtime.config.drop_in and (self.options.source_sets or self.options.renditions):
            self.all_sets = await prepare(self.runtime, (), ())
        config = self.runtime.config
        specs = [spec for entry in prepared for spec in entry.specs.values()]
        self.metadata = await LibraryMetadata.checked(
            self.runtime.sources.db, config.django, specs, caches=self.runtime.site_caches
        )
        for entry in prepared:
            index = config.sources.index(entry.config)
            if entry.placeholders is not None and entry.config.placeholder_columns is not None:
                targets = await self.runtime.sources.placeholder_targets(entry.config, index)
                self.placeholder_columns[entry.config.name] = targets
            for spec in entry.specs.values():
                if spec.column is not None:
                    target = await self.runtime.sources.column_target(entry.config, index, spec.column)
                    self.columns[(entry.config.name, spec.name)] = target

    async def run(self) -> None:
        auto = self.limits.render_workers == "auto"
        self.reporter.detail(
            f"render workers {self.render_workers}"
            + (f" (auto: {self.container.describe_cpus()})" if auto else "")
            + f", memory budget {format_bytes(self.budget.total)}"
            + (
                f" (auto: half of {self.container.describe_memory()})" if self.limits.memory == "auto" else ""
            ),
            event="sizing",
        )
        # files replaced in place: their fingerprints from one listing, before anything is planned
        await fingerprints.refresh(
            self.runtime, [entry.config for entry in self.prepared.values()], self.shard, self.reporter
        )
        self.reporter.start(f"{self.command}{' (dry run)' if self.dry_run else ''}")
        limits = self.limits
        async with anyio.create_task_group() as tg:
            tg.start_soon(self.count_totals)
            if self.in_processes and not self.dry_run:
                tg.start_soon(self.warm_pool)
            plan_send, plan_receive = stream(limits.page_size)
            tg.start_soon(self.plan, plan_send)
            if self.dry_run:
                plan_receive.close()
                return
            fetched_send, fetched_receive = stream(self.render_workers)
            rendered_send, rendered_receive = stream(self.render_workers)
            stored_send, stored_receive = stream(limits.io_concurrency)
            spawn_stage(tg, self.fetch_workers, self.fetch, plan_receive, fetched_send, "fetch")
            spawn_stage(tg, self.render_workers, self.render, fetched_receive, rendered_send, "render")
            spawn_stage(tg, limits.io_concurrency, self.put, rendered_receive, stored_send, "put")
            sink = BatchSink(
                self.record,
                max_weight=limits.record_batch,
                interval_s=limits.record_interval_s,
                weight=lambda stored: stored.weight,
            )
            tg.start_soon(sink.run, stored_receive)
        # every batch is recorded: the superseded objects left (fewer than DELETE_BATCH) go now
        to_delete, self.to_delete = self.to_delete, []
        await self.delete_superseded(to_delete)
        for note in self.metadata.after_deletes():
            self.reporter.info(note)

    # -- stages ----------------------------------------------------------------------

    async def count_totals(self) -> None:
        """The progress bar's total, and the renditions already up to date (skipped)."""
        total = 0
        for entry in self.prepared.values():
            counts = await self.runtime.sources.rendition_counts(
                entry.config.name, entry.identifiers, entry.spec_hashes, self.target_url
            )
            for row in counts:
                by_state = {"missing": row.missing, "damaged": row.damaged, "stale": row.stale}
                by_state["done"] = row.done
                total += sum(by_state[state] for state in self.states)
                self.counters.skipped += sum(n for state, n in by_state.items() if state not in self.states)
        limit = self.options.limit
        self.reporter.set_total(total if limit is None else min(total, limit))

    async def warm_pool(self) -> None:
        """Start the worker processes (and their libvips) while the first page is planned."""
        async with anyio.create_task_group() as tg:
            for _ in range(self.render_workers):
                tg.start_soon(
                    partial(
                        anyio.to_process.run_sync,
                        rendering.warm_up,
                        self.vips_settings,
                        limiter=self.render_limiter,
                    )
                )

    async def plan(self, send: MemoryObjectSendStream[WorkItem]) -> None:
        """Keyset pages of work, in order; stops at ``--limit`` or when asked to stop."""
        planned = 0
        limit = self.options.limit
        async with send:
            for entry in self.prepared.values():
                pages = self.runtime.sources.plan(
                    entry.config.name,
                    entry.identifiers,
                    entry.spec_hashes,
                    self.states,
                    self.target_url,
                    self.limits.page_size,
                    retry_failed=self.options.retry_failed,
                    shard=self.shard,
                    placeholders=entry.placeholders,
                )
                async for page in pages:
                    for item in page:
                        if (limit is not None and planned >= limit) or self.stop.is_set():
                            return
                        planned += 1
                        self.counters.sources += 1
                        if self.dry_run:
                            self.describe(item)
                            continue
                        await send.send(item)

    async def fetch(self, item: WorkItem, send: MemoryObjectSendStream[Fetched | Stored]) -> None:
        """GET the source once; a failure goes straight to the record stage."""
        if self.stop.is_set():
            return  # planned but not started: the next run plans it again
        source = self.runtime.source_store
        entry = self.prepared[item.source_set]
        reasons = [entry.specs[name].skip_reason(item.source_key) for name in item.renditions]
        if reasons and all(reasons):  # its library makes nothing of it: not a failure
            self.counters.not_rendered += 1
            why = "; ".join(sorted({reason for reason in reasons if reason}))
            self.reporter.info(f"skipped {item.source_set}: {item.source_key}: {why}")
            await send.send(Stored(item))
            return
        if self.target.location.holds_source_key(source.location, item.source_key):
            await send.send(failed(item, "source key lies under the target prefix", True))
            return
        reserved = 0

        async def admit(size: int, head: bytes) -> None:
            """Hold the source's bytes and its decode against the budget before reading on."""
            nonlocal reserved
            entry = self.prepared[item.source_set]
            specs = [entry.specs[name].for_source(item.source_key, item.ppoi) for name in item.renditions]
            cost = await anyio.to_thread.run_sync(rendering.decode_cost, head, specs)
            if cost is None:  # no header in the first bytes: assume the largest decode allowed
                amount = min(self.budget.total, size + self.worst_decode)
                what = f"{item.source_key} ({format_bytes(size)}, header unread)"
            else:
                amount = size + cost.bytes
                what = f"{item.source_key} ({cost.description}, {format_bytes(size)} of source)"
            await self.budget.reserve(amount, what)
            reserved = amount
            self.counters.memory_reserved_peak = self.budget.peak
            self.counters.memory_waits = self.budget.waits

        began = time.perf_counter()
        read_at = datetime.now(UTC)
        try:
            data, version = await source.get_versioned(
                item.source_key, max_bytes=self.limits.max_source_bytes, admit=admit
            )
        except (StoreError, ItemError) as error:  # an ItemError: over the budget, a bad PPOI
            self.budget.release(reserved)
            if isinstance(error, StoreError):
                self.store_failed(error)
            await send.send(failed(item, error.message, error.permanent, type(error).__name__))
            return
        except BaseException:
            self.budget.release(reserved)
            raise
        self.store_errors_in_a_row = 0
        self.observe("fetch", began)
        await send.send(Fetched(item, data, version, read_at, reserved=reserved))

    async def render(self, job: Fetched | Stored, send: MemoryObjectSendStream[Fetched | Stored]) -> None:
        """Decode once, every rendition from that decode: in a thread (or process), never here."""
        if isinstance(job, Stored):
            await send.send(job)
            return
        entry = self.prepared[job.item.source_set]
        try:
            specs = [
                entry.specs[name].for_source(job.item.source_key, job.item.ppoi)
                for name in job.item.renditions
            ]
            began = time.perf_counter()
            job.rendered = await self.render_off_loop(job.data, specs, job.item.placeholders)
            if job.item.placeholders:
                job.placeholders = job.rendered.pop().placeholders
            self.observe("render", began)
        except ItemError as error:
            await send.send(failed(job.item, error.message, error.permanent, type(error).__name__))
            return
        finally:
            job.data = b""  # the source's bytes are no longer needed: free them now
            self.budget.release(job.reserved)
            job.reserved = 0
        await send.send(job)

    async def render_off_loop(
        self, data: SourceBytes, specs: list[RenditionSpec], placeholders: bool = False
    ) -> list[Rendered]:
        limits = self.limits
        if self.in_processes:
            return await anyio.to_process.run_sync(
                rendering.render_in_worker,
                data,
                specs,
                limits.max_pixels,
                self.vips_settings,
                placeholders,
                limiter=self.render_limiter,
            )
        # a renderer of the tests' takes no placeholders argument unless asked for them
        function = partial(self.render_function, placeholders=True) if placeholders else self.render_function
        return await anyio.to_thread.run_sync(
            function, data, specs, limits.max_pixels, limiter=self.render_limiter
        )

    async def put(self, job: Fetched | Stored, send: MemoryObjectSendStream[Stored]) -> None:
        """Write each rendition; the rows to record follow the objects, never precede them."""
        if isinstance(job, Stored):
            await send.send(job)
            return
        item = job.item
        entry = self.prepared[item.source_set]
        stored = Stored(item, version=job.version)
        if job.placeholders is not None:
            version = entry.placeholders or PLACEHOLDER_VERSION
            stored.placeholders = PlaceholderRow(
                item.source_set, item.source_key, item.plain_fingerprint, version, job.placeholders
            )
        object_keys = [
            entry.specs[r.name].object_key(
                item.source_set, item.source_key, item.ppoi, transparent=r.transparent, width=r.width
            )
            for r in job.rendered
        ]
        object_keys = await self.metadata.claim(
            [
                Written(
                    entry.specs[r.name],
                    item.source_key,
                    r.source_size,
                    object_key,
                    (r.width, r.height),
                    row_key=item.row_key,
                    ppoi=item.ppoi,
                )
                for r, object_key in zip(job.rendered, object_keys, strict=True)
            ]
        )
        refused = await self.refuse_names(item, object_keys)
        if refused is not None:
            await send.send(refused)
            return
        began = time.perf_counter()
        written: set[str] = set()
        """This source's objects already written: the variants that share one are written once."""
        for rendition, object_key, old_key, old_bytes in zip(
            job.rendered, object_keys, item.old_object_keys, item.old_bytes, strict=True
        ):
            spec = entry.specs[rendition.name].for_source(item.source_key, item.ppoi)
            content_type = CONTENT_TYPES[rendition.format] if rendition.format else spec.content_type
            try:
                if object_key not in written:
                    await self.target.put(object_key, rendition.data, content_type)
                    written.add(object_key)
                    stored.digests[object_key] = rendition.digest
                    if old_key == object_key:  # rebuilt in place: its URL serves new bytes
                        self.changed.add([object_key])
                modified_ns = job.version.modified_ns if job.version is not None else None
                if spec.keeps_up_with_source and isinstance(self.target, LocalStore) and modified_ns:
                    # as old as the source version it shows: a source replaced since is newer
                    await self.target.set_modified(object_key, modified_ns)
            except StoreError as error:
                self.store_failed(error)
                stored.failure = failed(
                    item, f"{rendition.name}: {error.message}", False, type(error).__name__
                ).failure
                break
            self.store_errors_in_a_row = 0
            stored.rows.append(
                RecordRow(
                    item.source_set,
                    item.source_key,
                    rendition.name,
                    spec.spec_hash,
                    item.fingerprint_for(spec.crops_about_focal),
                    self.target_url,
                    object_key,
                    rendition.width,
                    rendition.height,
                    len(rendition.data),
                )
            )
            stored.written.append(
                Written(
                    spec,
                    item.source_key,
                    rendition.source_size,
                    object_key,
                    (rendition.width, rendition.height),
                    job.read_at,
                    row_key=item.row_key,
                    ppoi=item.ppoi,
                    replaces=old_key,
                )
            )
            if old_key is not None and old_key != object_key:
                stored.superseded.append((old_key, old_bytes or 0))
            self.reporter.detail(
                f"wrote {item.source_set}/{rendition.name} {self.target_url}{object_key} "
                f"({rendition.width}x{rendition.height}, {len(rendition.data):,} bytes)",
                event="rendition_written",
                source_key=item.source_key,
            )
        self.observe("put", began)
        await send.send(stored)

    async def record(self, batch: list[Stored]) -> None:
        """One batch: registry rows (shielded: the objects exist), counts, then superseded deletes."""
        # One row per key: a table may list the same image twice.
        rows = list({(r.source_set, r.source_key, r.rendition): r for s in batch for r in s.rows}.values())
        failures = list({(f.source_set, f.source_key): f for s in batch if (f := s.failure)}.values())
        with anyio.CancelScope(shield=True):
            # the library's rows first: if they fail, the registry does not call these done
            # and a re-run writes both again (rows naming stored objects are never wrong)
            lost = await self.metadata.record([entry for stored in batch for entry in stored.written])
            if lost:  # the site wrote these renditions' rows first: its names stand, ours go
                rows = await self.theirs(rows, lost)
                self.to_delete.extend((ours, 0) for ours in lost)
            await self.runtime.registry.record(rows)
            placeholders = [stored.placeholders for stored in batch if stored.placeholders is not None]
            await self.runtime.registry.record_placeholders(placeholders)
            await self.write_placeholders(batch)
            await self.runtime.registry.record_failures(failures, self.run_id)
            await self.write_back(batch)
        changed = await self.changed_sources(batch)
        if changed:
            with anyio.CancelScope(shield=True):
                await self.take_back(changed)
            batch = [stored for stored in batch if stored not in changed]
        counters = self.counters
        for stored in batch:
            counters.written += len(stored.rows)
            counters.placeholders += stored.placeholders is not None
            counters.stale += min(stored.item.states.count("stale"), len(stored.rows))
            counters.bytes_written += sum(row.bytes for row in stored.rows)
            if stored.failure is not None:
                where = f"{stored.item.source_set}: {stored.item.source_key}"
                counters.add_failure(f"{where}: {stored.failure.message}")
                self.reporter.info(
                    f"failed {where}: {stored.failure.error_class}: {stored.failure.message}",
                    event="source_failed",
                    source_key=stored.item.source_key,
                    level="error",
                )
        self.reporter.advance(sum(len(stored.item.renditions) for stored in batch))
        # Only after the replacements are recorded: a crash before the delete leaves an
        # unreferenced object (the orphan sweep's), never a row pointing at nothing.
        self.to_delete.extend(entry for stored in batch for entry in stored.superseded)
        while len(self.to_delete) >= DELETE_BATCH:
            chunk, self.to_delete = self.to_delete[:DELETE_BATCH], self.to_delete[DELETE_BATCH:]
            await self.delete_superseded(chunk)

    async def theirs(self, rows: list[RecordRow], lost: dict[str, str]) -> list[RecordRow]:
        """The registry's rows for renditions whose library rows the site wrote first: the
        site's object, with its size (a HEAD each: rare, a race with a page view)."""
        sizes: dict[str, int | None] = {}
        for name in set(lost.values()):
            version = await self.target.version(name)
            sizes[name] = None if version is None else version.size
        changed = []
        for row in rows:
            if row.object_key in lost:
                name = lost[row.object_key]
                row = replace(row, object_key=name, bytes=sizes[name] or row.bytes)
            changed.append(row)
        return changed

    async def changed_sources(self, batch: list[Stored]) -> list[Stored]:
        """The sources of this recorded batch that are no longer the version that was read:
        replaced or deleted by the site while they were rendered. Asked after the rows are
        recorded, so that a replacement either comes after this look (the site's own clearing of
        its rows then follows ours) or is seen by it: one ``stat`` per source on disk, one HEAD on
        S3, several in flight."""
        asked = [stored for stored in batch if stored.rows and stored.version is not None]
        if not asked:
            return []
        source = self.runtime.source_store
        limiter = anyio.CapacityLimiter(self.limits.io_concurrency)
        changed: list[Stored] = []

        async def look(stored: Stored) -> None:
            async with limiter:
                try:
                    now = await source.version(stored.item.source_key)
                except StoreError as error:  # unknown: keep what was recorded, say so
                    self.reporter.info(
                        f"warning: {stored.item.source_set}: {stored.item.source_key}: could not check "
                        f"that it is still the version rendered: {error.message}",
                        level="warning",
                    )
                    return
            if now is None or stored.version is None or now.tag != stored.version.tag:
                changed.append(stored)

        async with anyio.create_task_group() as tg:
            for stored in asked:
                tg.start_soon(look, stored)
        return changed

    async def take_back(self, changed: list[Stored]) -> None:
        """Undo what was recorded of sources that changed while they were rendered: the
        library's rows and cache keys, our rows, the columns naming them, then the objects that
        still hold what this run wrote (a site may have written the same name since). Nothing of
        the old version stays recorded as current; the next run renders the current one."""
        gone = [
            PlannedDelete(row.object_key, row.bytes, row.source_set, row.source_key, row.rendition)
            for stored in changed
            for row in stored.rows
        ]
        await self.metadata.forget([Gone(item.object_key, item.source_key) for item in gone])
        await self.runtime.registry.unrecord(self.target_url, gone)
        for (source_set, _), target in self.columns.items():
            ids = self.prepared[source_set].identifiers
            names = [item.object_key for item in gone if item.source_set == source_set]
            await self.runtime.sources.clear_column(ids, target, names)
        ours: list[tuple[str, int]] = []
        for stored in changed:
            for object_key, digest in stored.digests.items():
                if digest and await self.holds(object_key, digest):
                    ours.append((object_key, 0))
        referenced = await self.runtime.registry.referenced_object_keys(
            self.target_url, [key for key, _ in ours]
        )
        result = await self.superseded.delete([entry for entry in ours if entry[0] not in referenced])
        self.changed.add(result.deleted)
        for stored in changed:
            self.counters.source_changed += 1
            self.reporter.info(
                f"{stored.item.source_set}: {stored.item.source_key} changed while it was rendered: "
                "nothing of the version read was kept; the next run renders the current one",
                event="source_changed",
                source_key=stored.item.source_key,
                level="warning",
            )

    async def holds(self, object_key: str, digest: str) -> bool:
        """Whether the target object still holds the bytes of this MD5."""
        try:
            data = await self.target.get(object_key)
        except StoreError:
            return False
        return await anyio.to_thread.run_sync(lambda: hashlib.md5(data).hexdigest() == digest)

    async def delete_superseded(self, objects: list[tuple[str, int]]) -> None:
        """Delete replaced objects, then what their library kept of them (sorl's, easy-thumbnails'
        rows): no row is left naming an object that is gone.

        An object a row references now is not superseded whatever replaced it: a width set's
        variants share the object of the width they collapse into, and a re-rendered source
        can make a variant's old object another's new one.
        """
        objects = list(dict(objects).items())
        if not objects:
            return
        referenced = await self.runtime.registry.referenced_object_keys(
            self.target_url, [key for key, _ in objects]
        )
        objects = [(key, size) for key, size in objects if key not in referenced]
        if not objects:
            return
        with anyio.CancelScope(shield=True):
            # the library's order: its rows and cache keys, then the files (then once more, for
            # rows a page view wrote again in between)
            await self.metadata.forget([Gone(key, None) for key, _ in objects])
            result = await self.superseded.delete(objects)
            if result.deleted:
                await self.metadata.forget([Gone(key, None) for key in result.deleted])
        self.changed.add(result.deleted)

    async def refuse_names(self, item: WorkItem, object_keys: list[str]) -> Stored | None:
        """At the storage root, only names of the preset's pattern that no source row references.

        Checked in SQL just before the write, against every source set's table: a name that
        is (or has become) a source's file is refused, whatever the preset computed.
        """
        if not self.runtime.config.drop_in:
            return None
        entry = self.prepared[item.source_set]
        for name, object_key in zip(item.renditions, object_keys, strict=True):
            if not entry.specs[name].owns(object_key):
                return failed(
                    item, f"{name}: {object_key!r} is not a name of its preset's pattern: refused", True
                )
            column = self.columns.get((item.source_set, name))
            if column is not None and column.max_length is not None and len(object_key) > column.max_length:
                return failed(
                    item,
                    f"{name}: the name {object_key!r} has {len(object_key)} characters, more than the "
                    f"{column.max_length} of column {column.column}: not written, never truncated",
                    True,
                )
        referenced = await self.runtime.sources.referenced_source_keys(self.source_tables(), object_keys)
        if referenced:
            names = ", ".join(sorted(referenced))
            return failed(item, f"{names}: a source row references this name; refused to overwrite it", True)
        return None

    def source_tables(self) -> list[SourceIdentifiers]:
        """Every configured source set's table (all of them list files on this store)."""
        return [entry.identifiers for entry in self.all_sets]

    async def write_back(self, batch: list[Stored]) -> None:
        """Fill the renditions' columns (batched UPDATEs by key), once their rows are recorded."""
        if not self.columns:
            return
        wanted: dict[tuple[str, str], list[tuple[str, str, str | None]]] = {}
        for stored in batch:
            item = stored.item
            previous = dict(zip(item.renditions, item.old_object_keys, strict=True))
            for row in stored.rows:
                if (row.source_set, row.rendition) in self.columns and item.row_key is not None:
                    wanted.setdefault((row.source_set, row.rendition), []).append(
                        (item.row_key, row.object_key, previous.get(row.rendition))
                    )
        for (source_set, rendition), updates in wanted.items():
            target = self.columns[(source_set, rendition)]
            ids = self.prepared[source_set].identifiers
            changed = await self.runtime.sources.write_back(ids, target, updates, self.options.force)
            self.counters.columns_written += len(changed)
            for row_key, name, _ in updates:
                if row_key not in changed:
                    self.counters.columns_kept += 1
                    entry = self.prepared[source_set]
                    where = f"{entry.config.table}.{entry.specs[rendition].column}"
                    self.reporter.info(
                        f"kept {where} where {entry.config.key_column} = {row_key}: it holds a name the "
                        f"application wrote, not {name!r} (--force overwrites it)"
                    )

    async def write_placeholders(self, batch: list[Stored]) -> None:
        """Fill the sets' placeholder columns, once the placeholders are recorded."""
        for source_set, targets in self.placeholder_columns.items():
            rows = [
                (stored.item.row_key, stored.placeholders.placeholders)
                for stored in batch
                if stored.item.source_set == source_set
                and stored.placeholders is not None
                and stored.item.row_key is not None
            ]
            ids = self.prepared[source_set].identifiers
            self.counters.columns_written += await self.runtime.sources.write_placeholders(ids, targets, rows)

    # -- helpers ---------------------------------------------------------------------

    def store_failed(self, error: StoreError) -> None:
        """Count a failed store request; too many in a row is an outage: stop the run."""
        if isinstance(error, ItemError):
            return  # about this item (missing, unsafe, too large), not about the store
        if isinstance(error, CredentialsRefused):
            raise CredentialsRefused(f"{error.message}; the run stops (a re-run resumes)") from error
        self.store_errors_in_a_row += 1
        if self.store_errors_in_a_row >= self.limits.max_consecutive_store_errors:
            raise StoreError(
                f"{self.store_errors_in_a_row} store requests failed in a row after their retries, "
                f"so the run stops (a re-run resumes): {error.message}"
            ) from error

    def observe(self, stage: str, began: float) -> None:
        """A source's time in a stage, for the metrics' histograms."""
        if self.reporter.metrics is not None:
            self.reporter.metrics.observe(stage, time.perf_counter() - began)

    def describe(self, item: WorkItem) -> None:
        """--dry-run: one line per rendition that would be written, and its counts."""
        entry = self.prepared[item.source_set]
        for name, state in zip(item.renditions, item.states, strict=True):
            object_key = entry.specs[name].object_key(item.source_set, item.source_key, item.ppoi)
            self.reporter.info(
                f"would write {item.source_set}/{name} {object_key} ({state}) from {item.source_key}"
            )
        if item.placeholders:
            self.reporter.info(f"would make the placeholders of {item.source_set}: {item.source_key}")
            self.counters.placeholders += 1
        self.counters.written += len(item.renditions)
        self.counters.stale += item.states.count("stale")
        for name in item.renditions:
            target = self.columns.get((item.source_set, name))
            if target is not None:
                object_key = entry.specs[name].object_key(item.source_set, item.source_key, item.ppoi)
                where = f"{entry.config.table}.{entry.specs[name].column}"
                self.reporter.info(
                    f"would set {where} = {object_key!r} where {entry.config.key_column} = {item.row_key}"
                )


def failed(item: WorkItem, message: str, permanent: bool, error_class: str = "Error") -> Stored:
    """A source that failed, on its way to the failures table."""
    return Stored(
        item,
        failure=FailureRow(
            item.source_set, item.source_key, item.fingerprint, error_class, message, permanent
        ),
    )
