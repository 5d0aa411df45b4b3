"""Hostile and unusual images, made here: good ones render right, bad ones fail clearly, the run goes on."""

from __future__ import annotations

import asyncio
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
import pyvips

from batchthumb.config import RenditionConfig
from batchthumb.errors import RenderError
from batchthumb.render import configure, render
from batchthumb.samples import sample_bytes, sample_image
from batchthumb.specs import RenditionSpec
from tests.helpers import batchthumb, create_photo_table, sql, write_config, write_sources

RENDITIONS = {
    "thumb": {"mode": "crop", "width": 96, "height": 96, "format": "webp"},
    "medium": {"width": 300, "height": 300},
    "wide": {"mode": "fill", "width": 320, "height": 180, "format": "png"},
}
LIMITS = {
    "max_source_bytes": 3_000_000,
    # libvips has one error buffer per process: with several renders failing at the same moment a
    # reason's wording can be lost (the failure itself never is). One worker makes the exact
    # wording asserted below deterministic.
    "render_workers": 1,
}


def png_bomb(width: int = 50_000, height: int = 50_000) -> bytes:
    """A valid PNG header declaring width x height pixels, in a few hundred bytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")


def animation(fmt: str) -> bytes:
    frames = [sample_image(100, 80, seed) for seed in range(3)]
    strip = frames[0].join(frames[1], "vertical").join(frames[2], "vertical").copy()
    strip.set_type(pyvips.GValue.gint_type, "page-height", 80)
    data: bytes = strip.gifsave_buffer() if fmt == "gif" else strip.webpsave_buffer()
    return data


def corpus() -> dict[str, bytes]:
    jpeg = sample_bytes(600, 400, "jpeg", seed=9)
    rgb16 = sample_image(300, 200, 3).colourspace("rgb16")
    files = {
        # bad
        "bad/truncated.jpg": jpeg[: len(jpeg) // 3],
        "bad/zero.jpg": b"",
        "bad/text.jpg": b"<html>this is not an image</html>\n",
        "bad/bomb.png": png_bomb(),
        "bad/too-many-bytes.png": sample_image(1400, 1100, 5).pngsave_buffer(compression=0),
        # good
        "good/strip.png": pyvips.Image.black(1, 100_000).pngsave_buffer(),
        "good/rgba16.png": rgb16.bandjoin(40000).copy(interpretation="rgb16").pngsave_buffer(),
        "good/cmyk-icc.jpg": sample_image(300, 200, 4).icc_transform("cmyk").jpegsave_buffer(keep="icc"),
        "good/gray.jpg": sample_image(300, 200, 6).colourspace("b-w").jpegsave_buffer(),
        "good/animated.gif": animation("gif"),
        "good/animated.webp": animation("webp"),
        "good/scan.tif": sample_image(300, 200, 7).tiffsave_buffer(),
        # libvips marks its SVG loader untrusted: blocked unless limits.block_untrusted = false
        "untrusted/logo.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="300" height="150">'
        b'<rect width="300" height="150" fill="#c33"/></svg>',
        "good/photo.avif": sample_image(300, 200, 8).heifsave_buffer(compression="av1", Q=60),
    }
    for orientation in range(1, 9):
        files[f"good/orientation-{orientation}.jpg"] = sample_bytes(400, 200, "jpeg", orientation=orientation)
    return files


@pytest.mark.timeout(300)
def test_hostile_corpus_through_the_command_line(pg_dsn: str, tmp_path: Path) -> None:
    media, out = tmp_path / "media", tmp_path / "out"
    files = corpus()
    keys = write_sources(media, list(files.items()))
    asyncio.run(create_photo_table(pg_dsn, keys, fingerprint=False))
    config = write_config(tmp_path / "batchthumb.toml", pg_dsn, media, out, RENDITIONS, LIMITS)
    result = batchthumb(config, "generate", "--json", timeout=240)

    assert result.returncode == 3, result.stderr  # finished, with failures
    summary = json.loads(result.stdout)
    good = [key for key in files if key.startswith("good/")]
    bad = [key for key in files if key.startswith(("bad/", "untrusted/"))]
    assert (summary["written"], summary["failed"]) == (3 * len(good), len(bad)), result.stderr

    failures = {
        row["source_key"]: row for row in asyncio.run(sql(pg_dsn, "SELECT * FROM batchthumb.failures"))
    }
    assert set(failures) == set(bad)
    reasons = {key: row["message"] for key, row in failures.items()}
    assert "premature end of JPEG image" in reasons["bad/truncated.jpg"]
    assert reasons["bad/zero.jpg"] == "empty file (0 bytes)"
    assert "unknown format" in reasons["bad/text.jpg"]
    assert reasons["bad/bomb.png"] == (
        "50000x50000 = 2,500,000,000 pixels, more than limits.max_pixels = 100,000,000"
    )
    assert "bytes, more than the limit of 3000000" in reasons["bad/too-many-bytes.png"]
    # too many bytes is the store's refusal, too many pixels the renderer's: two classes
    assert failures["bad/too-many-bytes.png"]["error_class"] == "SourceTooLarge"
    assert failures["bad/bomb.png"]["error_class"] == "ImageTooLarge"
    assert "its loader is blocked" in reasons["untrusted/logo.svg"]
    assert all(row["permanent"] for row in failures.values())
    for key in bad:  # one line each, naming the source and the reason
        assert any(line.startswith(f"failed photos: {key}: ") for line in result.stderr.splitlines())

    rendered = {
        (row["source_key"], row["rendition"]): row
        for row in asyncio.run(sql(pg_dsn, "SELECT * FROM batchthumb.renditions"))
    }
    assert {key for key, _ in rendered} == set(good)

    def image(key: str, rendition: str) -> Any:
        return pyvips.Image.new_from_file(str(out / rendered[(key, rendition)]["object_key"]))

    for orientation in range(1, 9):
        medium = image(f"good/orientation-{orientation}.jpg", "medium")
        upright = (150, 300) if orientation >= 5 else (300, 150)
        assert (medium.width, medium.height) == upright, orientation
    assert image("good/cmyk-icc.jpg", "medium").interpretation == "srgb"
    assert image("good/cmyk-icc.jpg", "medium").bands == 3
    assert image("good/rgba16.png", "wide").bands == 4  # alpha kept in PNG
    assert image("good/rgba16.png", "wide").format == "uchar"
    assert image("good/rgba16.png", "medium").bands == 3  # flattened for JPEG
    for animated in ("good/animated.gif", "good/animated.webp"):
        first_frame = image(animated, "medium")
        assert (first_frame.width, first_frame.height) == (100, 80)  # one frame, not the strip
    assert (image("good/strip.png", "medium").width, image("good/strip.png", "medium").height) == (1, 300)

    # the switch: trusting libvips' untrusted loaders renders the SVG on a retry
    untrusted = {"BATCHTHUMB_LIMITS__BLOCK_UNTRUSTED": "false"}
    retry = batchthumb(config, "generate", "--retry-failed", "--json", env=untrusted, timeout=240)
    assert retry.returncode == 3, retry.stderr  # the bad ones fail again
    assert json.loads(retry.stdout)["written"] == 3
    svg = asyncio.run(sql(pg_dsn, "SELECT width, height FROM batchthumb.renditions WHERE source_key = $1 "
                                  "AND rendition = 'medium'", "untrusted/logo.svg"))  # fmt: skip
    assert [tuple(row) for row in svg] == [(300, 150)]


def test_a_blocked_loader_refuses_its_format() -> None:
    tiff = sample_image(20, 10, 1).tiffsave_buffer()
    spec = RenditionSpec.from_config("t", RenditionConfig(width=5))
    assert render(tiff, [spec], 10**9)[0].width == 5
    configure(block_untrusted=False, blocked_loaders=("tiff",))
    try:
        with pytest.raises(RenderError, match="its loader is blocked"):
            render(tiff, [spec], 10**9)
        assert render(sample_bytes(20, 10, "png"), [spec], 10**9)[0].width == 5  # others still load
    finally:
        pyvips.operation_block_set("VipsForeignLoadTiff", False)
