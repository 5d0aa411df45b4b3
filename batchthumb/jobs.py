"""The job layer: what each command does, below the command line and above the jobs.

The CLI parses arguments, calls one of these and prints what it returns; the demo
calls them too. Here the config becomes a runtime, libvips is set up, signals are
watched, and a job's counters become an exit status. Nothing here prints but the
``Reporter`` it is given, and nothing here imports the CLI.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO

import anyio

from batchthumb import render
from batchthumb.adopt import AdoptJob, AdoptOptions
from batchthumb.config import Config
from batchthumb.counters import Finished, RunCounters
from batchthumb.errors import ExitStatus
from batchthumb.generate import GenerateJob, GenerateOptions, prepare
from batchthumb.lifecycle import Job
from batchthumb.manifest import ManifestFormat, write_manifest
from batchthumb.metadata import Gone, LibraryMetadata
from batchthumb.purge import OrphanPurge, PrefixPurge, PurgeJob, PurgeKind, PurgeOptions, ReferencedPurge
from batchthumb.registry import Registry
from batchthumb.report import Reporter
from batchthumb.runtime import Runtime, open_runtime
from batchthumb.signals import Stopper
from batchthumb.uploads import UploadPurge
from batchthumb.verify import VerifyJob, VerifyOptions

CLEAR_BATCH = 1000
"""Registry rows forgotten per statement when the libraries' rows go with them."""


def configure_libvips(config: Config) -> None:
    """libvips' process-wide settings, from the config's limits (before any render)."""
    render.configure(
        block_untrusted=config.limits.block_untrusted,
        threads=config.limits.vips_threads,
        blocked_loaders=config.limits.blocked_loaders,
    )


def exit_status(counters: RunCounters, stopper: Stopper) -> int:
    """128 + the signal for an interrupted run, 3 when items failed, else 0."""
    if counters.interrupted:
        return stopper.exit_status
    return ExitStatus.ITEMS_FAILED if counters.failed else ExitStatus.OK


async def _run(job: Job[Any], stopper: Stopper) -> Finished:
    async with stopper.watching():
        counters = await job.execute()
    return Finished(
        job.command, counters, job.outcome, job.dry_run, job.duration_s, exit_status(counters, stopper)
    )


async def generate(config: Config, options: GenerateOptions, reporter: Reporter) -> Finished:
    """``generate`` / ``regenerate``."""
    configure_libvips(config)
    stopper = Stopper(reporter)
    async with open_runtime(config) as runtime:
        return await _run(GenerateJob(runtime, options, reporter, stop=stopper.event), stopper)


PURGES: dict[PurgeKind, type[PurgeJob]] = {
    "referenced": ReferencedPurge,
    "orphans": OrphanPurge,
    "prefix": PrefixPurge,
    "uploads": UploadPurge,
}


def purge_job(
    runtime: Runtime, options: PurgeOptions, reporter: Reporter, *, stop: anyio.Event | None = None
) -> PurgeJob:
    """The purge ``options.kind`` names."""
    return PURGES[options.kind](runtime, options, reporter, stop=stop)


async def purge(config: Config, options: PurgeOptions, reporter: Reporter) -> Finished:
    """``purge referenced | orphans | prefix``."""
    stopper = Stopper(reporter)
    async with open_runtime(config) as runtime:
        return await _run(purge_job(runtime, options, reporter, stop=stopper.event), stopper)


async def adopt(config: Config, options: AdoptOptions, reporter: Reporter) -> Finished:
    """``adopt``: record what the Django library already made."""
    stopper = Stopper(reporter)
    async with open_runtime(config) as runtime:
        return await _run(AdoptJob(runtime, options, reporter, stop=stopper.event), stopper)


async def verify(config: Config, options: VerifyOptions, reporter: Reporter) -> Finished:
    """``verify``: the registry against one listing of the target (``--repair``: and rebuild)."""
    configure_libvips(config)
    stopper = Stopper(reporter)
    async with open_runtime(config) as runtime:
        return await _run(VerifyJob(runtime, options, reporter, stop=stopper.event), stopper)


async def init(config: Config) -> tuple[int, int]:
    """Create or migrate the registry; (version before, version after)."""
    registry = await Registry.connect(config.database)
    try:
        return await registry.migrate()
    finally:
        await registry.close()


async def clear(
    config: Config,
    source_sets: Sequence[str],
    renditions: Sequence[str],
    dry_run: bool,
    library_rows: bool = False,
) -> int:
    """Forget registry rows (objects untouched); the rows forgotten (or that would be).

    ``library_rows``: the Django libraries' rows of those renditions go too (sorl's key
    value rows, easy-thumbnails' rows), a batch at a time, each after its registry rows.
    """
    async with open_runtime(config) as runtime:
        registry = runtime.registry
        await registry.check_ready()
        if dry_run or not library_rows:
            return await registry.clear(runtime.target_url, source_sets, renditions, dry_run)
        specs = [
            spec for entry in await prepare(runtime, source_sets, renditions) for spec in entry.specs.values()
        ]
        metadata = await LibraryMetadata.checked(
            runtime.sources.db, config.django, specs, caches=runtime.site_caches
        )
        forgotten = 0
        while cleared := await registry.clear_batch(runtime.target_url, source_sets, renditions, CLEAR_BATCH):
            await metadata.forget([Gone(object_key, source_key) for object_key, source_key in cleared])
            forgotten += len(cleared)
        return forgotten


async def status(config: Config, source_sets: Sequence[str]) -> list[dict[str, Any]]:
    """Per source set and rendition: done, missing, damaged, stale, failed, bytes."""
    rows: list[dict[str, Any]] = []
    async with open_runtime(config) as runtime:
        await runtime.registry.check_ready()
        for entry in await prepare(runtime, source_sets, ()):
            counts = await runtime.sources.rendition_counts(
                entry.config.name, entry.identifiers, entry.spec_hashes, runtime.target_url
            )
            failed = await runtime.registry.failure_count(entry.config.name)
            rows.extend(
                {
                    "source_set": entry.config.name,
                    "rendition": c.rendition,
                    "done": c.done,
                    "missing": c.missing,
                    "damaged": c.damaged,
                    "stale": c.stale,
                    "failed": failed,
                    "bytes": c.bytes,
                }
                for c in counts
            )
    return rows


async def failures(config: Config, source_sets: Sequence[str], limit: int) -> list[dict[str, Any]]:
    """The failing sources, most recently seen first."""
    registry = await Registry.connect(config.database)
    try:
        await registry.check_ready()
        return await registry.recent_failures(source_sets, limit)
    finally:
        await registry.close()


async def manifest(
    config: Config,
    out: TextIO,
    fmt: ManifestFormat,
    source_sets: Sequence[str],
    source_keys: Sequence[str] | None,
) -> int:
    """Write the manifest; how many sources it lists."""
    registry = await Registry.connect(config.database)
    try:
        await registry.check_ready()
        return await write_manifest(registry, config, out, fmt, source_sets, source_keys)
    finally:
        await registry.close()


async def runs(config: Config, limit: int) -> list[dict[str, Any]]:
    """The latest runs; a run whose process died shows as ``died``."""
    registry = await Registry.connect(config.database)
    try:
        await registry.check_ready()
        return await registry.recent_runs(limit)
    finally:
        await registry.close()
