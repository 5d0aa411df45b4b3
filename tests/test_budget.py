"""The memory budget (``limits.memory``): sources reserve their bytes and their decode's cost,
estimated from the header, before they are read; large PNGs many at once stay under it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import pyvips

from batchthumb import render
from batchthumb.budget import MemoryBudget
from batchthumb.config import RenditionConfig
from batchthumb.errors import OverMemoryBudget
from batchthumb.samples import sample_bytes
from batchthumb.specs import RenditionSpec
from batchthumb.stores.base import HEAD_BYTES
from tests.helpers import (
    batchthumb,
    create_photo_table,
    generate,
    make_config,
    s3_store_settings,
    sql,
    write_config,
)

MIB = 1024**2
GIB = 1024**3
SPECS = [
    RenditionSpec.from_config(n, RenditionConfig(width=w, height=w)) for n, w in (("s", 200), ("l", 1600))
]


# -- the budget itself -----------------------------------------------------------------


@pytest.mark.anyio
async def test_reservations_wait_in_order_and_never_exceed_the_budget() -> None:
    budget = MemoryBudget(100)
    order: list[str] = []

    async def take(name: str, amount: int, hold: anyio.Event) -> None:
        await budget.reserve(amount)
        order.append(name)
        assert budget.used <= budget.total
        await hold.wait()
        budget.release(amount)

    holds = {name: anyio.Event() for name in "abcd"}
    async with anyio.create_task_group() as tg:
        tg.start_soon(take, "a", 60, holds["a"])
        await anyio.sleep(0.01)
        tg.start_soon(take, "b", 70, holds["b"])  # must wait for a
        await anyio.sleep(0.01)
        tg.start_soon(take, "c", 10, holds["c"])  # would fit, but b is first in line
        await anyio.sleep(0.01)
        assert order == ["a"]
        holds["a"].set()
        await anyio.sleep(0.01)
        assert order == ["a", "b", "c"]  # b served, then c fits beside it
        with pytest.raises(OverMemoryBudget, match="more than the whole memory budget"):
            await budget.reserve(101, "huge.png")
        # a waiter that is cancelled gives its place back
        with anyio.move_on_after(0.02):
            await budget.reserve(50)
        holds["b"].set()
        holds["c"].set()
        tg.start_soon(take, "d", 100, holds["d"])
        await anyio.sleep(0.01)
        holds["d"].set()
    assert order == ["a", "b", "c", "d"]
    assert (budget.used, budget.peak, budget.waits) == (0, 100, 3)


def test_decode_cost_from_the_first_bytes_follows_shrink_on_load() -> None:
    image = (pyvips.Image.xyz(4000, 3000)[0] % 256).cast("uchar").bandjoin([128, 64])
    png, jpeg = image.pngsave_buffer(compression=1), image.jpegsave_buffer(Q=80)
    webp = image.webpsave_buffer(Q=50, effort=0)
    head = 64 * 1024
    cost_png, cost_jpeg = render.decode_cost(png[:head], SPECS), render.decode_cost(jpeg[:head], SPECS)
    cost_webp = render.decode_cost(webp[:head], SPECS)
    assert cost_png is not None and cost_jpeg is not None and cost_webp is not None
    # a PNG decodes whole: 12 MP x 3 bands, plus libvips' buffers
    assert 36_000_000 <= cost_png.bytes <= 80_000_000
    assert cost_png.description == "4000x3000 png decoded whole"
    # 1600 of 4000: JPEG shrinks by 2 on load, a quarter of the pixels
    assert cost_jpeg.description == "4000x3000 jpeg shrunk 2x on load"
    assert cost_jpeg.bytes < cost_png.bytes / 2
    assert cost_webp.description == "4000x3000 webp scaled on load"
    assert render.decode_cost(b"\x89PNG not really", SPECS) is None


# -- in a run --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_source_larger_than_the_budget_fails_alone(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "big").mkdir(parents=True)
    (media / "big" / "huge.png").write_bytes(
        (pyvips.Image.xyz(3000, 3000)[0] % 256).cast("uchar").bandjoin([1, 2]).pngsave_buffer(compression=1)
    )
    (media / "small.jpg").write_bytes(sample_bytes(400, 300, "jpeg"))
    await create_photo_table(pg_dsn, ["big/huge.png", "small.jpg"])
    config = make_config(pg_dsn, media, tmp_path / "out", limits={"render_workers": 2, "memory": "16MiB"})
    counters, _, _ = await generate(config)
    assert counters.written == 3  # the small source's three renditions
    assert counters.failed == 1
    (failure,) = await sql(pg_dsn, "SELECT * FROM batchthumb.failures")
    assert failure["source_key"] == "big/huge.png"
    assert failure["permanent"]
    assert failure["error_class"] == "OverMemoryBudget"
    assert "3000x3000 png decoded whole" in failure["message"]
    assert "more than the whole memory budget (limits.memory = 16.0 MiB)" in failure["message"]
    assert counters.memory_budget == 16 * MIB
    assert 0 < counters.memory_reserved_peak <= 16 * MIB


def big_pngs(media: Path, count: int) -> list[str]:
    """``count`` 60 MP PNGs (9500 x 6400, about 90 MB each): hard links to one file.

    Interlaced, as many exported PNGs are: libvips must decode one whole (180 MB of pixels)
    before it can shrink it, where a plain PNG streams through the shrink."""
    image = pyvips.Image.xyz(9500, 6400)
    pixels = (image[0] % 256).cast("uchar").bandjoin([(image[1] % 256).cast("uchar"), 90])
    media.mkdir(parents=True)
    first = media / "p00.png"
    pixels.pngsave(str(first), compression=1, interlace=True)
    keys = [first.name]
    for n in range(1, count):
        os.link(first, media / f"p{n:02}.png")
        keys.append(f"p{n:02}.png")
    return keys


def probe(config: Path) -> tuple[dict[str, int], dict[str, int]]:
    """A fresh process runs generate; its summary and its memory."""
    result = subprocess.run(
        [sys.executable, "-m", "tests.memory_probe", str(config)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    assert len(lines) >= 2, result.stdout + result.stderr
    return json.loads(lines[-2]), json.loads(lines[-1])


@pytest.mark.timeout(600)
def test_twelve_60mp_pngs_on_16_workers_stay_under_a_1gib_budget(pg_dsn: str, tmp_path: Path) -> None:
    keys = big_pngs(tmp_path / "media", 12)
    asyncio.run(create_photo_table(pg_dsn, keys))
    renditions = {"small": {"width": 300, "height": 300}, "large": {"width": 1600, "height": 1600}}

    def config(name: str, memory: str) -> Path:
        path = write_config(
            tmp_path / f"{name}.toml",
            pg_dsn,
            tmp_path / "media",
            tmp_path / name,
            renditions,
            {"render_workers": 16, "io_concurrency": 64, "memory": memory},
            schema=f"bt_{name}",
        )
        assert batchthumb(path, "init").returncode == 0
        return path

    summary, memory = probe(config("budget", "1GiB"))
    assert memory["exit"] == 0
    assert (summary["written"], summary["failed"]) == (24, 0)  # everything renders
    assert summary["memory_budget"] == GIB
    assert summary["memory_reserved_peak"] <= GIB
    assert summary["memory_waits"] > 0  # the budget, not the workers, held sources back
    assert memory["peak"] - memory["baseline"] <= GIB, memory

    # the same run with room for everything: the budget above was what kept it down
    unbounded, free = probe(config("free", "64GiB"))
    assert (unbounded["written"], unbounded["memory_waits"]) == (24, 0)
    assert free["peak"] - free["baseline"] > GIB, free
    print(f"\npeak above baseline: {(memory['peak'] - memory['baseline']) / MIB:.0f} MiB with limits.memory")
    print(f"= 1GiB, {(free['peak'] - free['baseline']) / MIB:.0f} MiB without")


@pytest.mark.anyio
async def test_sources_larger_than_their_head_read_whole_from_s3_under_a_budget(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    """The S3 body is read in two parts around the reservation, into one buffer: all of it."""
    image = (
        (pyvips.Image.xyz(2400, 1800)[0] % 256)
        .cast("uchar")
        .bandjoin([(pyvips.Image.xyz(2400, 1800)[1] % 256).cast("uchar"), 7])
    )
    data = image.pngsave_buffer(compression=1)
    assert len(data) > HEAD_BYTES * 4
    keys = [f"photos/{n}.png" for n in range(4)]
    for key in keys:
        s3_client.put_object(Bucket=bucket, Key=f"media/{key}", Body=data)
    await create_photo_table(pg_dsn, keys)
    source = s3_store_settings(s3_endpoint, f"s3://{bucket}/media/")
    config = make_config(pg_dsn, source, tmp_path / "out", limits={"render_workers": 4, "memory": "40MiB"})
    counters, source_requests, _ = await generate(config)
    assert (counters.written, counters.failed) == (12, 0)
    assert counters.memory_waits > 0  # 4 at once would not fit in 40 MiB
    assert counters.memory_reserved_peak <= 40 * MIB
    assert source_requests == {"GetObject": 4, "HeadObject": 4}  # read, then checked unchanged
    medium = pyvips.Image.new_from_file(str(next((tmp_path / "out").rglob("0.png.jpg"))))
    assert (medium.width, medium.height) == (400, 300)  # the whole image, not its first rows
