"""Placeholders from the renditions' decode, and the manifest a frontend builds srcset from."""

from __future__ import annotations

import base64
import csv
import io
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import blurhash
import psutil
import pytest
import pyvips

from batchthumb import placeholders
from batchthumb.errors import ConfigError
from batchthumb.samples import sample_bytes, sample_image
from tests.helpers import (
    UPRIGHT,
    batchthumb,
    create_photo_table,
    generate,
    make_config,
    source_files,
    sql,
    write_config,
    write_sources,
)

pytestmark = pytest.mark.anyio

RENDITIONS = {
    "hero": {"widths": [160, 320, 800], "formats": ["avif", "webp", "jpeg"]},
    "thumb": {"mode": "crop", "width": 100, "height": 100, "format": "webp"},
}
LIGHT = {  # where the formats do not matter: no AVIF (its encode is the slow one)
    "hero": {"widths": [160, 320], "formats": ["webp"]},
    "thumb": {"mode": "crop", "width": 100, "height": 100, "format": "webp"},
}
CDN = {"cdn": {"public_base_url": "https://cdn.example.com/r"}}


def test_the_blurhash_is_the_reference_encoders() -> None:
    """Ours against the reference implementation (the `blurhash` package), same pixels."""
    for width, height in ((32, 21), (21, 32), (32, 32), (7, 32)):
        image = sample_image(width, height, seed=width + height)
        pixels = bytes(image.write_to_memory())
        rows = [
            [[pixels[(y * width + x) * 3 + band] for band in range(3)] for x in range(width)]
            for y in range(height)
        ]
        x_components, y_components = placeholders.components(width, height)
        ours = placeholders.blurhash_encode(pixels, width, height, x_components, y_components)
        assert ours == blurhash.encode(rows, x_components, y_components)


def average(rows: Any) -> list[float]:
    pixels = [pixel for row in rows for pixel in row]
    return [sum(pixel[band] for pixel in pixels) / len(pixels) for band in range(3)]


async def test_placeholders_and_the_manifest(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    settings = (pg_dsn, media, tmp_path / "out")
    config = make_config(*settings, renditions=RENDITIONS, placeholders=True, extra=CDN)

    counters, _, _ = await generate(config)
    assert counters.placeholders == len(keys) and counters.written == len(keys) * 10 and not counters.failed
    rows = {row["source_key"]: row for row in await sql(pg_dsn, "SELECT * FROM batchthumb.placeholders")}
    assert set(rows) == set(keys)
    for key, row in rows.items():
        width, height = UPRIGHT[key]
        assert (row["width"], row["height"]) == (width, height)
        # the hash's components follow the upright shape: a decoder draws the right aspect
        x_components, y_components = blurhash.components(row["blurhash"])
        assert (x_components >= y_components) == (width >= height)
        assert abs(x_components / y_components - width / height) < 0.5
        side = max(width, height)
        decoded = blurhash.decode(row["blurhash"], 32 * width // side, 32 * height // side)
        assert (len(decoded[0]), len(decoded)) == (32 * width // side, 32 * height // side)
        upright = pyvips.Image.new_from_file(str(media / key)).autorot()
        source_average = [upright[band].avg() for band in range(3)]
        assert max(abs(a - b) for a, b in zip(average(decoded), source_average, strict=True)) < 40
        # the LQIP is a WebP, ~20 px on its long side, the source's shape
        prefix = "data:image/webp;base64,"
        assert row["lqip"].startswith(prefix)
        lqip = pyvips.Image.new_from_buffer(base64.b64decode(row["lqip"][len(prefix) :]), "")
        assert lqip.get("vips-loader") == "webpload_buffer"
        assert max(lqip.width, lqip.height) == placeholders.LQIP_SIDE
        assert abs(lqip.width / lqip.height - width / height) < 0.1
        assert len(row["color"]) == 7 and row["color"].startswith("#")

    again, _, _ = await generate(config)
    assert again.placeholders == 0 and again.written == 0

    # the manifest: one record per source, every variant's URL on the CDN
    path = write_config(
        tmp_path / "batchthumb.toml", *settings, renditions=RENDITIONS, placeholders=True, extra=CDN
    )
    result = batchthumb(path, "manifest")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [record["source_key"] for record in records] == sorted(keys)
    for record in records:
        key = record["source_key"]
        assert record["placeholders"]["blurhash"] == rows[key]["blurhash"]
        assert record["placeholders"]["lqip"] == rows[key]["lqip"]
        hero = record["renditions"]["hero"]
        assert len(hero) == 9
        source_width = UPRIGHT[key][0]
        for variant in hero:
            assert variant["url"].startswith("https://cdn.example.com/r/photos/hero/")
            extension = "jpg" if variant["format"] == "jpeg" else variant["format"]
            assert variant["url"].endswith(f".{variant['width']}w.{extension}")
            assert variant["width"] <= source_width
            served = tmp_path / "out" / variant["url"].removeprefix("https://cdn.example.com/r/")
            assert served.stat().st_size == variant["bytes"]
            assert pyvips.Image.new_from_file(str(served)).width == variant["width"]
        assert {v["format"] for v in hero} == {"avif", "webp", "jpeg"}
        (thumb,) = record["renditions"]["thumb"]
        assert thumb["url"].startswith("https://cdn.example.com/r/photos/thumb/")
        assert thumb["url"].endswith(f"/{key}.webp") and (thumb["width"], thumb["height"]) == (100, 100)

    # the docs' <picture> example, on a record of this manifest
    page = (Path(__file__).parent.parent / "docs" / "jobs" / "responsive.md").read_text()
    example = page.split("```python\nimport json\nfrom html import escape\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec("import json\nfrom html import escape\n" + example.split("\nwith open(")[0], namespace)
    html = namespace["picture"](records[0])
    avif = sorted(
        (v for v in records[0]["renditions"]["hero"] if v["format"] == "avif"), key=lambda v: v["width"]
    )
    avif_srcset = ", ".join(f"{variant['url']} {variant['width']}w" for variant in avif)
    assert f'<source type="image/avif" srcset="{avif_srcset}"' in html
    assert rows[records[0]["source_key"]]["lqip"] in html and "<img src=" in html

    as_csv = batchthumb(
        path, "manifest", "--format", "csv", "--source", "photos", "--key", "images/square.webp"
    )
    assert as_csv.returncode == 0, as_csv.stderr
    table = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert len(table) == 10 and {row["source_key"] for row in table} == {"images/square.webp"}
    assert {row["rendition"] for row in table} == {"hero", "thumb"}
    assert all(row["blurhash"] == rows["images/square.webp"]["blurhash"] for row in table)


async def test_placeholders_for_sources_already_done_and_after_a_replacement(
    pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    settings = (pg_dsn, media, tmp_path / "out")
    plain = make_config(*settings, renditions=LIGHT)
    counters, _, _ = await generate(plain)
    assert counters.placeholders == 0
    assert await sql(pg_dsn, "SELECT * FROM batchthumb.placeholders") == []

    # turned on later: the placeholders alone, from one small decode each; no rendition rewritten
    config = make_config(*settings, renditions=LIGHT, placeholders=True)
    counters, _, target = await generate(config)
    assert counters.placeholders == len(keys) and counters.written == 0 and target.get("put", 0) == 0
    (media / "images/landscape.jpg").write_bytes(sample_bytes(900, 1500, "jpeg", seed=8))
    await sql(pg_dsn, "UPDATE gallery_photo SET updated_at = now() WHERE image = 'images/landscape.jpg'")
    counters, _, _ = await generate(config, command="regenerate")
    assert counters.placeholders == 1 and counters.written == 3
    row = (
        await sql(pg_dsn, "SELECT * FROM batchthumb.placeholders WHERE source_key = 'images/landscape.jpg'")
    )[0]
    assert (row["width"], row["height"]) == (900, 1500)
    assert blurhash.components(row["blurhash"]) == (2, 4)


async def test_the_manifest_streams_in_flat_memory(pg_dsn: str, tmp_path: Path) -> None:
    """100,000 sources (a registry row each): the manifest's peak memory is that of 10,000."""
    await create_photo_table(pg_dsn, [])
    path = write_config(
        tmp_path / "batchthumb.toml", pg_dsn, tmp_path / "media", tmp_path / "out", renditions=RENDITIONS
    )
    target = f"file://{tmp_path / 'out'}/"

    async def fill(sources: int) -> None:
        await sql(pg_dsn, "TRUNCATE batchthumb.renditions")
        await sql(
            pg_dsn,
            """INSERT INTO batchthumb.renditions
                   (source_set, source_key, rendition, spec_hash, fingerprint, target, object_key,
                    width, height, bytes)
               SELECT 'photos', 'images/' || lpad(n::text, 7, '0') || '.jpg', v.name, 'h', NULL, $1,
                      'photos/hero/h/images/' || lpad(n::text, 7, '0') || '.jpg.' || v.width || 'w.webp',
                      v.width, v.width * 2 / 3, 1000 + n
               FROM generate_series(1, $2) AS n
               CROSS JOIN (VALUES ('hero@320w.webp', 320)) AS v(name, width)""",
            target,
            sources,
        )

    def peak_rss() -> tuple[int, int]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "batchthumb",
                "--config",
                str(path),
                "manifest",
                "-o",
                str(tmp_path / "m.jsonl"),
            ],
            stderr=subprocess.PIPE,
        )
        watched, peak = psutil.Process(process.pid), 0
        while process.poll() is None:
            try:
                peak = max(peak, watched.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.02)
        _, stderr = process.communicate()
        assert process.returncode == 0, stderr
        with (tmp_path / "m.jsonl").open() as manifest:
            lines = sum(1 for _ in manifest)
        return peak, lines

    await fill(10_000)
    small, lines = peak_rss()
    assert lines == 10_000
    await fill(100_000)
    large, lines = peak_rss()
    assert lines == 100_000
    # ten times the rows, the same memory (a list of 100,000 records would be ~150 MB more)
    assert large - small < 16 * 1024 * 1024, (small, large)


async def test_placeholders_written_back_to_the_source_table(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    await sql(pg_dsn, "ALTER TABLE gallery_photo ADD COLUMN hash varchar(64), ADD COLUMN tint varchar(7)")
    await sql(pg_dsn, "ALTER TABLE gallery_photo ADD COLUMN preview text")
    columns = {"blurhash": "hash", "color": "tint", "lqip": "preview"}
    settings = (pg_dsn, media, tmp_path / "out")
    config = make_config(*settings, renditions=LIGHT, placeholders=True, placeholder_columns=columns)
    counters, _, _ = await generate(config)
    assert counters.placeholders == counters.columns_written == len(keys)
    made = {row["source_key"]: row for row in await sql(pg_dsn, "SELECT * FROM batchthumb.placeholders")}
    for row in await sql(pg_dsn, "SELECT image, hash, tint, preview FROM gallery_photo"):
        assert (row["hash"], row["tint"], row["preview"]) == (
            made[row["image"]]["blurhash"],
            made[row["image"]]["color"],
            made[row["image"]]["lqip"],
        )

    await sql(pg_dsn, "ALTER TABLE gallery_photo ADD COLUMN short_preview varchar(200)")
    narrow = make_config(
        *settings, renditions=LIGHT, placeholders=True, placeholder_columns={"lqip": "short_preview"}
    )
    with pytest.raises(
        ConfigError, match="placeholder_columns.lqip: column 'short_preview' holds 200 characters"
    ):
        await generate(narrow, force=True)
    with pytest.raises(ConfigError, match="placeholder_columns needs placeholders = true"):
        make_config(*settings, placeholder_columns=columns)
