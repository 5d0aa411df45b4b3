"""The run lifecycle every job shares, and the batching sink: what made the counts lie.

- A batch is flushed once, however long its flush takes against the record interval
  (it was flushed twice when the interval's deadline cancelled a slow flush).
- Every command records the same outcome for the same ending: ``interrupted`` when a
  first signal stopped it gracefully, ``abandoned`` when it was cancelled (a purge
  recorded ``failed``, a generate ``interrupted``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import anyio
import pytest

from batchthumb.config import Config
from batchthumb.counters import GenerateCounters, PurgeCounters
from batchthumb.errors import BatchthumbError, RegistryError
from batchthumb.generate import GenerateJob, GenerateOptions
from batchthumb.jobs import purge_job
from batchthumb.lifecycle import one_error, outcome_of
from batchthumb.pipeline import BatchSink, stream
from batchthumb.purge import PurgeOptions
from batchthumb.registry import Registry
from batchthumb.runtime import open_runtime
from batchthumb.stores import DeleteResult, LocalStore
from tests.helpers import (
    create_photo_table,
    files,
    generate,
    make_config,
    quiet,
    registry_rows,
    runs,
    source_files,
    sql,
    with_renditions,
    write_sources,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
async def generated(pg_dsn: str, tmp_path: Path) -> tuple[Config, Path]:
    media, out = tmp_path / "media", tmp_path / "out"
    await create_photo_table(pg_dsn, write_sources(media, source_files()))
    config = make_config(pg_dsn, media, out)
    counters, _, _ = await generate(config)
    assert counters.written == 12
    return config, out


# -- the batching sink ---------------------------------------------------------------------


async def test_a_flush_slower_than_the_interval_runs_once_per_batch() -> None:
    flushed: list[list[int]] = []
    running = 0

    async def slow_flush(batch: list[int]) -> None:
        nonlocal running
        running += 1
        assert running == 1, "two flushes at once"
        await anyio.sleep(0.3)  # six intervals
        flushed.append(batch)
        running -= 1

    sink = BatchSink(slow_flush, max_weight=4, interval_s=0.05)
    send, receive = stream(1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run, receive)
        async with send:
            for item in range(10):
                await send.send(item)
                await anyio.sleep(0.02)
    items = [item for batch in flushed for item in batch]
    assert sorted(items) == list(range(10))  # every item flushed, none twice
    assert all(len(batch) <= 4 for batch in flushed)


async def test_the_interval_flushes_a_batch_that_is_waiting() -> None:
    flushed: list[list[int]] = []
    first = anyio.Event()

    async def flush(batch: list[int]) -> None:
        flushed.append(batch)
        first.set()

    sink = BatchSink(flush, max_weight=100, interval_s=0.05)
    send, receive = stream(1)
    async with anyio.create_task_group() as tg:
        tg.start_soon(sink.run, receive)
        async with send:
            await send.send(1)
            await first.wait()  # only the interval can flush it: the batch is far from full
            await send.send(2)
    assert flushed == [[1], [2]]


class SlowDeletes(LocalStore):
    """Deletes take several record intervals, and every key sent is remembered."""

    delay_s = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[str] = []

    async def delete_many(self, keys: Sequence[str]) -> DeleteResult:
        self.sent.extend(keys)
        await anyio.sleep(self.delay_s)
        return await super().delete_many(keys)


async def test_a_slow_record_is_counted_and_sent_once(
    generated: tuple[Config, Path], pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush (registry rows, then superseded deletes) far slower than the record interval."""
    config, out = generated
    before = await registry_rows(pg_dsn)
    changed = with_renditions(config, thumb={"width": 90, "height": 90})
    delay_s = 5 * changed.limits.record_interval_s
    recorded: list[int] = []
    record = Registry.record

    async def slow_record(self: Registry, rows: Sequence[Any]) -> None:
        recorded.append(len(rows))
        await anyio.sleep(delay_s)
        await record(self, rows)

    monkeypatch.setattr(Registry, "record", slow_record)
    target = SlowDeletes(changed.stores.target.location)
    target.delay_s = delay_s
    counters, _, requests = await generate(changed, target_store=target, command="regenerate")

    assert (counters.written, counters.stale, counters.deleted) == (4, 4, 4)
    assert sum(recorded) == 4  # each row upserted once
    thumbs = [row for key, row in before.items() if key[1] == "thumb"]
    assert counters.bytes_deleted == sum(row["bytes"] for row in thumbs)
    assert Counter(target.sent) == Counter(row["object_key"] for row in thumbs)  # each sent once
    assert requests["put"] == 4
    (counts,) = await sql(pg_dsn, "SELECT counts FROM batchthumb.runs ORDER BY id DESC LIMIT 1")
    assert '"written": 4' in counts[0] and '"deleted": 4' in counts[0]
    assert len(files(out)) == 12


# -- outcomes: the same for every command ---------------------------------------------------


class Interrupting(LocalStore):
    """Calls ``interrupt`` on the first put or delete, then works as usual."""

    def __init__(self, *args: Any, interrupt: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.interrupt = interrupt
        self.calls = 0

    def _maybe(self) -> None:
        self.calls += 1
        if self.calls == 1:
            self.interrupt()

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self._maybe()
        await anyio.sleep(0.05)  # work in flight when the interruption lands
        await super().put(key, data, content_type)

    async def delete_many(self, keys: Sequence[str]) -> DeleteResult:
        self._maybe()
        await anyio.sleep(0.05)
        return await super().delete_many(keys)


async def run_interrupted(
    config: Config, command: str, abandon: bool
) -> GenerateCounters | PurgeCounters | None:
    """Run ``command`` and interrupt it at its first store write: gracefully or by cancelling it."""
    stop = anyio.Event()
    scope = anyio.CancelScope()
    interrupt = scope.cancel if abandon else stop.set
    target = Interrupting(config.stores.target.location, page_size=2, interrupt=interrupt)
    result = None
    with scope:
        async with open_runtime(config, target_store=target) as runtime:
            job: Any
            if command == "generate":
                job = GenerateJob(runtime, GenerateOptions(), quiet(), stop=stop)
            else:
                job = purge_job(runtime, PurgeOptions(command.split()[1]), quiet(), stop=stop)  # type: ignore[arg-type]
            result = await job.execute()
    assert scope.cancelled_caught == abandon
    return result


@pytest.mark.parametrize("abandon", [False, True], ids=["graceful", "abandoned"])
async def test_generate_records_how_it_was_interrupted(pg_dsn: str, tmp_path: Path, abandon: bool) -> None:
    media, out = tmp_path / "media", tmp_path / "out"
    await create_photo_table(pg_dsn, write_sources(media, source_files()))
    config = make_config(pg_dsn, media, out)
    counters = await run_interrupted(config, "generate", abandon)
    assert (await runs(pg_dsn)) == [("generate", "abandoned" if abandon else "interrupted")]
    if not abandon:
        assert counters is not None and counters.interrupted
    # whatever was recorded points at an object: the run stopped cleanly
    assert all((out / row["object_key"]).exists() for row in (await registry_rows(pg_dsn)).values())


@pytest.mark.parametrize("abandon", [False, True], ids=["graceful", "abandoned"])
@pytest.mark.parametrize("kind", ["referenced", "prefix"])
async def test_purges_record_how_they_were_interrupted(
    generated: tuple[Config, Path], pg_dsn: str, abandon: bool, kind: str
) -> None:
    config, out = generated
    await run_interrupted(config, f"purge {kind}", abandon)
    assert (await runs(pg_dsn))[-1] == (f"purge {kind}", "abandoned" if abandon else "interrupted")
    rows = await registry_rows(pg_dsn)
    assert all((out / row["object_key"]).exists() for row in rows.values())  # objects first, rows after


async def test_outcomes_and_the_error_a_person_sees() -> None:
    cancelled = anyio.get_cancelled_exc_class()
    ours = RegistryError("registry: recording: lost")
    group = BaseExceptionGroup("stages", [cancelled(), ExceptionGroup("inner", [ours]), cancelled()])
    assert one_error(group) is ours
    assert outcome_of(group) == "failed"
    assert outcome_of(BaseExceptionGroup("stages", [cancelled(), cancelled()])) == "abandoned"
    assert outcome_of(cancelled()) == "abandoned"
    assert outcome_of(KeyboardInterrupt()) == "abandoned"
    assert outcome_of(BatchthumbError("x")) == "failed"
    other = ValueError("a bug")
    assert one_error(BaseExceptionGroup("stages", [cancelled(), other])) is other


async def test_the_runs_row_records_the_options_not_the_keys(
    generated: tuple[Config, Path], pg_dsn: str
) -> None:
    import json

    from tests.helpers import purge

    config, _ = generated
    await purge(config, kind="referenced", source_keys=("images/landscape.jpg", "images/portrait.png"))
    runs_rows = await sql(pg_dsn, "SELECT command, arguments FROM batchthumb.runs ORDER BY id")
    (generate_arguments, purge_arguments) = (json.loads(row["arguments"]) for row in runs_rows)
    assert generate_arguments == {
        "source_sets": [], "renditions": [], "force": False, "limit": None,
        "dry_run": False, "retry_failed": False, "shard": "0/1", "repair": False, "changed_urls": None,
    }  # fmt: skip
    assert purge_arguments["source_keys"] == 2  # how many, never the list itself
    assert "wait" not in purge_arguments and "kind" not in purge_arguments
    assert purge_arguments["shard"] == "0/1"
