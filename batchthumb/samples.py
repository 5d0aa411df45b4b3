"""Deterministic sample images drawn with pyvips, for the demo, the tests and the bench.

Photo-like: smooth gradients, soft blobs and grain, so that JPEGs compress like
photographs rather than like flat synthetic fills. Nothing is downloaded.
"""

from __future__ import annotations

from typing import Any

import pyvips

SAVE_SUFFIX = {"jpeg": ".jpg", "png": ".png", "webp": ".webp", "tiff": ".tif", "gif": ".gif"}


def sample_image(width: int, height: int, seed: int = 0) -> Any:
    """An 8-bit sRGB image, different for each seed."""
    xyz = pyvips.Image.xyz(width, height)
    x = xyz[0] * (255.0 / max(width - 1, 1))
    y = xyz[1] * (255.0 / max(height - 1, 1))
    phase = (seed * 37) % 255
    red = (x + phase) % 256
    green = (y * 0.7 + x * 0.3 + phase * 2) % 256
    blue = ((x - y) * 0.5 + 128 + phase) % 256
    image = red.bandjoin([green, blue])
    # soft discs, placed by the seed
    for index in range(4):
        cx = (seed * 97 + index * 211) % width
        cy = (seed * 61 + index * 137) % height
        radius = max(2, min(width, height) // (4 + index))
        colour = [(seed * 41 + index * 70) % 256, (index * 90) % 256, (seed * 13) % 256]
        image = image.draw_circle(colour, cx, cy, radius, fill=True)
    grain = pyvips.Image.gaussnoise(width, height, sigma=12, mean=0, seed=seed)  # the same every call
    image = (image + grain).cast("uchar")
    return image.copy(interpretation="srgb")


def sample_bytes(
    width: int,
    height: int,
    fmt: str = "jpeg",
    seed: int = 0,
    quality: int = 88,
    orientation: int | None = None,
) -> bytes:
    """``sample_image`` encoded; ``orientation`` sets the EXIF orientation tag (JPEG)."""
    image = sample_image(width, height, seed)
    if orientation is not None:
        image = image.copy()
        image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    if fmt == "jpeg":
        data: bytes = image.jpegsave_buffer(Q=quality, keep="all" if orientation else "none")
    elif fmt == "png":
        data = image.pngsave_buffer(compression=1)
    elif fmt == "webp":
        data = image.webpsave_buffer(Q=quality)
    else:
        data = image.write_to_buffer(SAVE_SUFFIX[fmt])
    return data
