"""What the Django libraries share: Pillow's size arithmetic, the smart crops, names' helpers.

Each library's own rules (its names, its geometry, its options) are its module's, under
:mod:`batchthumb.django`; here is what several of them (and the renderer) use:

- :class:`Geometry`, what a library makes of one source (a crop box, an exact size, a smart
  crop or padding the renderer carries out);
- Pillow's ``thumbnail`` and ``ImageOps.fit`` arithmetic, with Pillow's rounding;
- the two entropy trims the renderer runs: pilkit's (easy-thumbnails' and imagekit's) and
  sorl's, since the box depends on the pixels;
- Django's ``get_valid_filename``, a ``PPOIField`` value, and Pillow's extension and format
  tables.

``DJANGO-COMPAT.md`` (beside the design) has the facts with test vectors; the tests run
the real libraries against these functions.
"""

from __future__ import annotations

import math
import posixpath
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Box = tuple[float, float, float, float]
"""A crop box on the upright source, in source pixels: left, top, right, bottom."""


@dataclass(frozen=True)
class Geometry:
    """What a library makes of one source: an optional crop of the source, then an exact size.

    ``smart_cover``: the source is first resized to this size (covering the box), then cut
    to ``width`` × ``height`` where the image has the most entropy, as pilkit's and
    easy-thumbnails' smart crop does it (:func:`smart_crop_offsets`): the box depends on
    the pixels, not only on the size, so the renderer finds it.
    """

    width: int
    height: int
    crop: Box | None = None
    smart_cover: tuple[int, int] | None = None
    smart: Literal["pilkit", "sorl"] = "pilkit"
    """Whose smart crop: pilkit's (and easy-thumbnails') or sorl-thumbnail's."""
    pad: tuple[int, int] | None = None
    """sorl's ``padding``: the result centred on a canvas of this size (``int`` offsets)."""


# -- Pillow's and pilkit's size arithmetic ------------------------------------------------


def pil_thumbnail(width: int, height: int, box_width: int, box_height: int) -> Geometry:
    """``Image.thumbnail((w, h))``: fit in the box, never enlarge, Pillow's aspect rounding."""
    if box_width >= width and box_height >= height:
        return Geometry(width, height)
    aspect = width / height
    x, y = box_width, box_height
    if x / y >= aspect:
        x = _round_aspect(y * aspect, lambda n: abs(aspect - n / y))
    else:
        y = _round_aspect(x / aspect, lambda n: 0 if n == 0 else abs(aspect - x / n))
    return Geometry(x, y)


def _round_aspect(number: float, key: Callable[[int], float]) -> int:
    return max(min(math.floor(number), math.ceil(number), key=key), 1)


def pil_fit(width: int, height: int, box_width: int, box_height: int) -> Geometry:
    """``ImageOps.fit(image, (w, h))``: the centred crop of the box's aspect, resized to the box."""
    source_ratio, box_ratio = width / height, box_width / box_height
    if source_ratio == box_ratio:
        crop_width, crop_height = float(width), float(height)
    elif source_ratio >= box_ratio:
        crop_width, crop_height = box_ratio * height, float(height)
    else:
        crop_width, crop_height = float(width), width / box_ratio
    left, top = (width - crop_width) * 0.5, (height - crop_height) * 0.5
    return Geometry(box_width, box_height, (left, top, left + crop_width, top + crop_height))


def smart_crop_offsets(
    size: tuple[int, int], target: tuple[int, int], entropy: Callable[[Box], float]
) -> tuple[int, int]:
    """Where pilkit's ``SmartCrop`` (easy-thumbnails' ancestor) cuts ``target`` out of ``size``.

    It trims each axis in slices (a fifth of what is left to trim, at least 10 px), from
    the end whose slice has less histogram entropy, or from both ends when they are
    within 1% of each other. ``entropy`` gives a box's entropy (left, top, right, bottom).
    """
    source_x, source_y = size
    diff_x, diff_y = source_x - min(source_x, target[0]), source_y - min(source_y, target[1])
    left = top = 0
    right, bottom = source_x, source_y

    def trim(start: float, end: float, piece: int, difference: int) -> tuple[int, int]:
        if end and abs(start / end - 1) < 0.01:
            if difference >= piece * 2:
                return piece, piece
            return piece // 2, piece - piece // 2
        return (0, piece) if start > end else (piece, 0)

    while diff_x:
        piece = min(diff_x, max(diff_x // 5, 10))
        start = entropy((left, 0, left + piece, source_y))
        end = entropy((right - piece, 0, right, source_y))
        add, remove = trim(start, end, piece, diff_x)
        left, right, diff_x = left + add, right - remove, diff_x - add - remove
    while diff_y:
        piece = min(diff_y, max(diff_y // 5, 10))
        start = entropy((0, top, source_x, top + piece))
        end = entropy((0, bottom - piece, source_x, bottom))
        add, remove = trim(start, end, piece, diff_y)
        top, bottom, diff_y = top + add, bottom - remove, diff_y - add - remove
    return left, top


def sorl_smart_crop_box(
    size: tuple[int, int], target: tuple[int, int], entropy: Callable[[Box], float]
) -> Box:
    """sorl-thumbnail's ``_entropy_crop``: trim the side of less entropy, up to 10 px a round."""
    (image_width, image_height), (target_width, target_height) = size, target
    left, top, right, bottom = 0, 0, image_width, image_height
    while right - left > target_width:
        step = min(right - left - target_width, 10)
        if entropy((left, top, left + step, bottom)) < entropy((right - step, top, right, bottom)):
            left += step
        else:
            right -= step
    while bottom - top > target_height:
        step = min(bottom - top - target_height, 10)
        if entropy((left, bottom - step, right, bottom)) < entropy((left, top, right, top + step)):
            bottom -= step
        else:
            top += step
    return (left, top, right, bottom)


# -- names ---------------------------------------------------------------------------------


def django_valid_name(name: str) -> str:
    """``django.utils.text.get_valid_filename``: spaces to ``_``, then only ``[-\\w.]`` kept."""
    return re.sub(r"(?u)[^-\w.]", "", str(name).strip().replace(" ", "_"))


PPOI = re.compile(r"^\s*([0-9.]+)\s*x\s*([0-9.]+)\s*$")


def parse_ppoi(text: str | None) -> tuple[float, float]:
    """A ``PPOIField`` value (``"0.3x0.7"``) as versatileimagefield reads it; absent: the centre."""
    if text is None or text == "":
        return (0.5, 0.5)
    match = PPOI.match(text)
    values = (float(match.group(1)), float(match.group(2))) if match else None
    if values is None or not all(0 <= value <= 1 for value in values):
        raise ValueError(f"PPOI {text!r} is not 'XxY' with X and Y between 0 and 1")
    return values


EXTENSION_FORMATS: dict[str, Literal["jpeg", "png", "webp"]] = {
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "jpe": "jpeg",
    "jfif": "jpeg",
    "png": "png",
    "webp": "webp",
}
PILLOW_OTHER_EXTENSIONS = frozenset(
    {"gif", "bmp", "dib", "tif", "tiff", "ico", "icns", "tga", "ppm", "pgm", "pbm", "pnm", "pcx"}
    | {"avif", "avifs", "heic", "heif", "jp2", "j2k", "jpx", "psd", "eps", "ps", "pdf", "dds", "qoi"}
)
"""Extensions Pillow writes in a format of their own, which batchthumb does not write."""


def extension_format(extension: str) -> Literal["jpeg", "png", "webp"] | None:
    """What Pillow's ``save`` writes under this extension (JPEG when it knows none); ``None``:
    a format batchthumb does not write."""
    extension = extension.lower()
    if extension in EXTENSION_FORMATS:
        return EXTENSION_FORMATS[extension]
    return None if extension in PILLOW_OTHER_EXTENSIONS else "jpeg"


PILLOW_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp", "GIF": ".gif"}
BATCHTHUMB_FORMATS: dict[str, Literal["jpeg", "png", "webp"]] = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp"}
SOURCE_FORMATS = {"jpg": "JPEG", "jpeg": "JPEG", "png": "PNG", "webp": "WEBP", "gif": "GIF"}


def source_format(source_key: str) -> str | None:
    """The Pillow format name a source's extension implies (``JPEG``), or ``None``."""
    ext = posixpath.splitext(source_key)[1].lstrip(".").lower()
    return SOURCE_FORMATS.get(ext)


__all__ = [name for name in dir(sys.modules[__name__]) if not name.startswith("_")]
