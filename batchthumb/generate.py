"""``generate`` and ``regenerate``: plan -> fetch -> render -> put -> record.

- **plan** streams keyset pages of work from one SQL query per page (the source
  table anti-joined against the registry), so a finished table costs one pass
  over Postgres and not a single store request;
- **fetch** GETs each source once, a bounded number at a time;
- **render** decodes it once and derives every rendition, in worker threads;
- **put** writes the objects concurrently;
- **record** upserts registry rows in batches, only after their objects are
  stored, and only then deletes the objects they superseded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

import anyio
import anyio.to_process
import anyio.to_thread
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from batchthumb.config import SourceSetConfig
from batchthumb.errors import (
    BatchthumbError,
    ConfigError,
    ObjectNotFound,
    StoreError,
    UnsafeKeyError,
)
from batchthumb.locks import run_lock
from batchthumb.pipeline import Counters, first_cause, spawn_stage, stream
from batchthumb.queries import SourceIdentifiers
from batchthumb.registry import FailureRow, RecordRow, WorkItem
from batchthumb.render import Rendered, render, render_in_worker, warm_up
from batchthumb.report import Reporter
from batchthumb.runtime import Runtime
from batchthumb.shards import WHOLE, Shard
from batchthumb.specs import RenditionSpec, specs_for
from batchthumb.stores import DELETE_BATCH

Command = Literal["generate", "regenerate"]
RenderFunction = Callable[[bytes, Sequence[RenditionSpec], int], list[Rendered]]
"""A renderer that runs in threads: tests and the bench pass their own."""

STATES: dict[tuple[Command, bool], tuple[str, ...]] = {
    ("generate", False): ("missing",),
    ("generate", True): ("missing", "stale", "done"),
    ("regenerate", False): ("stale",),
    ("regenerate", True): ("missing", "stale", "done"),
}
"""Which planned states each command works on, without and with ``--force``."""


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


@dataclass(frozen=True)
class PreparedSet:
    config: SourceSetConfig
    identifiers: SourceIdentifiers
    specs: dict[str, RenditionSpec]


@dataclass
class Job:
    item: WorkItem
    data: bytes = b""
    rendered: list[Rendered] = field(default_factory=list)


@dataclass
class Outcome:
    """What the record stage receives for one source: stored rows, or a failure, or both."""

    item: WorkItem
    rows: list[RecordRow] = field(default_factory=list)
    superseded: list[tuple[str, int]] = field(default_factory=list)
    """(object key, bytes) of objects the new renditions replace under another key."""
    failure: FailureRow | None = None


async def prepare(runtime: Runtime, options: GenerateOptions) -> list[PreparedSet]:
    """Resolve the selected source sets and renditions, and check them against the catalog."""
    config = runtime.config
    await runtime.registry.check_ready()
    selected = [config.source_set(name) for name in options.source_sets] or list(config.sources)
    unknown = [name for name in options.renditions if name not in config.renditions]
    if unknown:
        raise ConfigError(
            f"no rendition named {', '.join(map(repr, unknown))} (configured: {', '.join(config.renditions)})"
        )
    prepared = []
    for source_set in selected:
        index = config.sources.index(source_set)
        identifiers = await runtime.registry.source_identifiers(source_set, index)
        wanted = config.renditions_for(source_set)
        if options.renditions:
            wanted = {name: spec for name, spec in wanted.items() if name in options.renditions}
        if wanted:
            specs = {spec.name: spec for spec in specs_for(wanted)}
            prepared.append(PreparedSet(source_set, identifiers, specs))
    return prepared


async def run_generate(
    runtime: Runtime,
    options: GenerateOptions,
    reporter: Reporter,
    *,
    render_function: RenderFunction | None = None,
    stop: anyio.Event | None = None,
) -> Counters:
    """Run ``generate`` or ``regenerate``; return the counters (the summary is the caller's).

    Setting ``stop`` ends the run gracefully: nothing new is planned or fetched, the items
    already fetched are rendered, stored and recorded, and ``counters.interrupted`` is set.
    """
    stop = stop or anyio.Event()
    limits = runtime.config.limits
    registry = runtime.registry
    source_store, target_store = runtime.source_store, runtime.target_store
    target_url = runtime.target_url
    source_location = source_store.location
    states = STATES[(options.command, options.force)]
    prepared = await prepare(runtime, options)
    by_name = {entry.config.name: entry for entry in prepared}
    counters = Counters()

    render_workers = limits.render_worker_count
    fetch_workers = min(limits.io_concurrency, max(8, 4 * render_workers))
    render_limiter = anyio.CapacityLimiter(render_workers)
    in_processes = render_function is None and limits.render_pool == "process"
    vips_settings = (limits.block_untrusted, limits.vips_threads, limits.blocked_loaders)

    async def rendered(data: bytes, specs: list[RenditionSpec]) -> list[Rendered]:
        if in_processes:
            return await anyio.to_process.run_sync(
                render_in_worker, data, specs, limits.max_pixels, vips_settings, limiter=render_limiter
            )
        return await anyio.to_thread.run_sync(
            render_function or render, data, specs, limits.max_pixels, limiter=render_limiter
        )

    async def warm_pool() -> None:
        # Start the worker processes (and their libvips) while the first page is planned.
        async with anyio.create_task_group() as tg:
            for _ in range(render_workers):
                tg.start_soon(
                    partial(anyio.to_process.run_sync, warm_up, vips_settings, limiter=render_limiter)
                )

    async def count_totals() -> None:
        total = 0
        for entry in prepared:
            specs = [(spec.name, spec.spec_hash) for spec in entry.specs.values()]
            counts = await registry.rendition_counts(entry.config.name, entry.identifiers, specs, target_url)
            for row in counts:
                by_state = {"missing": row.missing, "stale": row.stale, "done": row.done}
                total += sum(by_state[state] for state in states)
                counters.skipped += sum(n for state, n in by_state.items() if state not in states)
        reporter.set_total(total if options.limit is None else min(total, options.limit))

    async def plan(send: MemoryObjectSendStream[WorkItem]) -> None:
        planned = 0
        async with send:
            for entry in prepared:
                specs = [(spec.name, spec.spec_hash) for spec in entry.specs.values()]
                pages = registry.plan(
                    entry.config.name,
                    entry.identifiers,
                    specs,
                    states,
                    target_url,
                    limits.page_size,
                    retry_failed=options.retry_failed,
                    shard=options.shard,
                )
                async for page in pages:
                    for item in page:
                        if options.limit is not None and planned >= options.limit:
                            return
                        if stop.is_set():
                            return
                        planned += 1
                        counters.sources += 1
                        if options.dry_run:
                            describe_planned(item, entry, reporter)
                            counters.written += len(item.renditions)
                            counters.stale += item.states.count("stale")
                            continue
                        await send.send(item)

    store_errors_in_a_row = 0

    def store_error(exc: BatchthumbError) -> None:
        """Count a failed store request; too many in a row is an outage: stop the run."""
        nonlocal store_errors_in_a_row
        if not isinstance(exc, StoreError) or isinstance(exc, ObjectNotFound | UnsafeKeyError):
            return  # about this item, not about the store
        store_errors_in_a_row += 1
        if store_errors_in_a_row >= limits.max_consecutive_store_errors:
            raise StoreError(
                f"{store_errors_in_a_row} store requests failed in a row after their retries, "
                f"so the run stops (a re-run resumes): {exc.message}"
            ) from exc

    def store_ok() -> None:
        nonlocal store_errors_in_a_row
        store_errors_in_a_row = 0

    async def fetch(item: WorkItem, send: MemoryObjectSendStream[Job | Outcome]) -> None:
        if stop.is_set():
            return  # planned but not started: the next run plans it again
        if target_store.location.holds_source_key(source_location, item.source_key):
            await send.send(fail(item, "source key lies under the target prefix", True))
            return
        try:
            data = await source_store.get(item.source_key, max_bytes=limits.max_source_bytes)
        except BatchthumbError as exc:
            store_error(exc)
            await send.send(fail(item, exc.message, exc.permanent, type(exc).__name__))
            return
        store_ok()
        await send.send(Job(item, data))

    async def render_stage(job: Job | Outcome, send: MemoryObjectSendStream[Job | Outcome]) -> None:
        if isinstance(job, Outcome):
            await send.send(job)
            return
        specs = [by_name[job.item.source_set].specs[name] for name in job.item.renditions]
        try:
            job.rendered = await rendered(job.data, specs)
        except BatchthumbError as exc:
            await send.send(fail(job.item, exc.message, exc.permanent, type(exc).__name__))
            return
        job.data = b""  # the source's bytes are no longer needed: free them now
        await send.send(job)

    async def put(job: Job | Outcome, send: MemoryObjectSendStream[Outcome]) -> None:
        if isinstance(job, Outcome):
            await send.send(job)
            return
        item = job.item
        entry = by_name[item.source_set]
        outcome = Outcome(item)
        for rendered, old_key, old_bytes in zip(
            job.rendered, item.old_object_keys, item.old_bytes, strict=True
        ):
            spec = entry.specs[rendered.name]
            object_key = spec.object_key(item.source_set, item.source_key)
            try:
                await target_store.put(object_key, rendered.data, spec.content_type)
                store_ok()
            except BatchthumbError as exc:
                store_error(exc)
                failed = fail(item, f"{rendered.name}: {exc.message}", False, type(exc).__name__)
                outcome.failure = failed.failure
                break
            outcome.rows.append(
                RecordRow(
                    item.source_set,
                    item.source_key,
                    rendered.name,
                    spec.spec_hash,
                    item.fingerprint,
                    target_url,
                    object_key,
                    rendered.width,
                    rendered.height,
                    len(rendered.data),
                )
            )
            if old_key is not None and old_key != object_key:
                outcome.superseded.append((old_key, old_bytes or 0))
            reporter.detail(
                f"wrote {item.source_set}/{rendered.name} {target_url}{object_key} "
                f"({rendered.width}x{rendered.height}, {len(rendered.data):,} bytes)"
            )
        await send.send(outcome)

    async def record(receive: MemoryObjectReceiveStream[Outcome]) -> None:
        batch: list[Outcome] = []
        size = 0  # registry rows the batch will write
        async with receive:
            while True:
                with anyio.move_on_after(limits.record_interval_s):
                    async for outcome in receive:
                        batch.append(outcome)
                        size += len(outcome.rows) + (outcome.failure is not None)
                        if size >= limits.record_batch:
                            break
                    else:
                        await flush(batch)
                        return
                await flush(batch)
                batch, size = [], 0

    async def flush(batch: list[Outcome]) -> None:
        if not batch:
            return
        # One row per key: a table may list the same image twice.
        rows = list({(r.source_set, r.source_key, r.rendition): r for o in batch for r in o.rows}.values())
        failures = list({(f.source_set, f.source_key): f for o in batch if (f := o.failure)}.values())
        with anyio.CancelScope(shield=True):
            await registry.record(rows)
            await registry.record_failures(failures, run_id)
        for outcome in batch:
            stale = outcome.item.states.count("stale")
            counters.written += len(outcome.rows)
            counters.stale += min(stale, len(outcome.rows))
            counters.bytes_written += sum(row.bytes for row in outcome.rows)
            if outcome.failure is not None:
                counters.add_failure(
                    f"{outcome.item.source_set}: {outcome.item.source_key}: {outcome.failure.message}"
                )
                reporter.info(
                    f"failed {outcome.item.source_set}: {outcome.item.source_key}: "
                    f"{outcome.failure.error_class}: {outcome.failure.message}"
                )
        reporter.advance(sum(len(outcome.item.renditions) for outcome in batch))
        superseded = [entry for outcome in batch for entry in outcome.superseded]
        await delete_superseded(superseded)

    async def delete_superseded(objects: list[tuple[str, int]]) -> None:
        # Only after the replacements are recorded: a crash before this line leaves an
        # unreferenced object (the orphan sweep's), never a row pointing at nothing.
        sizes = dict(objects)
        keys = list(sizes)
        for start in range(0, len(keys), DELETE_BATCH):
            chunk = keys[start : start + DELETE_BATCH]
            result = await target_store.delete_many(chunk)
            counters.deleted += len(result.deleted)
            counters.bytes_deleted += sum(sizes[key] for key in result.deleted)
            for key, reason in result.errors.items():
                reporter.info(f"could not delete superseded {target_url}{key}: {reason}")
            for key in result.deleted:
                reporter.detail(f"deleted superseded {target_url}{key}")

    lock_key = f"{options.command} {target_url} {','.join(sorted(by_name))} shard {options.shard}"
    async with AsyncExitStack() as stack:
        lock_pid = None
        if not options.dry_run:
            lock_pid = await stack.enter_async_context(
                run_lock(runtime.config.database, lock_key, options.wait)
            )
        run_id = await registry.start_run(options.command, _arguments(options), options.shard, lock_pid)
        outcome = "failed"
        started = time.monotonic()
        reporter.start(f"{options.command}{' (dry run)' if options.dry_run else ''}")
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(count_totals)
                if in_processes and not options.dry_run:
                    tg.start_soon(warm_pool)
                plan_send, plan_receive = stream(limits.page_size)
                tg.start_soon(plan, plan_send)
                if options.dry_run:
                    plan_receive.close()
                else:
                    fetched_send, fetched_receive = stream(render_workers)
                    rendered_send, rendered_receive = stream(render_workers)
                    outcome_send, outcome_receive = stream(limits.io_concurrency)
                    spawn_stage(tg, fetch_workers, fetch, plan_receive, fetched_send, "fetch")
                    spawn_stage(tg, render_workers, render_stage, fetched_receive, rendered_send, "render")
                    spawn_stage(tg, limits.io_concurrency, put, rendered_receive, outcome_send, "put")
                    tg.start_soon(record, outcome_receive)
            if stop.is_set():
                counters.interrupted = "interrupted"
            outcome = counters.outcome
        except BaseExceptionGroup as group:
            outcome = "failed"
            cause = first_cause(group)
            if isinstance(cause, KeyboardInterrupt):
                outcome = "interrupted"
            if cause is group:
                raise
            raise cause from cause.__cause__
        except BaseException as exc:
            outcome = (
                "interrupted"
                if isinstance(exc, KeyboardInterrupt | anyio.get_cancelled_exc_class())
                else "failed"
            )
            raise
        finally:
            reporter.stop()
            counters_out = {**counters.as_dict(), "duration_s": round(time.monotonic() - started, 3)}
            with anyio.CancelScope(shield=True):
                await registry.finish_run(run_id, counters_out, outcome)
        return counters


def fail(item: WorkItem, message: str, permanent: bool, error_class: str = "Error") -> Outcome:
    return Outcome(
        item,
        failure=FailureRow(
            item.source_set, item.source_key, item.fingerprint, error_class, message, permanent
        ),
    )


def describe_planned(item: WorkItem, entry: PreparedSet, reporter: Reporter) -> None:
    for name, state in zip(item.renditions, item.states, strict=True):
        object_key = entry.specs[name].object_key(item.source_set, item.source_key)
        reporter.info(f"would write {item.source_set}/{name} {object_key} ({state}) from {item.source_key}")


def _arguments(options: GenerateOptions) -> dict[str, Any]:
    return {
        "source_sets": list(options.source_sets),
        "renditions": list(options.renditions),
        "force": options.force,
        "limit": options.limit,
        "dry_run": options.dry_run,
        "retry_failed": options.retry_failed,
        "shard": str(options.shard),
    }
