"""Driving the test Django site from the tests: its corpus, its table, the probe, pixel checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyvips

from batchthumb.samples import sample_bytes, sample_image
from tests.helpers import sql

ROOT = Path(__file__).parent.parent.parent


def alpha_png(width: int, height: int) -> bytes:
    image = sample_image(width, height, seed=7)
    alpha = (pyvips.Image.black(width, height) + 1).linear(1, 180).cast("uchar")
    return bytes(image.bandjoin(alpha).pngsave_buffer())


def corpus() -> list[tuple[str, bytes]]:
    """Landscape, portrait, EXIF-rotated and -transposed, PNG with alpha, small ones to enlarge.

    (versatileimagefield turns only orientations 3, 6 and 8; imagekit none; the others all.)
    """
    return [
        ("images/landscape.jpg", sample_bytes(1200, 800, "jpeg", seed=1)),
        ("images/portrait.jpg", sample_bytes(600, 900, "jpeg", seed=2)),
        ("images/rotated.jpg", sample_bytes(800, 400, "jpeg", seed=3, orientation=6)),
        ("images/transposed.jpg", sample_bytes(700, 350, "jpeg", seed=6, orientation=5)),
        ("images/logo.png", alpha_png(640, 480)),
        ("images/small.jpg", sample_bytes(120, 90, "jpeg", seed=4)),
        ("images/2024/odd ratio.jpg", sample_bytes(1001, 333, "jpeg", seed=5)),
    ]


async def photo_table(dsn: str, keys: list[str]) -> None:
    """``gallery_photo`` as Django makes it for ``gallery.Photo``."""
    await sql(
        dsn,
        "CREATE TABLE gallery_photo (id serial PRIMARY KEY, image varchar(255) NOT NULL,"
        " image_ppoi varchar(20) NOT NULL DEFAULT '0.5x0.5', thumbnail varchar(100) NULL,"
        " updated_at timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z')",
    )
    for key in keys:
        await sql(dsn, "INSERT INTO gallery_photo (image) VALUES ($1)", key)


async def s3_site(
    dsn: str, s3_client: Any, bucket: str, endpoint: str, sources: list[tuple[str, bytes]]
) -> tuple[list[str], dict[str, str]]:
    """The sources under ``media/`` in the bucket (django-storages' ``AWS_LOCATION``), the
    photos' table; the keys, and the site's S3 settings for :func:`probe`."""
    for key, data in sources:
        s3_client.put_object(Bucket=bucket, Key=f"media/{key}", Body=data)
    keys = [key for key, _ in sources]
    await photo_table(dsn, keys)
    return keys, {"BT_S3_ENDPOINT": endpoint, "BT_S3_BUCKET": bucket, "BT_S3_LOCATION": "media"}


def probe(
    dsn: str,
    media: Path,
    mode: str,
    *args: str,
    only: list[int] | None = None,
    s3: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The Django site, asked for every photo's renditions (``serve``), to make them (``make``),
    or another mode of ``probe.py`` with its ``args``; its last line of JSON.

    ``s3`` (``BT_S3_ENDPOINT``, ``BT_S3_BUCKET``, ``BT_S3_LOCATION``) puts its storage on S3;
    ``env`` adds to its environment.
    """
    environment = {**os.environ, "BT_DSN": dsn, "BT_MEDIA_ROOT": str(media), "PYTHONPATH": str(ROOT)}
    environment.update({**(s3 or {}), **(env or {}), "BT_ONLY_IDS": ",".join(map(str, only or []))})
    result = subprocess.run(
        [sys.executable, "-m", "tests.django_site.probe", mode, *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


async def photo_ids(dsn: str) -> dict[str, int]:
    """``gallery_photo``'s ids by image name."""
    return {row["image"]: row["id"] for row in await sql(dsn, "SELECT id, image FROM gallery_photo")}


def served_otherwise(
    served: dict[str, Any], rows: dict[tuple[str, str], Any], ids: dict[str, int]
) -> list[str]:
    """Where a probe's ``photos`` ([name, width, height] per photo and rendition) differ from the
    registry's rows (by source key and rendition): what batchthumb wrote, and its size."""
    differences = []
    for (key, rendition), row in sorted(rows.items()):
        found = served["photos"][str(ids[key])][rendition]
        if found != [row["object_key"], row["width"], row["height"]]:
            differences.append(
                f"{key} {rendition}: the site has {found}, batchthumb wrote {row['object_key']}"
            )
    return differences


def size_of(path: Path) -> tuple[int, int]:
    image = pyvips.Image.new_from_file(str(path))
    return image.width, image.height


SAME_PICTURE = 4.0
"""Mean difference (of 255 levels, both blurred past the samples' grain) below which two
renditions show the same part of a source; a crop a few pixels off is well above it."""
SMART_SLACK = 10
"""Pixels a smart crop may lie from the library's: entropies of two slices within 1% of each
other are a tie to pilkit, and Pillow's and libvips' resampling can move a slice across it."""


def pixel_distance(one: Path, other: Path, magnified: float, slack: int = 0) -> float:
    """The mean absolute difference of two same-sized images (flattened onto white, sRGB,
    blurred by 2 px times the enlargement), at the best shift within ``slack`` pixels."""

    def load(path: Path) -> Any:
        image = pyvips.Image.new_from_file(str(path))
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        return image.colourspace("srgb").gaussblur(2 * max(1.0, magnified))

    a, b = load(one), load(other)
    distances = []
    for dx in range(-slack, slack + 1):
        for dy in range(-slack, slack + 1):
            width, height = a.width - abs(dx), a.height - abs(dy)
            if width < 1 or height < 1:
                continue
            part_a = a.crop(max(dx, 0), max(dy, 0), width, height)
            part_b = b.crop(max(-dx, 0), max(-dy, 0), width, height)
            distances.append((part_a - part_b).abs().avg())
    return float(min(distances))
