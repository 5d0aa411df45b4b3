"""The generic staged pipeline: bounded streams between stages, workers in one task group.

A stage is ``count`` copies of a worker function reading from one receive stream
and (optionally) writing to one send stream. Each copy owns clones of the
streams and closes them when it ends, so the next stage sees end-of-stream
exactly when every upstream worker has finished, and backpressure comes from the
bounded buffers alone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

In = TypeVar("In")
Out = TypeVar("Out")


def stream(buffer: int) -> tuple[MemoryObjectSendStream[Any], MemoryObjectReceiveStream[Any]]:
    """A bounded stream; ``buffer`` must be at least 1 (never an unbounded buffer)."""
    if buffer < 1:
        raise ValueError("stage buffers are bounded: buffer must be at least 1")
    return anyio.create_memory_object_stream[Any](buffer)


def spawn_stage(
    task_group: TaskGroup,
    count: int,
    worker: Callable[[In, MemoryObjectSendStream[Out]], Awaitable[None]],
    receive: MemoryObjectReceiveStream[In],
    send: MemoryObjectSendStream[Out],
    name: str,
) -> None:
    """Start ``count`` workers; each gets its own clones, and the originals are closed."""
    with receive, send:
        for index in range(count):
            task_group.start_soon(_run_worker, worker, receive.clone(), send.clone(), name=f"{name}-{index}")


async def _run_worker(
    worker: Callable[[In, MemoryObjectSendStream[Out]], Awaitable[None]],
    receive: MemoryObjectReceiveStream[In],
    send: MemoryObjectSendStream[Out],
) -> None:
    async with receive, send:
        async for item in receive:
            await worker(item, send)


@dataclass
class RunCounters:
    """What every run counts: failures (the first ones kept as lines) and an interruption."""

    failed: int = 0
    """Items that failed (sources for generate, objects for a purge)."""
    failures: list[str] = field(default_factory=list)
    """The first failures, one line each, for the summary."""
    interrupted: str | None = None
    """Set when a signal stopped the run before its end."""

    MAX_LISTED_FAILURES = 20

    def add_failure(self, line: str) -> None:
        self.failed += 1
        if len(self.failures) < self.MAX_LISTED_FAILURES:
            self.failures.append(line)

    @property
    def outcome(self) -> str:
        """How a run that ended without an error went."""
        if self.interrupted:
            return self.interrupted
        return "completed_with_failures" if self.failed else "completed"

    def as_dict(self) -> dict[str, Any]:
        """The counts alone, for --json and the runs table."""
        data = asdict(self)
        data.pop("failures")
        data.pop("interrupted")
        return data


@dataclass
class Counters(RunCounters):
    """What a generate or regenerate did. Renditions are counted one by one; failures by source."""

    sources: int = 0
    """Sources planned for work."""
    written: int = 0
    """Renditions written (new or rebuilt)."""
    stale: int = 0
    """Of those written, how many replaced a stale rendition."""
    skipped: int = 0
    """Renditions already up to date, left alone."""
    deleted: int = 0
    """Superseded objects deleted."""
    bytes_written: int = 0
    bytes_deleted: int = 0


def leaves(error: BaseException) -> list[BaseException]:
    """The innermost exceptions of (possibly nested) exception groups."""
    if isinstance(error, BaseExceptionGroup):
        return [leaf for inner in error.exceptions for leaf in leaves(inner)]
    return [error]


def first_cause(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error a person should see when a stage failed: ours first, then a driver's, else the group.

    Cancellation leaves (the sibling stages being stopped) are never the cause.
    """
    import asyncpg

    from batchthumb.errors import BatchthumbError, RegistryError

    found = [leaf for leaf in leaves(group) if not isinstance(leaf, anyio.get_cancelled_exc_class())]
    for leaf in found:
        if isinstance(leaf, BatchthumbError | KeyboardInterrupt):
            return leaf
    for leaf in found:
        if isinstance(leaf, asyncpg.PostgresError | asyncpg.InterfaceError | OSError):
            error = RegistryError(f"registry: {type(leaf).__name__}: {leaf}")
            error.__cause__ = leaf
            return error
    return found[0] if len(found) == 1 else group
