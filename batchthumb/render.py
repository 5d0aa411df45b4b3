"""Rendering: pure, synchronous pyvips functions, bytes + specs -> renditions.

Each source is decoded once: the header is read first (so the pixel limit is
checked before any decoding), then one ``thumbnail`` call decodes with
shrink-on-load to the smallest size that still serves the largest rendition,
colour-managed to sRGB and rotated upright. That base image is materialised in
memory and every rendition is derived from it; libvips evaluates lazily, so
without the ``copy_memory`` each rendition would decode the source again.

These functions block; callers run them in worker threads, never on the event
loop. libvips releases the GIL while it works, so threads scale across cores.
"""

from __future__ import annotations

import array
import hashlib
import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

import pyvips

from batchthumb import placeholders as placeholding
from batchthumb.errors import BatchthumbError, ImageTooLarge, RenderError
from batchthumb.models import FilterConfig, RenditionConfig
from batchthumb.placeholders import Placeholders
from batchthumb.presets import Geometry, smart_crop_offsets, sorl_smart_crop_box
from batchthumb.specs import RenditionSpec
from batchthumb.stores.base import SourceBytes

UNBOUNDED = 10_000_000
"""A box side that never constrains: thumbnail's way of saying "scale by the other side"."""

SMART_GRAVITIES = {"centre": "centre", "attention": "attention", "entropy": "entropy"}
EDGE_GRAVITIES = {"north", "south", "east", "west"}
SWAPPED_ORIENTATIONS = {5, 6, 7, 8}
"""EXIF orientations that turn the image a quarter: width and height swap."""


@dataclass(frozen=True)
class Rendered:
    """One rendition of a source, encoded."""

    name: str
    data: bytes
    width: int
    height: int
    source_size: tuple[int, int] = (0, 0)
    """The source as decoded, before EXIF rotation (sorl-thumbnail records it)."""
    format: str | None = None
    """The format written, where the output decided it (easy-thumbnails: by its transparency);
    ``None``: the spec's."""
    transparent: bool = False
    """Whether the output kept an alpha band that names it (easy-thumbnails' ``.png``)."""
    placeholders: Placeholders | None = None
    """Set on the one entry :func:`render` adds when asked for the source's placeholders."""
    digest: str = ""
    """The MD5 of ``data`` (hex; made in the worker, off the loop): a run that must take back
    an object it wrote checks first that the object still holds these bytes ('': unknown)."""


PLACEHOLDERS = "@placeholders"
"""The name of that entry: it is no rendition, and never written to the store."""


MINIMUM_LIBVIPS = (8, 15, 0)
"""``keep`` (metadata policy on save) and per-operation blocking need libvips 8.15."""


def configure(block_untrusted: bool = True, threads: int = 1, blocked_loaders: Sequence[str] = ()) -> None:
    """Process-wide libvips settings for batch work; call once at start-up."""
    check_libvips()
    pyvips.concurrency_set(threads)
    for name in blocked_loaders:
        # Blocking the base class blocks its file, buffer and source loaders alike.
        pyvips.operation_block_set(f"VipsForeignLoad{name.capitalize()}", True)
    # The operation cache would keep decoded sources alive between items: useless
    # for a batch that sees each source once, and memory that grows with the run.
    pyvips.cache_set_max(0)
    pyvips.block_untrusted_set(block_untrusted)


WorkerSettings = tuple[bool, int, tuple[str, ...]]
_worker_settings: WorkerSettings | None = None


def render_in_worker(
    data: SourceBytes,
    specs: Sequence[RenditionSpec],
    max_pixels: int,
    settings: WorkerSettings,
    placeholders: bool = False,
) -> list[Rendered]:
    """:func:`render` in a pool process, configuring that process's libvips on first use."""
    global _worker_settings
    if _worker_settings != settings:
        configure(*settings)
        _worker_settings = settings
    return render(data, specs, max_pixels, placeholders)


def warm_up(settings: WorkerSettings) -> None:
    """Start a pool process's libvips before the first image reaches it."""
    global _worker_settings
    if _worker_settings != settings:
        configure(*settings)
        _worker_settings = settings


def libvips_version() -> str:
    return ".".join(str(pyvips.version(part)) for part in range(3))


def check_libvips() -> None:
    """Refuse to run on a libvips too old for what batchthumb relies on."""
    found = tuple(pyvips.version(part) for part in range(3))
    if found < MINIMUM_LIBVIPS:
        raise BatchthumbError(
            f"libvips {libvips_version()} is too old: batchthumb needs "
            f"{'.'.join(map(str, MINIMUM_LIBVIPS))} or later (pip install -U 'pyvips[binary]')"
        )


_diagnosis = threading.Lock()
"""Held while a failure is diagnosed, and by header reads that fail routinely (a WebP's)."""
DIAGNOSIS_ATTEMPTS = 3


def render(
    data: SourceBytes, specs: Sequence[RenditionSpec], max_pixels: int, placeholders: bool = False
) -> list[Rendered]:
    """Decode ``data`` once and encode every spec from it (and, asked, the source's
    placeholders, as a last entry named :data:`PLACEHOLDERS`)."""
    if not data:
        raise RenderError("empty file (0 bytes)")
    try:
        source = pyvips.Source.new_from_memory(data)
        return render_source(source, specs, max_pixels, keyed_png(data), placeholders)
    except RenderError as exc:
        if isinstance(exc, ImageTooLarge):
            raise
        # libvips keeps one error buffer for the whole process, and a thread that fails at
        # the same moment can take this failure's text with its own. Fail again, alone, to
        # get the reason that belongs to this source (rare: only failing sources pay). A
        # header read failing meanwhile (they take the same lock) cannot take it; a render
        # failing meanwhile can, so a reason without libvips' detail is asked for again.
        with _diagnosis:
            for attempt in range(DIAGNOSIS_ATTEMPTS):
                try:
                    render_source(pyvips.Source.new_from_memory(data), specs, max_pixels, keyed_png(data))
                except RenderError as again:
                    detailed = bool(_detail_lines(again.__cause__))
                    if detailed or attempt == DIAGNOSIS_ATTEMPTS - 1:
                        raise again from exc.__cause__
                else:
                    break
        raise


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def keyed_png(data: SourceBytes) -> bool:
    """A grey or RGB PNG (colour type 0 or 2): libvips gives it an alpha band when it has a
    ``tRNS`` colour key, where Pillow keeps it opaque (easy-thumbnails names it ``.jpg``)."""
    return data[:8] == PNG_SIGNATURE and len(data) > 25 and data[25] in (0, 2)


def render_source(
    source: Any,
    specs: Sequence[RenditionSpec],
    max_pixels: int,
    keyed: bool = False,
    placeholders: bool = False,
) -> list[Rendered]:
    """As :func:`render`, from a ``pyvips.Source`` (tests count the bytes it reads); ``keyed``:
    see :func:`keyed_png`."""
    try:
        header = pyvips.Image.new_from_source(source, "", access="sequential")
        width, height = _upright_size(header)
        if width * height > max_pixels:
            raise ImageTooLarge(
                f"{width}x{height} = {width * height:,} pixels, more than limits.max_pixels = {max_pixels:,}"
            )
        swapped = _orientation(header) in SWAPPED_ORIENTATIONS
        stored = (height, width) if swapped else (width, height)
        scale = max((_scale_for(spec, header, (width, height), stored) for spec in specs), default=0.0)
        if placeholders:  # their largest sample, and no smaller
            scale = max(scale, PLACEHOLDER_SOURCE_SIDE / max(stored))
        # Decoded as stored (no rotation), so that renditions of libraries that do not
        # rotate (imagekit) come from the same decode; the others are turned upright below.
        base = pyvips.Image.thumbnail_source(
            source,
            max(1, math.ceil(stored[0] * min(scale, 1.0))),
            height=UNBOUNDED,
            size="down",
            no_rotate=True,
            option_string="fail_on=error",
        )
        base = _to_srgb(base).copy_memory()  # the one decode
        made = None
        if placeholders:  # upright: thumbnail_image honours the orientation tag base keeps here
            made = placeholding.make(base, width, height)
        turns = [_turns(spec, header) for spec in specs]
        upright = base.autorot().copy_memory() if any(turns) else base
        # as stored means as stored: without its orientation tag, no later libvips
        # operation (thumbnail_image honours it) turns what was meant to stay unturned
        base = _untagged(base)
        upright_size, stored_size = (width, height), stored
        # a width set's widths the source cannot give collapse into one output: encoded once
        outputs: dict[tuple[Any, ...], Rendered] = {}
        rendered = []
        for index, (spec, turn) in enumerate(zip(specs, turns, strict=True)):
            size = upright_size if turn else stored_size
            same: tuple[Any, ...] = (index,)
            if spec.variant is not None:
                spec = replace(spec, config=spec.variant.capped(spec.config, size))
                same = (spec.config, turn, spec.variant)
            if same not in outputs:
                image = upright if turn else base
                outputs[same] = replace(_derive(image, spec, size, keyed), source_size=stored_size)
            rendered.append(replace(outputs[same], name=spec.name))
        if made is not None:
            rendered.append(Rendered(PLACEHOLDERS, b"", width, height, stored_size, placeholders=made))
        return rendered
    except pyvips.Error as exc:
        raise RenderError(_reason(exc)) from exc


PLACEHOLDER_SOURCE_SIDE = 2 * placeholding.SAMPLE_SIDE
"""The long side a source is decoded to, at least, for its placeholders alone."""
SCALED_ON_LOAD = {"webpload", "svgload", "pdfload", "heifload", "jp2kload"}
"""Loaders that decode straight to the size asked for."""
BAND_BYTES = {"uchar": 1, "char": 1, "ushort": 2, "short": 2, "uint": 4, "int": 4, "float": 4}
DECODE_OVERHEAD = 1.5
"""What a decode holds on top of its pixels: libvips' working buffers, and the heap that
worker threads keep once freed. An interlaced 60 MP PNG (182 MB of pixels, decoded whole)
peaked 219 MB above the baseline rendered alone (1.2x); three at once on 16 threads, with
two other processes burning the CPU, peaked 11% above reservations made at 1.25x, so
1.5x."""


@dataclass(frozen=True)
class DecodeCost:
    bytes: int
    """What the decode will hold at its peak, estimated."""
    description: str
    """For messages: ``9500x6400 png decoded whole``."""


def decode_cost(head: bytes, specs: Sequence[RenditionSpec]) -> DecodeCost | None:
    """What decoding this source for ``specs`` will cost in memory, from its first bytes alone.

    The header gives the size, bands and depth; the loader says whether it can shrink on load
    (JPEG by 2, 4 or 8; WebP, SVG, PDF, HEIF to any size) or decodes whole (PNG: an interlaced
    one must be; a plain one streams, so this errs high for it). ``None``: the header is not
    in ``head`` (or not an image): the caller assumes the worst.
    """
    try:
        with _diagnosis:  # its routine failures clear libvips' error buffer: not mid-diagnosis
            header = pyvips.Image.new_from_buffer(head, "", access="sequential", fail=False)
        width, height = _upright_size(header)
        swapped = _orientation(header) in SWAPPED_ORIENTATIONS
        stored = (height, width) if swapped else (width, height)
        scale = min(
            1.0, max((_scale_for(spec, header, (width, height), stored) for spec in specs), default=0.0)
        )
        loader = str(header.get("vips-loader")) if header.get_typeof("vips-loader") else ""
        bands, depth = header.bands, BAND_BYTES.get(str(header.format), 8)
    except pyvips.Error:
        # libvips reads a WebP's header only from the whole file; its size is in the first bytes
        size = webp_size(head)
        if size is None:
            return None
        stored = size
        scale = min(1.0, max((_scale_needed(spec.config, *stored) for spec in specs), default=0.0))
        loader, bands, depth = "webpload", 4, 1
    loader = loader.removesuffix("_buffer").removesuffix("_source")
    if loader == "jpegload":
        shrink = next(s for s in (8, 4, 2, 1) if s == 1 or scale * s <= 1.0)
        decoded = math.ceil(stored[0] / shrink) * math.ceil(stored[1] / shrink)
        how = f"shrunk {shrink}x on load" if shrink > 1 else "decoded whole"
    elif loader in SCALED_ON_LOAD:
        decoded = math.ceil(stored[0] * scale) * math.ceil(stored[1] * scale)
        how = "scaled on load"
    else:
        decoded = stored[0] * stored[1]
        how = "decoded whole"
    base = math.ceil(stored[0] * scale) * math.ceil(stored[1] * scale) * 2  # as stored + upright
    total = int((decoded + base) * max(bands, 3) * depth * DECODE_OVERHEAD)
    name = loader.removesuffix("load") or "image"
    return DecodeCost(total, f"{stored[0]}x{stored[1]} {name} {how}")


def webp_size(head: bytes) -> tuple[int, int] | None:
    """A WebP's canvas size from its first 30 bytes (lossy, lossless or extended)."""
    if len(head) < 30 or head[:4] != b"RIFF" or head[8:12] != b"WEBP":
        return None
    chunk = head[12:16]
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        return int.from_bytes(head[26:28], "little") & 0x3FFF, int.from_bytes(head[28:30], "little") & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        return int.from_bytes(head[24:27], "little") + 1, int.from_bytes(head[27:30], "little") + 1
    return None


def _orientation(image: Any) -> int:
    return int(image.get("orientation")) if image.get_typeof("orientation") else 0


def _turns(spec: RenditionSpec, header: Any) -> bool:
    """Whether this rendition turns the source upright (by its EXIF orientation, if it has one)."""
    orientation = _orientation(header)
    if orientation in (0, 1) or spec.config.autorotate is False:
        return False
    if spec.config.autorotate == "jpeg-rotations":
        return orientation in (3, 6, 8) and str(header.get("vips-loader")).startswith("jpeg")
    return True


def _scale_for(spec: RenditionSpec, header: Any, upright: tuple[int, int], stored: tuple[int, int]) -> float:
    """The factor from the source to what this rendition needs of it."""
    width, height = upright if _turns(spec, header) else stored
    geometry = spec.geometry(width, height)
    if geometry is None:
        return _scale_needed(spec.config, width, height)
    if geometry.smart_cover is not None:
        return max(geometry.smart_cover[0] / width, geometry.smart_cover[1] / height)
    left, top, right, bottom = geometry.crop or (0, 0, width, height)
    return max(geometry.width / max(right - left, 1e-9), geometry.height / max(bottom - top, 1e-9))


def _untagged(image: Any) -> Any:
    """The image without its EXIF orientation tag (a copy sharing the pixels)."""
    if not image.get_typeof("orientation"):
        return image
    image = image.copy()
    image.remove("orientation")
    return image


def _upright_size(header: Any) -> tuple[int, int]:
    width, height = header.width, header.height
    if header.get_typeof("page-height"):
        height = header.get("page-height")  # first frame of an animation
    if _orientation(header) in SWAPPED_ORIENTATIONS:
        width, height = height, width
    return width, height


def _scale_needed(spec: RenditionConfig, width: int, height: int) -> float:
    """The factor from the upright source to this rendition (before any crop or padding)."""
    factors = []
    if spec.width is not None:
        factors.append(spec.width / width)
    if spec.height is not None:
        factors.append(spec.height / height)
    scale = max(factors) if spec.mode == "crop" else min(factors)
    return scale if spec.upscale else min(scale, 1.0)


def _to_srgb(image: Any) -> Any:
    """8-bit sRGB (or 8-bit grey), whatever came in: CMYK, 16-bit, Lab, grey16."""
    if image.interpretation in ("b-w", "grey16"):
        return image if image.format == "uchar" else image.colourspace("b-w")
    if image.interpretation != "srgb" or image.format != "uchar":
        return image.colourspace("srgb")
    return image


def _apply_filters(image: Any, filters: Sequence[FilterConfig], stage: str) -> Any:
    for item in filters:
        if item.stage != stage:
            continue
        if item.name == "grayscale":
            image = image.colourspace("b-w")
        elif item.name == "invert":
            if image.hasalpha():
                image = image[: image.bands - 1].invert().bandjoin(image[image.bands - 1])
            else:
                image = image.invert()
        elif item.name == "blur":
            image = image.gaussblur(item.sigma)
        elif item.name == "sharpen":
            image = image.sharpen(sigma=item.sigma)
    return image


def _resize(image: Any, spec: RenditionConfig, focal: tuple[float, float] | None = None) -> Any:
    size = "both" if spec.upscale else "down"
    box_width = spec.width or UNBOUNDED
    box_height = spec.height or UNBOUNDED
    if spec.mode == "fit":
        return image.thumbnail_image(box_width, height=box_height, size=size)
    if spec.mode == "fill":
        fitted = image.thumbnail_image(box_width, height=box_height, size=size)
        return _pad(fitted, box_width, box_height, spec.background)
    # crop: cover the box, then cut it out (about the focal point, where the source has one)
    if spec.gravity in SMART_GRAVITIES and focal is None:
        return image.thumbnail_image(
            box_width, height=box_height, size=size, crop=SMART_GRAVITIES[spec.gravity]
        )
    scale = max(box_width / image.width, box_height / image.height)
    if not spec.upscale:
        scale = min(scale, 1.0)
    cover = image.thumbnail_image(max(1, round(image.width * scale)), height=UNBOUNDED, size=size)
    crop_width, crop_height = min(box_width, cover.width), min(box_height, cover.height)
    left = (cover.width - crop_width) // 2
    top = (cover.height - crop_height) // 2
    if spec.gravity == "north":
        top = 0
    elif spec.gravity == "south":
        top = cover.height - crop_height
    elif spec.gravity == "west":
        left = 0
    elif spec.gravity == "east":
        left = cover.width - crop_width
    if focal is not None:  # the subject as near the centre as the frame allows
        left = min(max(round(focal[0] * cover.width - crop_width / 2), 0), cover.width - crop_width)
        top = min(max(round(focal[1] * cover.height - crop_height / 2), 0), cover.height - crop_height)
    return cover.extract_area(left, top, crop_width, crop_height)


def _to_geometry(
    image: Any, geometry: Geometry, source_size: tuple[int, int], background: tuple[int, int, int]
) -> Any:
    """A library's output exactly: its crop of the source (scaled to this image), its size,
    and its padding (centred, on ``background``)."""
    image = _sized(image, geometry, source_size)
    return image if geometry.pad is None else _pad(image, *geometry.pad, background)


def _sized(image: Any, geometry: Geometry, source_size: tuple[int, int]) -> Any:
    if geometry.smart_cover is not None:
        return _smart_crop(image, geometry.smart_cover, (geometry.width, geometry.height), geometry.smart)
    if geometry.crop is not None:
        scale_x, scale_y = image.width / source_size[0], image.height / source_size[1]
        left, top, right, bottom = geometry.crop
        x, y = round(left * scale_x), round(top * scale_y)
        x, y = min(max(x, 0), image.width - 1), min(max(y, 0), image.height - 1)
        crop_width = min(max(1, round((right - left) * scale_x)), image.width - x)
        crop_height = min(max(1, round((bottom - top) * scale_y)), image.height - y)
        image = image.extract_area(x, y, crop_width, crop_height)
    if (image.width, image.height) == (geometry.width, geometry.height):
        return image
    return image.thumbnail_image(geometry.width, height=geometry.height, size="force")


def _smart_crop(image: Any, cover: tuple[int, int], size: tuple[int, int], whose: str) -> Any:
    """Resized to cover, then cut to ``size`` where pilkit's (or sorl's) smart crop cuts it."""
    if (image.width, image.height) != cover:
        image = image.thumbnail_image(cover[0], height=cover[1], size="force")
    entropy = partial(_entropy, image)
    if whose == "sorl":
        left, top, _, _ = (int(value) for value in sorl_smart_crop_box(cover, size, entropy))
    else:
        left, top = smart_crop_offsets(cover, size, entropy)
    return image.extract_area(left, top, *size)


def _entropy(image: Any, box: tuple[float, float, float, float]) -> float:
    """Pillow's ``Image.entropy()`` of a box: over the histograms of all bands, concatenated."""
    left, top, right, bottom = (int(value) for value in box)
    histogram = image.extract_area(left, top, right - left, bottom - top).hist_find()
    counts = array.array("I", bytes(histogram.write_to_memory()))
    total = float(sum(counts))
    return -math.fsum(count / total * math.log2(count / total) for count in counts if count)


def _pad(image: Any, width: int, height: int, background: tuple[int, int, int]) -> Any:
    if image.width == width and image.height == height:
        return image
    colour: list[float] = list(background)
    if image.bands in (1, 2):
        colour = [sum(background) / 3]
    if image.hasalpha():
        colour.append(255)
    return image.gravity("centre", width, height, extend="background", background=colour)


def _derive(base: Any, spec: RenditionSpec, source_size: tuple[int, int], keyed: bool = False) -> Rendered:
    config = spec.config
    image = _apply_filters(base, config.filters, "before")
    if keyed and image.hasalpha() and spec.pillow_alpha:
        image = image.extract_band(0, n=image.bands - 1)  # Pillow reads a colour-keyed PNG as opaque
    geometry = spec.geometry(*source_size)
    if geometry is None:
        image = _resize(image, config, None if spec.focal is None else spec.focal.fractions(*source_size))
    else:
        image = _to_geometry(image, geometry, source_size, config.background)
    image = _apply_filters(image, config.filters, "after")
    encoding = spec.encoding(bool(image.hasalpha()), geometry)
    fmt = encoding.format
    if (fmt == "jpeg" or encoding.flatten) and image.hasalpha():
        if encoding.jpeg_alpha == "drop" and not encoding.flatten:
            image = image.extract_band(0, n=image.bands - 1)
        else:
            background = list(config.background) if image.bands > 2 else [sum(config.background) / 3]
            image = image.flatten(background=background)
    keep = "none" if config.strip_metadata else "all"
    if fmt == "jpeg" and encoding.progressive:
        data = image.jpegsave_buffer(Q=config.quality, keep=keep, interlace=True, optimize_coding=True)
    elif fmt == "jpeg":
        data = image.jpegsave_buffer(Q=config.quality, keep=keep)
    elif fmt == "png":
        data = image.pngsave_buffer(compression=6, keep=keep)
    elif fmt == "webp":
        data = image.webpsave_buffer(Q=config.quality, keep=keep, lossless=encoding.lossless)
    else:
        avif: dict[str, Any] = {"lossless": True} if encoding.lossless else {}
        if encoding.effort is not None:
            avif["effort"] = encoding.effort
        data = image.heifsave_buffer(Q=config.quality, compression="av1", keep=keep, **avif)
    return Rendered(
        spec.name,
        data,
        image.width,
        image.height,
        format=fmt,
        transparent=encoding.transparent,
        digest=hashlib.md5(data).hexdigest(),
    )


NOT_A_CAUSE = re.compile(r"^image: no property named `[^']*'$")
"""What pyvips' attribute lookups (``image.webpsave_buffer``) leave in libvips' one error buffer
on any thread: never why a source failed, but taken with its reason when they run meanwhile
(found under load: "image: no property named `webpsave_buffer'; gifload_source: no frames")."""


def _detail_lines(exc: Any) -> list[str]:
    """libvips' detail of a failure, less what other threads' lookups left in its buffer."""
    detail = getattr(exc, "detail", "") or ""
    stripped = (line.strip() for line in detail.splitlines())
    return [line for line in stripped if line and not NOT_A_CAUSE.match(line)]


def _reason(exc: Any) -> str:
    """The line of libvips' detail a person can act on."""
    lines = _detail_lines(exc)
    if not lines:
        return str(getattr(exc, "message", exc)).strip() or "libvips error"
    if any("not in a known format" in line for line in lines):
        return "not an image libvips can read (unknown format, or its loader is blocked)"
    return "; ".join(dict.fromkeys(lines))[:500]
