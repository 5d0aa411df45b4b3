"""What a page shows while an image loads, from the decode the renditions come from.

- **BlurHash** (https://blurha.sh): a few cosine components of the image in 20-30 ASCII
  characters; components follow the image's shape (4x3 landscape, 3x4 portrait), so a
  decoder that knows only the hash still draws the right aspect of blur;
- **dominant colour**: the most common colour (binned 4 bits a channel), as ``#rrggbb``;
- **LQIP**: a ~20 px WebP as a ``data:`` URI, for an ``<img>``'s background.

Pure and synchronous, as ``render.py`` is: they run in its worker threads.
"""

from __future__ import annotations

import base64
import math
from dataclasses import dataclass
from typing import Any

PLACEHOLDER_VERSION = "1"
"""Bumped when any of the three would come out differently for the same source."""
SAMPLE_SIDE = 32
"""The long side of the image the BlurHash and the dominant colour are computed from."""
LQIP_SIDE = 20
LQIP_QUALITY = 40
COMPONENTS = 4
"""BlurHash components along the long side."""
BASE83 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~"


@dataclass(frozen=True)
class Placeholders:
    width: int
    """The source's upright size, for the aspect ratio a page reserves."""
    height: int
    blurhash: str
    color: str
    lqip: str


def make(image: Any, width: int, height: int) -> Placeholders:
    """The three placeholders of an upright pyvips image (any size; it is shrunk first)."""
    sample = _rgb(image.thumbnail_image(SAMPLE_SIDE, height=SAMPLE_SIDE))
    pixels = bytes(sample.write_to_memory())
    x_components, y_components = components(sample.width, sample.height)
    lqip = _rgb(image.thumbnail_image(LQIP_SIDE, height=LQIP_SIDE))
    webp = lqip.webpsave_buffer(Q=LQIP_QUALITY, keep="none", effort=6)
    return Placeholders(
        width,
        height,
        blurhash_encode(pixels, sample.width, sample.height, x_components, y_components),
        dominant_color(pixels),
        "data:image/webp;base64," + base64.b64encode(webp).decode("ascii"),
    )


def components(width: int, height: int) -> tuple[int, int]:
    """BlurHash components by the image's shape: 4 along the long side."""
    if width >= height:
        return COMPONENTS, max(1, min(COMPONENTS, round(COMPONENTS * height / width)))
    return max(1, min(COMPONENTS, round(COMPONENTS * width / height))), COMPONENTS


def _rgb(image: Any) -> Any:
    """8-bit sRGB, three bands: alpha flattened onto white, grey widened."""
    if image.hasalpha():
        image = image.flatten(background=[255] * (image.bands - 1))
    if image.interpretation != "srgb" or image.format != "uchar":
        image = image.colourspace("srgb")
    if image.bands == 1:
        image = image.bandjoin([image, image])
    return image.cast("uchar")


def dominant_color(pixels: bytes) -> str:
    """The mean of the most common 4-bit-per-channel bin of packed RGB pixels: ``#rrggbb``."""
    bins: dict[int, list[int]] = {}
    for offset in range(0, len(pixels) - 2, 3):
        red, green, blue = pixels[offset], pixels[offset + 1], pixels[offset + 2]
        entry = bins.setdefault((red >> 4) << 8 | (green >> 4) << 4 | blue >> 4, [0, 0, 0, 0])
        entry[0] += 1
        entry[1] += red
        entry[2] += green
        entry[3] += blue
    count, red, green, blue = max(bins.values())
    return f"#{round(red / count):02x}{round(green / count):02x}{round(blue / count):02x}"


def _to_linear(value: int) -> float:
    v = value / 255
    return v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4


LINEAR = [_to_linear(value) for value in range(256)]


def _to_srgb(value: float) -> int:
    v = min(max(value, 0.0), 1.0)
    if v <= 0.0031308:
        return int(v * 12.92 * 255 + 0.5)
    return int((1.055 * v ** (1 / 2.4) - 0.055) * 255 + 0.5)


def _base83(value: int, length: int) -> str:
    return "".join(BASE83[(value // 83 ** (length - 1 - i)) % 83] for i in range(length))


def blurhash_encode(pixels: bytes, width: int, height: int, x_components: int, y_components: int) -> str:
    """BlurHash of packed 8-bit RGB pixels, as the reference encoder computes it."""
    if not (1 <= x_components <= 9 and 1 <= y_components <= 9):
        raise ValueError("BlurHash takes 1 to 9 components each way")
    cos_x = [[math.cos(math.pi * i * x / width) for x in range(width)] for i in range(x_components)]
    cos_y = [[math.cos(math.pi * j * y / height) for y in range(height)] for j in range(y_components)]
    linear = [LINEAR[value] for value in pixels]
    factors: list[tuple[float, float, float]] = []
    for j in range(y_components):
        for i in range(x_components):
            red = green = blue = 0.0
            for y in range(height):
                row = y * width * 3
                weight_y = cos_y[j][y]
                for x in range(width):
                    basis = cos_x[i][x] * weight_y
                    offset = row + x * 3
                    red += basis * linear[offset]
                    green += basis * linear[offset + 1]
                    blue += basis * linear[offset + 2]
            scale = (1 if i == j == 0 else 2) / (width * height)
            factors.append((red * scale, green * scale, blue * scale))
    dc, ac = factors[0], factors[1:]
    parts = [_base83((x_components - 1) + (y_components - 1) * 9, 1)]
    if ac:
        actual_max = max(abs(channel) for factor in ac for channel in factor)
        quantised_max = int(max(0, min(82, math.floor(actual_max * 166 - 0.5))))
        maximum = (quantised_max + 1) / 166
        parts.append(_base83(quantised_max, 1))
    else:
        maximum = 1.0
        parts.append(_base83(0, 1))
    parts.append(_base83((_to_srgb(dc[0]) << 16) + (_to_srgb(dc[1]) << 8) + _to_srgb(dc[2]), 4))
    for factor in ac:
        quantised = [
            int(max(0, min(18, math.floor(math.copysign(abs(c / maximum) ** 0.5, c) * 9 + 9.5))))
            for c in factor
        ]
        parts.append(_base83(quantised[0] * 19 * 19 + quantised[1] * 19 + quantised[2], 2))
    return "".join(parts)
