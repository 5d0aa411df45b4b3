"""No stage holds more than its bounded buffer: memory stays flat over 100,000 rows."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import anyio
import psutil
import pytest

from batchthumb.generate import GenerateJob, GenerateOptions
from batchthumb.pipeline import stream
from batchthumb.render import Rendered
from batchthumb.runtime import open_runtime
from batchthumb.specs import RenditionSpec
from batchthumb.stores import MemoryStore
from batchthumb.stores.base import Admit, SourceBytes, Version
from tests.helpers import make_config, quiet, sql

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

ROWS = 100_000
MB = 1024 * 1024


class AnySourceStore(MemoryStore):
    """Answers every key with the same tiny payload: the source side costs no memory per row."""

    async def get_versioned(
        self, key: str, max_bytes: int | None = None, admit: Admit | None = None
    ) -> tuple[SourceBytes, Version]:
        self.requests["get"] += 1
        return b"\xff\xd8tiny-source", Version("tiny")

    async def version(self, key: str) -> Version | None:
        return Version("tiny")


class DiscardingStore(MemoryStore):
    """Counts puts and keeps nothing, so only the pipeline itself could grow."""

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.requests["put"] += 1


def fake_render(data: bytes, specs: Sequence[RenditionSpec], max_pixels: int) -> list[Rendered]:
    return [Rendered(spec.name, b"x" * 64, 10, 10) for spec in specs]


@pytest.mark.timeout(600)
async def test_memory_stays_flat_over_100k_rows(pg_dsn: str, tmp_path: Path) -> None:
    await sql(
        pg_dsn, "CREATE TABLE gallery_photo (id serial PRIMARY KEY, image text, updated_at timestamptz)"
    )
    await sql(
        pg_dsn,
        "INSERT INTO gallery_photo (image, updated_at) SELECT 'img/' || g || '.jpg', now()"
        f" FROM generate_series(1, {ROWS}) AS g",
    )
    config = make_config(pg_dsn, tmp_path / "media", tmp_path / "out")
    process = psutil.Process()
    samples: list[tuple[int, int]] = []  # (renditions written, RSS)
    target = DiscardingStore()
    async with open_runtime(config, source_store=AnySourceStore(), target_store=target) as runtime:
        job = GenerateJob(runtime, GenerateOptions(), quiet(), render_function=fake_render)
        done = anyio.Event()

        async def sample() -> None:
            while not done.is_set():
                samples.append((target.requests["put"], process.memory_info().rss))
                await anyio.sleep(0.1)

        started = time.monotonic()
        async with anyio.create_task_group() as tg:
            tg.start_soon(sample)
            counters = await job.execute()
            done.set()
    elapsed = time.monotonic() - started
    assert counters.written == ROWS * 3
    assert target.requests["put"] == ROWS * 3
    warm = [rss for written, rss in samples if written >= 10_000 * 3]
    late = [rss for written, rss in samples if written >= 50_000 * 3]
    assert warm and late, f"too few samples over {elapsed:.1f}s"
    growth = max(late) - warm[0]
    print(
        f"\n{ROWS} rows in {elapsed:.1f}s; RSS at 10k sources {warm[0] / MB:.1f} MB, "
        f"max after 50k {max(late) / MB:.1f} MB, growth {growth / MB:.1f} MB"
    )
    # A pipeline that buffered its work would grow by hundreds of MB here (300,000 items).
    assert growth < 25 * MB
    rows = await sql(pg_dsn, "SELECT count(*) FROM batchthumb.renditions")
    assert rows[0][0] == ROWS * 3


def test_stage_buffers_must_be_bounded() -> None:
    with pytest.raises(ValueError, match="bounded"):
        stream(0)
    send, receive = stream(3)
    assert send.statistics().max_buffer_size == 3
    send.close()
    receive.close()
