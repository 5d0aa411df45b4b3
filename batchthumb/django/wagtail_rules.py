"""Wagtail's rendition rules, as pure functions: filter specs, geometry, focal point keys, names.

A Wagtail site asks for a rendition by its *filter spec*: the ``{% image %}`` arguments joined
by ``|`` (``fill-300x200-c75|format-webp``), or one of the specs ``{% picture %}`` and
``{% srcset_image %}`` expand from braces (``format-{avif,webp} width-{400,800}``). The row it
looks for is keyed by the image, that spec and a ``focal_point_key``; the file it names follows
``generate_rendition_file``. What is here reproduces Wagtail 8.0.1 (``WAGTAIL-COMPAT.md``):

- :func:`expand_spec` and :func:`clean_spec`: the specs a template's tag asks for, spelled as
  Wagtail stores them (``preserve-svg`` removed);
- :func:`parse_spec`: the twelve built-in operations, any other refused by name;
- :func:`transform`: the crop box and output size, Wagtail's float arithmetic step by step
  (``ImageTransform``, ``FillOperation``, ``Rect.move_to_cover``/``move_to_clamp``/``round``);
- :func:`focal_point_key`, :func:`output_format`, :func:`quality`, :func:`rendition_name`.

The tests compare each with Wagtail's own code on random cases and with the test vectors that
Wagtail produced.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import posixpath
from dataclasses import dataclass

from batchthumb.presets import django_valid_name

OPERATIONS = (
    "original",
    "fill",
    "min",
    "max",
    "width",
    "height",
    "scale",
    "jpegquality",
    "webpquality",
    "avifquality",
    "format",
    "bgcolor",
)
"""Wagtail's built-in operations (``wagtail_hooks.register_image_operations``)."""
TRANSFORMS = frozenset({"fill", "min", "max", "width", "height", "scale"})
WRITABLE_FORMATS = ("jpeg", "png", "webp", "avif")
"""The ``format-*`` values batchthumb writes (Wagtail also writes ``gif``, ``ico`` and ``heic``)."""
EXTENSIONS = {
    "avif": ".avif",
    "jpeg": ".jpg",
    "png": ".png",
    "gif": ".gif",
    "webp": ".webp",
    "svg": ".svg",
    "ico": ".ico",
    "heic": ".heic",
}
"""``IMAGE_FORMAT_EXTENSIONS``: a rendition's extension is its output format's."""
NO_FOCAL_POINT_KEY = hashlib.sha1(b"None-None-None-None").hexdigest()[:8]
"""``2e16d0ba``: the key of every ``fill`` rendition of an image without a focal point."""

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Operation:
    """One ``|``-separated part of a filter spec, checked as Wagtail's ``construct`` checks it."""

    method: str
    width: int = 0
    height: int = 0
    crop_closeness: float = 0.0
    percent: float = 0.0
    quality: int = 0
    format: str = ""
    lossless: bool = False
    colour: tuple[int, int, int] = (255, 255, 255)


@dataclass(frozen=True)
class FocalPoint:
    """The image row's ``focal_point_x``, ``_y``, ``_width``, ``_height`` (the centre and size, in
    pixels of the upright image), any of them ``None`` where the column is NULL."""

    x: int | None = None
    y: int | None = None
    width: int | None = None
    height: int | None = None

    def rect(self) -> Box | None:
        """``get_focal_point()``: the box, only when all four are set."""
        if self.x is None or self.y is None or self.width is None or self.height is None:
            return None
        return _from_point(self.x, self.y, self.width, self.height)


def expand_spec(spec: str) -> list[str]:
    """``Filter.expand_spec``: ``"format-{avif,webp} width-{400,800}"`` → ``format-avif|width-400``,
    ``format-avif|width-800``, ``format-webp|width-400``, ... (left segment outermost). The segments
    are ``|``-separated when the text has a ``|``, else space-separated."""
    segments = spec.split("|" if "|" in spec else " ")
    expanded: list[list[str]] = []
    for segment in segments:
        if "{" in segment and "}" in segment:
            prefix, rest = segment.split("{")
            options, suffix = rest.split("}")
            expanded.append([prefix + option + suffix for option in options.split(",")])
        else:
            expanded.append([segment])
    return ["|".join(parts) for parts in itertools.product(*expanded)]


def clean_spec(spec: str) -> str:
    """The spec as Wagtail stores it for a raster image: ``preserve-svg`` removed
    (``clean_filter_for_svg``). Raises ``ValueError`` when nothing else is left."""
    parts = spec.split("|")
    if "preserve-svg" not in parts:
        return spec
    cleaned = "|".join(part for part in parts if part != "preserve-svg")
    if not cleaned:
        raise ValueError("a spec needs an operation other than 'preserve-svg'")
    return cleaned


def _size(text: str, what: str) -> tuple[int, int]:
    width, x, height = text.partition("x")
    if not x:
        raise ValueError(f"{what}: {text!r} is not WIDTHxHEIGHT")
    return int(width), int(height)


def parse_operation(text: str) -> Operation:
    """One operation (``fill-300x200-c75``), as Wagtail's ``Operation.__init__`` accepts it;
    ``ValueError`` with the reason otherwise."""
    method, *args = text.split("-")
    if method not in OPERATIONS:
        known = ", ".join(OPERATIONS)
        raise ValueError(f"unknown operation {method!r} in {text!r} (Wagtail's own: {known})")
    try:
        return _construct(method, args)
    except (ValueError, IndexError) as exc:
        raise ValueError(f"{text!r}: {exc}") from None


def _construct(method: str, args: list[str]) -> Operation:
    def arguments(count: int, most: int | None = None) -> None:
        if not count <= len(args) <= (count if most is None else most):
            raise ValueError(f"{method} takes {count} argument{'s' if count != 1 else ''}, got {len(args)}")

    if method == "original":
        arguments(0)
        return Operation(method)
    if method == "fill":
        if not args:
            raise ValueError("fill takes a size")
        width, height = _size(args[0], method)
        closeness = 0
        for extra in args[1:]:
            if not extra.startswith("c"):
                raise ValueError(f"unrecognised part {extra!r}")
            closeness = int(extra[1:])
        return Operation(method, width, height, crop_closeness=min(closeness / 100, 1))
    if method in ("min", "max"):
        arguments(1)
        width, height = _size(args[0], method)
        return Operation(method, width, height)
    if method in ("width", "height"):
        arguments(1)
        return Operation(method, width=int(args[0]))
    if method == "scale":
        arguments(1)
        return Operation(method, percent=float(args[0]))
    if method in ("jpegquality", "webpquality", "avifquality"):
        arguments(1)
        quality = int(args[0])
        if quality > 100:
            raise ValueError("a quality must not be higher than 100")
        return Operation(method, quality=quality)
    if method == "format":
        if not args:
            raise ValueError("format takes a format")
        if args[0] not in ("jpeg", "png", "gif", "webp", "avif", "ico", "heic"):
            raise ValueError(f"format must be one of jpeg, png, gif, webp, avif, ico, heic; got {args[0]!r}")
        return Operation(method, format=args[0], lossless="lossless" in args[1:])
    arguments(1)  # bgcolor
    return Operation(method, colour=parse_colour(args[0]))


def parse_colour(text: str) -> tuple[int, int, int]:
    """``parse_color_string``: 3 or 6 hex digits, no ``#``."""
    if len(text) == 3:
        return (int(text[0], 16) * 17, int(text[1], 16) * 17, int(text[2], 16) * 17)
    if len(text) == 6:
        return (int(text[0:2], 16), int(text[2:4], 16), int(text[4:6], 16))
    raise ValueError("a colour is 3 or 6 hexadecimal digits")


def parse_spec(spec: str) -> tuple[Operation, ...]:
    """Every operation of a (cleaned) spec, in order."""
    return tuple(parse_operation(part) for part in spec.split("|"))


def focal_point_key(operations: tuple[Operation, ...], focal: FocalPoint) -> str:
    """``Filter.get_cache_key``: the sha1 of the focal point's width, height, x, y (``None`` where
    NULL) for each ``fill``; ``''`` for a spec without one."""
    parts = [str(value) for op in operations if op.method == "fill" for value in _vary(focal)]
    if not parts:
        return ""
    return hashlib.sha1("-".join(parts).encode()).hexdigest()[:8]


def _vary(focal: FocalPoint) -> tuple[int | None, ...]:
    return (focal.width, focal.height, focal.x, focal.y)


# -- geometry: ImageTransform and the transform operations, in Wagtail's float arithmetic ----------


@dataclass(frozen=True)
class Transform:
    """``ImageTransform``: the output size, and the scale and offset that map the source onto it."""

    size: tuple[int, int]
    scale: tuple[float, float] = (1.0, 1.0)
    offset: tuple[float, float] = (0.0, 0.0)

    def resize(self, size: tuple[int, int]) -> Transform:
        scale = (self.scale[0] * size[0] / self.size[0], self.scale[1] * size[1] / self.size[1])
        return Transform(size, scale, self.offset)

    def crop(self, rect: tuple[int, int, int, int]) -> Transform:
        left, top, right, bottom = rect
        offset = (self.offset[0] - left / self.scale[0], self.offset[1] - top / self.scale[1])
        return Transform((right - left, bottom - top), self.scale, offset)

    def rect(self) -> Box:
        """``get_rect()``: the part of the source the output shows."""
        left, top = -self.offset[0], -self.offset[1]
        return (left, top, left + self.size[0] / self.scale[0], top + self.size[1] / self.scale[1])


@dataclass(frozen=True)
class Plan:
    """What Wagtail makes of one source for one spec: the crop of the upright source (whole
    pixels, clamped to it) and the exact output size."""

    crop: tuple[int, int, int, int]
    size: tuple[int, int]


def _from_point(x: float, y: float, width: float, height: float) -> Box:
    return (x - width / 2, y - height / 2, x + width / 2, y + height / 2)


def _round_outward(box: Box) -> tuple[int, int, int, int]:
    return (math.floor(box[0]), math.floor(box[1]), math.ceil(box[2]), math.ceil(box[3]))


def _move_to_cover(box: Box, other: Box) -> Box:
    left, top, right, bottom = box
    if left > other[0]:
        right -= left - other[0]
        left = other[0]
    if top > other[1]:
        bottom -= top - other[1]
        top = other[1]
    if right < other[2]:
        left += other[2] - right
        right = other[2]
    if bottom < other[3]:
        top += other[3] - bottom
        bottom = other[3]
    return (left, top, right, bottom)


def _move_to_clamp(box: Box, other: Box) -> Box:
    left, top, right, bottom = box
    if left < other[0]:
        right -= left - other[0]
        left = other[0]
    if top < other[1]:
        bottom -= top - other[1]
        top = other[1]
    if right > other[2]:
        left -= right - other[2]
        right = other[2]
    if bottom > other[3]:
        top -= bottom - other[3]
        bottom = other[3]
    return (left, top, right, bottom)


def _fill(op: Operation, transform: Transform, focal: Box | None) -> Transform:
    image_width, image_height = transform.size
    ratio = op.width / op.height
    max_scale = min(image_width, image_height * ratio)
    max_width, max_height = max_scale, max_scale / ratio
    crop_width, crop_height = max_width, max_height
    if focal is not None:
        min_scale = max(focal[2] - focal[0], (focal[3] - focal[1]) * ratio)
        min_width, min_height = min_scale, min_scale / ratio
        if not min_scale >= max_scale:
            most = max(
                1 - (op.width - min_width) / (max_width - min_width),
                1 - (op.height - min_height) / (max_height - min_height),
            )
            closeness = min(op.crop_closeness, most)
            if 1 >= closeness >= 0:
                crop_width = max_width + (min_width - max_width) * closeness
                crop_height = max_height + (min_height - max_height) * closeness
    if focal is not None:
        fp_x, fp_y = (focal[0] + focal[2]) / 2, (focal[1] + focal[3]) / 2
    else:
        fp_x, fp_y = image_width / 2, image_height / 2
    crop_x = fp_x - (fp_x / image_width - 0.5) * crop_width
    crop_y = fp_y - (fp_y / image_height - 0.5) * crop_height
    box = _from_point(crop_x, crop_y, crop_width, crop_height)
    if focal is not None:
        box = _move_to_cover(box, focal)
    box = _move_to_clamp(box, (0, 0, image_width, image_height))
    transform = transform.crop(_round_outward(box))
    if op.width / transform.size[0] < 1.0:
        transform = transform.resize((op.width, op.height))
    return transform


def _at_least_one(width: int, height: int) -> tuple[int, int]:
    return (width if width > 0 else 1, height if height > 0 else 1)


def _min_max(op: Operation, transform: Transform) -> Transform:
    image_width, image_height = transform.size
    horizontal, vertical = op.width / image_width, op.height / image_height
    if op.method == "min":
        if image_width <= op.width or image_height <= op.height:
            return transform
        wider = horizontal > vertical
    else:
        if image_width <= op.width and image_height <= op.height:
            return transform
        wider = horizontal < vertical
    size = (op.width, int(image_height * horizontal)) if wider else (int(image_width * vertical), op.height)
    return transform.resize(_at_least_one(*size))


def _width_height(op: Operation, transform: Transform) -> Transform:
    image_width, image_height = transform.size
    if op.method == "width":
        if image_width <= op.width:
            return transform
        size = (op.width, int(image_height * (op.width / image_width)))
    else:
        if image_height <= op.width:
            return transform
        size = (int(image_width * (op.width / image_height)), op.width)
    return transform.resize(_at_least_one(*size))


def _scale(op: Operation, transform: Transform) -> Transform:
    scale = op.percent / 100
    size = (int(transform.size[0] * scale), int(transform.size[1] * scale))
    return transform.resize(_at_least_one(*size))


def transform(operations: tuple[Operation, ...], size: tuple[int, int], focal: FocalPoint) -> Plan:
    """``Filter.get_transform`` on the upright source, then the crop Willow makes of
    ``get_rect().round()`` (clamped to the image)."""
    current = Transform(size)
    rect = focal.rect()
    for op in operations:
        if op.method == "fill":
            current = _fill(op, current, rect)
        elif op.method in ("min", "max"):
            current = _min_max(op, current)
        elif op.method in ("width", "height"):
            current = _width_height(op, current)
        elif op.method == "scale":
            current = _scale(op, current)
    left, top, right, bottom = _round_outward(current.rect())
    crop = (max(0, left), max(0, top), min(right, size[0]), min(bottom, size[1]))
    return Plan(crop, current.size)


# -- output ---------------------------------------------------------------------------------------


def output_format(operations: tuple[Operation, ...], original: str, conversions: dict[str, str]) -> str:
    """The format Wagtail writes: the last ``format-*``; else the version's conversions (``gif``,
    ``bmp`` → ``png``, ``heic`` → ``jpeg``; before 8.0 also ``webp``, ``avif`` → ``png``) updated
    by ``WAGTAILIMAGES_FORMAT_CONVERSIONS``, else the source's own format."""
    chosen = [op.format for op in operations if op.method == "format"]
    if chosen:
        return chosen[-1]
    return conversions.get(original, original)


def quality(operations: tuple[Operation, ...], fmt: str, defaults: dict[str, int]) -> int:
    """The encoder quality: the spec's last ``<format>quality-N`` for that format, else the site's."""
    asked = [op.quality for op in operations if op.method == f"{fmt}quality"]
    return asked[-1] if asked else defaults.get(fmt, 80)


def lossless(operations: tuple[Operation, ...]) -> bool:
    """``format-webp-lossless`` / ``format-avif-lossless`` (the last ``format-*`` decides)."""
    chosen = [op for op in operations if op.method == "format"]
    return bool(chosen) and chosen[-1].lossless


def background(operations: tuple[Operation, ...]) -> tuple[int, int, int] | None:
    """``bgcolor-X``: the colour alpha is composited onto, after the resize (the last one's)."""
    colours = [op.colour for op in operations if op.method == "bgcolor"]
    return colours[-1] if colours else None


def rendition_name(source_name: str, spec: str, key: str, fmt: str, folder: str = "images") -> str:
    """``generate_rendition_file`` then ``get_upload_to``: ``images/<stem cut to 59 - len(tail)>.
    <key.>spec-with-dots.ext``, through Django's ``get_valid_filename``."""
    stem = posixpath.splitext(posixpath.basename(source_name))[0]
    tail = spec.replace("|", ".") + EXTENSIONS[fmt]
    if key:
        tail = key + "." + tail
    name = stem[: 59 - len(tail)] + "." + tail
    return posixpath.join(folder, django_valid_name(name))
