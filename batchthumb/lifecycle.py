"""One run lifecycle for every job: lock, run row, outcome, shielded finish, one error.

Every command that changes something is a :class:`Job`. ``Job.execute`` is the only
place that

1. checks what can be checked before anything is locked or recorded (``check``);
2. takes the run lock (not for a dry run) and writes the ``runs`` row;
3. runs the job's stages (``run``);
4. classifies the outcome (:func:`outcome_of`) the same way for every command;
5. finishes the ``runs`` row shielded from cancellation, whatever happened;
6. turns an exception group from the stages into the one error a person should see
   (:func:`one_error`).

Outcomes: ``completed``, ``completed_with_failures``, ``interrupted`` (a first signal:
the items in flight were finished and recorded), ``abandoned`` (a second signal or a
cancellation: the items in flight were dropped, the registry holds what was stored)
and ``failed`` (an error stopped the run).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from contextlib import AsyncExitStack
from dataclasses import fields
from typing import Any, Generic, TypeVar

import anyio
import anyio.to_thread

from batchthumb.cdn import ChangedUrls
from batchthumb.counters import RunCounters
from batchthumb.errors import BatchthumbError
from batchthumb.locks import run_lock
from batchthumb.metrics import RunMetrics
from batchthumb.report import Reporter
from batchthumb.runtime import Runtime
from batchthumb.shards import WHOLE, Shard

C = TypeVar("C", bound=RunCounters)


def leaves(error: BaseException) -> list[BaseException]:
    """The innermost exceptions of (possibly nested) exception groups."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def _real(error: BaseException) -> list[BaseException]:
    """The leaves that are not the cancellation of sibling stages."""
    return [leaf for leaf in leaves(error) if not isinstance(leaf, anyio.get_cancelled_exc_class())]


def one_error(error: BaseException) -> BaseException:
    """The error a person should see: ours first, then any other, else the error itself.

    Cancellation leaves (the sibling stages being stopped) are never the cause.
    """
    found = _real(error)
    for leaf in found:
        if isinstance(leaf, BatchthumbError | KeyboardInterrupt):
            return leaf
    return found[0] if len(found) == 1 else error


def outcome_of(error: BaseException) -> str:
    """How a run that raised ``error`` ended: ``abandoned`` when it was stopped, else ``failed``."""
    found = _real(error)
    if not found or any(isinstance(leaf, KeyboardInterrupt) for leaf in found):
        return "abandoned"
    return "failed"


def options_arguments(options: Any, exclude: tuple[str, ...] = ("wait",)) -> dict[str, Any]:
    """A job's options dataclass as the ``runs`` row records it (tuples as lists, the shard as text)."""
    arguments: dict[str, Any] = {}
    for item in fields(options):
        if item.name in exclude:
            continue
        value = getattr(options, item.name)
        arguments[item.name] = (
            list(value) if isinstance(value, tuple) else str(value) if isinstance(value, Shard) else value
        )
    return arguments


def run_settings(options: Any) -> dict[str, Any]:
    """What :class:`Job` takes of a job's options: a dry run, its shard, waiting, changed URLs."""
    return {
        "dry_run": options.dry_run,
        "shard": options.shard,
        "wait": options.wait,
        "changed_urls": options.changed_urls,
    }


class Job(ABC, Generic[C]):
    """A run of one command, with its counters as attributes and its stages as methods.

    Setting ``stop`` ends the run gracefully: nothing new starts, what is under way is
    finished and recorded, and the outcome is ``interrupted``.
    """

    command: str
    counters: C

    def __init__(
        self,
        runtime: Runtime,
        reporter: Reporter,
        *,
        dry_run: bool = False,
        shard: Shard = WHOLE,
        wait: bool = False,
        stop: anyio.Event | None = None,
        changed_urls: str | None = None,
    ) -> None:
        self.runtime = runtime
        self.reporter = reporter
        self.dry_run = dry_run
        self.changed = ChangedUrls(runtime.config, changed_urls, reporter, dry_run)
        """The object keys this run overwrote or deleted: ``--changed-urls``, the CDN."""
        self.shard = shard
        self.wait = wait
        self.stop = stop or anyio.Event()
        self.run_id: int | None = None
        self.outcome = "running"
        self.duration_s = 0.0

    # -- what each job says ------------------------------------------------------------

    @abstractmethod
    def lock_key(self) -> str:
        """The run lock this job holds: runs with the same key never overlap."""

    @abstractmethod
    def arguments(self) -> dict[str, Any]:
        """What the ``runs`` row records of the options."""

    async def check(self) -> None:
        """Refuse a bad job before anything is locked or recorded (config, catalog)."""
        await self.runtime.registry.check_ready()

    @abstractmethod
    async def run(self) -> None:
        """The job's stages. Count into ``self.counters``; honour ``self.stop``."""

    # -- the lifecycle, once for all -------------------------------------------------

    async def execute(self) -> C:
        """Check, lock, record the run, run it, classify, finish; return the counters."""
        await self.check()
        registry = self.runtime.registry
        shard = "all" if self.shard.whole else str(self.shard)
        self.reporter.bind(self.command, shard)
        metrics = self.reporter.metrics
        if metrics is not None:
            stores = {"source": self.runtime.source_store, "target": self.runtime.target_store}
            metrics.bind(self.command, shard, self.counters, stores)
        async with AsyncExitStack() as stack:
            if metrics is not None:
                metrics.serve()
                stack.callback(metrics.close)
            lock_pid = None
            if not self.dry_run:  # a dry run changes nothing, so it never waits for a lock
                lock_pid = await stack.enter_async_context(
                    run_lock(self.runtime.config.database, self.lock_key(), self.wait)
                )
            self.run_id = await registry.start_run(self.command, self.arguments(), self.shard, lock_pid)
            started = time.monotonic()
            try:
                try:
                    await self.run()
                finally:  # what changed before a failure changed too: written down, then invalidated
                    self.counters.changed_urls = self.changed.count
                    try:
                        with anyio.CancelScope(shield=True):  # the file must be whole
                            await self.changed.write()
                        await self.changed.invalidate()  # a cancelled run skips it (the file has them)
                    finally:
                        self.changed.close()
                        self.counters.invalidations = self.changed.invalidations
                self.counters.interrupted = self.stop.is_set()
                self.outcome = self.counters.outcome
            except BaseException as error:
                self.outcome = outcome_of(error)
                cause = one_error(error)
                if cause is error:
                    raise
                raise cause from cause.__cause__
            finally:
                self.reporter.stop()
                self.report_vanished()
                self.duration_s = time.monotonic() - started
                counts = {**self.counters.as_dict(), "duration_s": round(self.duration_s, 3)}
                with anyio.CancelScope(shield=True):
                    await registry.finish_run(self.run_id, counts, self.outcome)
                    if metrics is not None:
                        metrics.finish(self.outcome, self.duration_s)
                        await self.push_metrics(metrics)
        return self.counters

    def report_vanished(self) -> None:
        """--verbose: the entries a listing skipped because the site deleted them meanwhile."""
        seen: set[int] = set()
        for store in (self.runtime.source_store, self.runtime.target_store):
            vanished = getattr(store, "vanished", 0)
            if vanished and id(store) not in seen:
                seen.add(id(store))
                self.reporter.detail(
                    f"{vanished:,} entries vanished from {store.location.url} while it was listed "
                    "(deleted meanwhile): skipped",
                    event="listing_vanished",
                )

    async def push_metrics(self, metrics: RunMetrics) -> None:
        """The final values to the Pushgateway; a gateway that fails is a warning, not the run's
        failure (what the run did is done and recorded)."""
        if metrics.push_url is None:
            return
        try:
            await anyio.to_thread.run_sync(metrics.push)
        except Exception as error:  # urllib's and the gateway's errors alike
            self.reporter.info(
                f"warning: pushing metrics to {metrics.push_url} failed: {error}",
                event="metrics_push_failed",
                level="warning",
            )
