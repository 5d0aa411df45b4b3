"""The staged pipeline both directions share: bounded streams, worker stages, a batching sink,
and one "delete a batch and count it".

A stage is ``count`` copies of a worker function reading from one receive stream
and (optionally) writing to one send stream. Each copy owns clones of the
streams and closes them when it ends, so the next stage sees end-of-stream
exactly when every upstream worker has finished, and backpressure comes from the
bounded buffers alone.

No timeout here ever surrounds work: a deadline only ends a *wait* (for the next
item), so a slow flush or a slow delete is never cut short and never run twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from batchthumb.counters import RunCounters
from batchthumb.report import Reporter
from batchthumb.stores import DELETE_BATCH, DeleteResult, Store

In = TypeVar("In")
Out = TypeVar("Out")
T = TypeVar("T")


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


class BatchSink(Generic[T]):
    """The last stage of a pipeline: items gathered into batches, each batch flushed once.

    A batch is flushed when its ``weight`` reaches ``max_weight``, when ``interval_s``
    has passed since the last flush with items waiting, and at the end of the stream.
    A batch is taken out of the sink before its flush starts, so no flush can see it
    again; flushes never overlap; and the interval ends only a wait, never a flush.
    """

    def __init__(
        self,
        flush: Callable[[list[T]], Awaitable[None]],
        *,
        max_weight: int,
        interval_s: float,
        weight: Callable[[T], int] = lambda _: 1,
    ) -> None:
        self._flush = flush
        self._max_weight = max_weight
        self._interval_s = interval_s
        self._weight = weight
        self._batch: list[T] = []
        self._batch_weight = 0
        self._flushing = anyio.Lock()

    async def run(self, receive: MemoryObjectReceiveStream[T]) -> None:
        """Drain ``receive``; return when it has ended and the last batch is flushed."""
        drained = anyio.Event()
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._flush_every_interval, drained)
            async with receive:
                async for item in receive:
                    self._batch.append(item)
                    self._batch_weight += self._weight(item)
                    if self._batch_weight >= self._max_weight:
                        await self.flush_now()
            drained.set()  # the ticker ends after a flush it may have started
        await self.flush_now()

    async def flush_now(self) -> None:
        """Flush what is gathered, if anything, after any flush under way."""
        async with self._flushing:
            batch, self._batch, self._batch_weight = self._batch, [], 0
            if batch:
                await self._flush(batch)

    async def _flush_every_interval(self, drained: anyio.Event) -> None:
        while True:
            with anyio.move_on_after(self._interval_s):
                await drained.wait()  # the only thing a deadline ends here: a wait
            if drained.is_set():
                return
            await self.flush_now()


class Deleter:
    """Deletes batches of objects from one store and counts what went (``deleted``, ``bytes_deleted``).

    A per-key error in a batch's answer is a failure, never a deletion: the key is
    left out of what this returns, reported, and kept by the caller.
    """

    def __init__(self, store: Store, counters: RunCounters, reporter: Reporter, what: str = "") -> None:
        self.store = store
        self.counters = counters
        self.reporter = reporter
        self.what = what
        """Put before each reported key: ``"superseded "`` says why it goes."""

    async def delete(self, objects: Sequence[tuple[str, int]]) -> DeleteResult:
        """Delete (object key, bytes) pairs in requests of at most ``DELETE_BATCH`` keys."""
        sizes = dict(objects)
        keys = list(sizes)
        url = self.store.location.url
        result = DeleteResult()
        for start in range(0, len(keys), DELETE_BATCH):
            part = await self.store.delete_many(keys[start : start + DELETE_BATCH])
            self.counters.deleted += len(part.deleted)
            self.counters.bytes_deleted += sum(sizes[key] for key in part.deleted)
            for key in part.deleted:
                self.reporter.detail(
                    f"deleted {self.what}{url}{key} ({sizes[key]:,} bytes)",
                    event="object_deleted",
                    object_key=key,
                )
            for key, reason in part.errors.items():
                self.reporter.info(
                    f"could not delete {self.what}{url}{key}: {reason}",
                    event="delete_failed",
                    object_key=key,
                    level="error",
                )
            result.deleted += part.deleted
            result.errors |= part.errors
        return result
