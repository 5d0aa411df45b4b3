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
- **unrecord**: the registry rows of the objects actually deleted, after them, so
  an interruption never leaves a row pointing at nothing.
"""

from __future__ import annotations

import re
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from batchthumb.errors import ConfigError, PurgeRefused, StoreError, UsageError
from batchthumb.locks import run_lock
from batchthumb.pipeline import RunCounters, first_cause, stream
from batchthumb.registry import PlannedDelete, PurgePlan
from batchthumb.report import Reporter
from batchthumb.runtime import Runtime
from batchthumb.shards import WHOLE, Shard
from batchthumb.stores import DELETE_BATCH

PurgeKind = Literal["referenced", "orphans", "prefix"]
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
    dry_run: bool = False
    max_delete: int | None = None
    shard: Shard = WHOLE
    """Only the objects whose source key (or, for listed objects, object key) hashes to it."""
    wait: bool = False
    """Wait for the run lock instead of exiting when another purge holds it."""


@dataclass
class PurgeCounters(RunCounters):
    """What a purge did; ``failed`` counts objects a delete reported an error for."""

    listed: int = 0
    """Objects found by listing the target prefix."""
    referenced: int = 0
    """Listed objects the registry references (kept)."""
    too_young: int = 0
    """Unreferenced objects younger than the grace (kept)."""
    planned: int = 0
    """Objects selected for deletion (what --dry-run lists)."""
    planned_bytes: int = 0
    deleted: int = 0
    bytes_deleted: int = 0
    rows_removed: int = 0


async def run_purge(
    runtime: Runtime, options: PurgeOptions, reporter: Reporter, stop: anyio.Event | None = None
) -> PurgeCounters:
    """Plan, check, then (unless a dry run) delete and unrecord.

    Setting ``stop`` ends the run gracefully: no new delete batch starts, the batches under
    way finish deleting and unrecording, and ``counters.interrupted`` is set.
    """
    stop = stop or anyio.Event()
    registry, target = runtime.registry, runtime.target_url
    counters = PurgeCounters()
    await registry.check_ready()
    _check_options(runtime, options)
    # every purge of a target, whatever its kind, takes the same lock: purges never overlap
    async with AsyncExitStack() as stack:
        lock_pid = None
        if not options.dry_run:
            lock_key = f"purge {target} shard {options.shard}"
            lock_pid = await stack.enter_async_context(
                run_lock(runtime.config.database, lock_key, options.wait)
            )
        run_id = await registry.start_run(
            f"purge {options.kind}", _arguments(options), options.shard, lock_pid
        )
        outcome = "failed"
        started = time.monotonic()
        try:
            async with registry.purge_plan() as plan:
                await _plan(runtime, options, plan, counters, reporter)
                await plan.keep_shard(options.shard)
                counters.planned, counters.planned_bytes = await plan.summary()
                if options.max_delete is not None and counters.planned > options.max_delete:
                    raise PurgeRefused(
                        f"purge {options.kind} would delete {counters.planned:,} objects, more than "
                        f"--max-delete {options.max_delete:,}: nothing was deleted"
                    )
                if options.dry_run:
                    async for page in plan.pages(DELETE_BATCH):
                        for item in page:
                            reporter.info(
                                f"would delete {target}{item.object_key}"
                                + (f" ({item.bytes:,} bytes)" if reporter.verbose else "")
                            )
                else:
                    kept = await _delete(runtime, options, plan, counters, reporter, stop)
                    if options.kind == "prefix" and not stop.is_set():
                        counters.rows_removed += await registry.unrecord_target_except(target, kept)
            if stop.is_set():
                counters.interrupted = "interrupted"
            outcome = counters.outcome
        except BaseExceptionGroup as group:
            cause = first_cause(group)
            if cause is group:
                raise
            raise cause from cause.__cause__
        finally:
            reporter.stop()
            counts = {**counters.as_dict(), "duration_s": round(time.monotonic() - started, 3)}
            with anyio.CancelScope(shield=True):
                await registry.finish_run(run_id, counts, outcome)
        return counters


def _check_options(runtime: Runtime, options: PurgeOptions) -> None:
    config = runtime.config
    if options.kind != "referenced" and (options.source_keys is not None or options.unconfigured):
        raise UsageError("source keys and --unconfigured apply to `purge referenced` only")
    if options.kind == "prefix" and (options.source_sets or options.renditions):
        raise UsageError("`purge prefix` takes the whole prefix: no --source or --rendition")
    if options.kind == "orphans":
        for name in options.source_sets:
            config.source_set(name)  # raises ConfigError for an unknown one
    if options.max_delete is not None and options.max_delete < 0:
        raise UsageError("--max-delete must be 0 or more")
    if options.older_than_s < 0:
        raise ConfigError("--older-than must not be negative")


async def _plan(
    runtime: Runtime, options: PurgeOptions, plan: PurgePlan, counters: PurgeCounters, reporter: Reporter
) -> None:
    config, registry, target = runtime.config, runtime.registry, runtime.target_url
    if options.kind == "referenced":
        configured = [
            f"{source_set.name}/{rendition}"
            for source_set in config.sources
            for rendition in config.renditions_for(source_set)
        ]
        await plan.add_query(
            "plan_referenced",
            target,
            list(options.source_sets),
            list(options.renditions),
            None if options.source_keys is None else list(options.source_keys),
            options.unconfigured,
            configured,
        )
        return
    if options.kind == "orphans":
        selected = [config.source_set(name) for name in options.source_sets] or list(config.sources)
        for source_set in selected:
            index = config.sources.index(source_set)
            ids = await registry.source_identifiers(source_set, index)
            await plan.add_query(
                "plan_orphan_rows", source_set.name, target, table=ids.table, path_column=ids.path_column
            )
    await _sweep_listing(runtime, options, plan, counters, reporter)


async def _sweep_listing(
    runtime: Runtime, options: PurgeOptions, plan: PurgePlan, counters: PurgeCounters, reporter: Reporter
) -> None:
    """List the whole target prefix into the plan; any failed page aborts the purge."""
    registry, store, target = runtime.registry, runtime.target_store, runtime.target_url
    cutoff = datetime.now(UTC) - timedelta(seconds=options.older_than_s)
    try:
        async for page in store.list_pages():
            counters.listed += len(page)
            if options.kind == "prefix":
                await plan.add_objects([(info.key, info.size) for info in page])
                continue
            referenced = await registry.referenced_object_keys(target, [info.key for info in page])
            counters.referenced += len(referenced)
            unreferenced = [info for info in page if info.key not in referenced]
            old = [info for info in unreferenced if info.last_modified < cutoff]
            counters.too_young += len(unreferenced) - len(old)
            await plan.add_objects([(info.key, info.size) for info in old])
    except StoreError as exc:
        raise StoreError(f"listing {target} failed, so nothing was deleted: {exc.message}") from exc
    reporter.detail(f"listed {counters.listed:,} objects under {target}")


async def _delete(
    runtime: Runtime,
    options: PurgeOptions,
    plan: PurgePlan,
    counters: PurgeCounters,
    reporter: Reporter,
    stop: anyio.Event,
) -> list[str]:
    """Delete the plan in batches, several in flight; unrecord what went. Return the keys kept."""
    registry, store, target = runtime.registry, runtime.target_store, runtime.target_url
    workers = max(1, min(16, runtime.config.limits.io_concurrency // 8))
    kept: list[str] = []
    reporter.start(f"purge {options.kind}", total=counters.planned)

    async def produce(send: MemoryObjectSendStream[list[PlannedDelete]]) -> None:
        async with send:
            async for page in plan.pages(DELETE_BATCH):
                if stop.is_set():
                    return
                await send.send(page)

    async def delete(receive: MemoryObjectReceiveStream[list[PlannedDelete]]) -> None:
        async with receive:
            async for batch in receive:
                await delete_batch(batch)

    async def delete_batch(batch: list[PlannedDelete]) -> None:
        if stop.is_set():
            return  # queued, not started
        if options.kind == "orphans":
            # A listed object may have been recorded since it was listed: check again, just before.
            listed = [item.object_key for item in batch if item.source_set is None]
            now_referenced = await registry.referenced_object_keys(target, listed) if listed else set()
            batch = [item for item in batch if item.object_key not in now_referenced]
        result = await store.delete_many([item.object_key for item in batch])
        deleted = set(result.deleted)
        gone = [item for item in batch if item.object_key in deleted]
        for item in batch:
            if item.object_key in result.errors:
                kept.append(item.object_key)
                counters.add_failure(f"{target}{item.object_key}: {result.errors[item.object_key]}")
                reporter.info(f"could not delete {target}{item.object_key}: {result.errors[item.object_key]}")
        with anyio.CancelScope(shield=True):
            counters.rows_removed += await registry.unrecord(target, gone)
        counters.deleted += len(gone)
        counters.bytes_deleted += sum(item.bytes for item in gone)
        for item in gone:
            reporter.detail(f"deleted {target}{item.object_key} ({item.bytes:,} bytes)")
        reporter.advance(len(batch))

    send, receive = stream(workers)
    async with anyio.create_task_group() as tg:
        tg.start_soon(produce, send)
        with receive:
            for _ in range(workers):
                tg.start_soon(delete, receive.clone())
    return kept


def _arguments(options: PurgeOptions) -> dict[str, Any]:
    return {
        "source_sets": list(options.source_sets),
        "renditions": list(options.renditions),
        "source_keys": None if options.source_keys is None else len(options.source_keys),
        "unconfigured": options.unconfigured,
        "older_than_s": options.older_than_s,
        "dry_run": options.dry_run,
        "max_delete": options.max_delete,
        "shard": str(options.shard),
    }
