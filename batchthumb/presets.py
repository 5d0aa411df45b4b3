"""Drop-in layouts: the names, namespaces and geometry of Django thumbnail libraries.

A preset rendition is written in its library's own vocabulary (what a site has in
``models.py`` and ``settings.py``); here it becomes what batchthumb needs to stand in
for the library:

- the **object key** the library computes for a source (``object_key``), relative to
  the storage root the sources live under;
- the **namespace** it writes in (``prefixes``) and a pattern of its names (``owns``):
  a drop-in run writes and deletes only names of that pattern;
- the **geometry**: the output size the library's own code gives a source of a given
  size (Pillow's rounding, upscaling rules, crops), so batchthumb's object has the size
  a template, a ``width``/``height`` attribute or the library itself expects;
- the **rendering rules** that change the output: format (the source's, or a fixed
  one), quality, EXIF rotation (django-imagekit does not rotate).

``DJANGO-COMPAT.md`` (beside the design) has the facts with test vectors; the tests run
the real libraries against these functions.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import json
import math
import pickle
import posixpath
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from batchthumb.errors import RenderError

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


def versatile_crop(
    width: int, height: int, box_width: int, box_height: int, ppoi: tuple[float, float]
) -> Geometry:
    """versatileimagefield's ``crop``: the box's aspect around the PPOI, resized to the box."""
    crop_aspect = box_width / box_height
    centre_x, centre_y = int(width * ppoi[0]), int(height * ppoi[1])
    if width / height > crop_aspect:  # wider than needed: crop the sides
        crop_width, crop_height = int(height * crop_aspect + 0.5), height
        left = min(max(centre_x - crop_width // 2, 0), width - crop_width)
        return Geometry(box_width, box_height, (left, 0, left + crop_width, crop_height))
    crop_width, crop_height = width, int(width / crop_aspect + 0.5)
    top = min(max(centre_y - crop_height // 2, 0), height - crop_height)
    return Geometry(box_width, box_height, (0, top, crop_width, top + crop_height))


def pilkit_fit(
    width: int, height: int, box_width: int | None, box_height: int | None, upscale: bool
) -> Geometry:
    """pilkit's ``ResizeToFit``: the ratio of the tighter side, ``round(...)``."""
    if box_width is not None and box_height is not None:
        ratio = min(box_width / width, box_height / height)
    elif box_width is None:
        ratio = (box_height or height) / height
    else:
        ratio = box_width / width
    new_width, new_height = round(width * ratio), round(height * ratio)
    if upscale or (new_width < width and new_height < height):
        return Geometry(new_width, new_height)
    return Geometry(width, height)


PILKIT_ANCHORS: dict[str, tuple[float, float]] = {
    "tl": (0, 0),
    "t": (0.5, 0),
    "tr": (1, 0),
    "l": (0, 0.5),
    "c": (0.5, 0.5),
    "r": (1, 0.5),
    "bl": (0, 1),
    "b": (0.5, 1),
    "br": (1, 1),
}
"""pilkit's ``Anchor`` names, as fractions of the trimmed width and height."""


def pilkit_anchor(anchor: str | tuple[float, float] | None) -> tuple[float, float]:
    """``Anchor.get_tuple``, with ``None`` meaning the centre (as ``ResizeCanvas`` takes it)."""
    if anchor is None:
        return PILKIT_ANCHORS["c"]
    if isinstance(anchor, str):
        return PILKIT_ANCHORS[anchor]
    return (float(anchor[0]), float(anchor[1]))


def _pilkit_cover(width: int, height: int, box_width: int, box_height: int, upscale: bool) -> tuple[int, int]:
    """``ResizeToCover``: the size covering the box (``round``), unless it would enlarge."""
    ratio = max(box_width / width, box_height / height)
    cover_width, cover_height = round(width * ratio), round(height * ratio)
    if upscale or (cover_width < width and cover_height < height):
        return cover_width, cover_height
    return width, height


def pilkit_fill(
    width: int,
    height: int,
    box_width: int,
    box_height: int,
    upscale: bool,
    anchor: tuple[float, float] = (0.5, 0.5),
) -> Geometry:
    """pilkit's ``ResizeToFill``: cover the box, then ``Crop`` at the anchor (never enlarging)."""
    cover_width, cover_height = _pilkit_cover(width, height, box_width, box_height, upscale)
    out_width, out_height = min(box_width, cover_width), min(box_height, cover_height)
    # ResizeCanvas: the offset is int(trim * anchor) on the cover image; scaled back to the source
    scale_x, scale_y = cover_width / width, cover_height / height
    left = int((cover_width - out_width) * anchor[0]) / scale_x
    top = int((cover_height - out_height) * anchor[1]) / scale_y
    return Geometry(
        out_width, out_height, (left, top, left + out_width / scale_x, top + out_height / scale_y)
    )


def pilkit_smart(width: int, height: int, box_width: int, box_height: int, upscale: bool) -> Geometry:
    """pilkit's ``SmartResize`` (``Thumbnail``'s ``anchor="auto"``): cover, then ``SmartCrop``."""
    cover = _pilkit_cover(width, height, box_width, box_height, upscale)
    return Geometry(min(box_width, cover[0]), min(box_height, cover[1]), smart_cover=cover)


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


def sorl_toint(number: float) -> int:
    """sorl's ``toint``: ``round`` above 1, ``ceil`` at or below (a 1×54 image keeps a pixel)."""
    return int(round(number, 0) if number > 1 else round(math.ceil(number), 0))


SORL_GEOMETRY = re.compile(r"^(?P<x>\d+)?(?:x(?P<y>\d+))?$")
SORL_POSITION = re.compile(r"^(?P<value>\d+)(?P<unit>%|px)$")


def sorl_parse_geometry(geometry: str, ratio: float) -> tuple[int, int]:
    """``parse_geometry``: ``"300x200"``, ``"300"``, ``"x200"``; the missing side by the ratio."""
    match = SORL_GEOMETRY.match(geometry)
    if match is None or (match.group("x") is None and match.group("y") is None):
        raise ValueError(f"geometry {geometry!r} is not 'WxH', 'W' or 'xH'")
    x = int(match.group("x")) if match.group("x") is not None else None
    y = int(match.group("y")) if match.group("y") is not None else None
    if x is None:
        assert y is not None
        return sorl_toint(y * ratio), y
    if y is None:
        return x, sorl_toint(x / ratio)
    return x, y


def sorl_crop_offsets(crop: str, image: tuple[int, int], window: tuple[int, int]) -> tuple[int, int]:
    """``parse_crop``: ``center``, ``top``, ``left bottom``, ``"30% 70%"``, ``"10px 0px"``."""
    x_alias = {"left": "0%", "center": "50%", "right": "100%"}
    y_alias = {"top": "0%", "center": "50%", "bottom": "100%"}
    parts = crop.split(" ")
    if len(parts) == 1:
        if crop in x_alias:
            x_crop, y_crop = x_alias[crop], "50%"
        elif crop in y_alias:
            x_crop, y_crop = "50%", y_alias[crop]
        else:
            x_crop = y_crop = crop
    elif len(parts) == 2:
        x_crop, y_crop = x_alias.get(parts[0], parts[0]), y_alias.get(parts[1], parts[1])
    else:
        raise ValueError(f"crop {crop!r} is not one of sorl's crop positions")

    def offset(position: str, room: int) -> int:
        match = SORL_POSITION.match(position)
        if match is None:
            raise ValueError(f"crop {crop!r} is not one of sorl's crop positions")
        value: float = int(match.group("value"))
        if match.group("unit") == "%":
            value = room * value / 100.0
        return int(max(0, min(value, room)))

    return offset(x_crop, image[0] - window[0]), offset(y_crop, image[1] - window[1])


def sorl_geometry(width: int, height: int, geometry: str, options: dict[str, Any]) -> Geometry:
    """sorl's PIL engine on an upright source: scale (``toint``), crop, padding."""
    box_width, box_height = sorl_parse_geometry(geometry, width / height)
    crop = options.get("crop") or None
    cropping = crop is not None and crop != "noop"
    factor = (max if cropping else min)(box_width / width, box_height / height)
    scaled = (width, height)
    if factor < 1 or options.get("upscale"):
        scaled = (sorl_toint(width * factor), sorl_toint(height * factor))
    if not cropping:
        result = Geometry(*scaled)
    elif crop == "smart":
        ratio = box_width / box_height
        target = (
            max(min(scaled[0], round(scaled[1] * ratio)), 1),
            max(min(scaled[1], round(scaled[0] / ratio)), 1),
        )
        result = Geometry(*target, smart_cover=scaled, smart="sorl")
    else:
        window = (min(scaled[0], box_width), min(scaled[1], box_height))
        x, y = sorl_crop_offsets(str(crop), scaled, window)
        scale_x, scale_y = scaled[0] / width, scaled[1] / height
        box = (x / scale_x, y / scale_y, (x + window[0]) / scale_x, (y + window[1]) / scale_y)
        result = Geometry(*window, crop=box)
    if options.get("padding") and (result.width, result.height) != (box_width, box_height):
        return replace(result, pad=(box_width, box_height))
    return result


def easy_geometry(width: int, height: int, options: dict[str, Any]) -> Geometry:
    """easy-thumbnails' ``scale_and_crop`` (and ``background``) on an upright source.

    Scale by the tighter side (the looser one to crop, or when a side of ``size`` is 0),
    ``int(round(...))``, never enlarging without ``upscale``; ``zoom`` enlarges the scale
    after the size is settled; then a crop of at most ``size`` around the ``target``
    focal point (default the centre), from the edges (``",0"``, ``"-10,"``) or by entropy
    (``"smart"``, pilkit's algorithm); ``"scale"`` keeps the scaled image whole.
    """
    source_x, source_y = float(width), float(height)
    target_x, target_y = (int(side) for side in options["size"])
    crop = options.get("crop") or False
    if crop or not target_x or not target_y:
        scale = max(target_x / source_x, target_y / source_y)
    else:
        scale = min(target_x / source_x, target_y / source_y)
    if not target_x:
        target_x = round(source_x * scale)
    elif not target_y:
        target_y = round(source_y * scale)
    zoom = options.get("zoom")
    if zoom:
        if not crop:
            target_x, target_y, crop = round(source_x * scale), round(source_y * scale), True
        scale *= (100 + int(zoom)) / 100.0
    scaled = (width, height)
    if scale < 1.0 or (scale > 1.0 and options.get("upscale")):
        scaled = (round(source_x * scale), round(source_y * scale))
    if 0 in scaled:  # found by the property tests: easy-thumbnails' resize fails here too
        raise RenderError(
            f"easy-thumbnails scales this {width}x{height} source to {scaled[0]}x{scaled[1]} with "
            f"these options: a side of 0 px, which it cannot save either"
        )
    result = Geometry(*scaled)
    scaled_x, scaled_y = scaled
    diff_x, diff_y = scaled_x - min(scaled_x, target_x), scaled_y - min(scaled_y, target_y)
    if crop and crop != "scale" and (diff_x or diff_y):
        window = (scaled_x - diff_x, scaled_y - diff_y)
        edges = re.match(r"(?:(-?)(\d+))?,(?:(-?)(\d+))?$", crop) if isinstance(crop, str) else None
        if edges is None and crop == "smart":
            result = Geometry(*window, smart_cover=scaled)
        else:
            left, top = _easy_focal_offsets(scaled, (target_x, target_y), options.get("target"))
            if edges is not None:
                x_right, x_crop, y_bottom, y_crop = edges.groups()
                if x_crop:
                    offset = min(target_x * int(x_crop) // 100, diff_x)
                    left = diff_x - offset if x_right else offset
                if y_crop:
                    offset = min(target_y * int(y_crop) // 100, diff_y)
                    top = diff_y - offset if y_bottom else offset
            factor_x, factor_y = scaled_x / width, scaled_y / height
            box = (
                left / factor_x,
                top / factor_y,
                (left + window[0]) / factor_x,
                (top + window[1]) / factor_y,
            )
            result = Geometry(*window, crop=box)
    background, (size_x, size_y) = options.get("background"), options["size"]
    if background and size_x and size_y and (result.width < size_x or result.height < size_y):
        return replace(result, pad=(int(size_x), int(size_y)))
    return result


def _easy_focal_offsets(
    scaled: tuple[int, int], target: tuple[int, int], focal: str | tuple[int, int] | None
) -> tuple[int, int]:
    """Where a crop of ``target`` starts so that the focal point (percent) is centred."""
    point: tuple[Any, ...] | None = None
    if isinstance(focal, str):
        match = re.match(r"(\d+)?,(\d+)?$", focal)
        point = match.groups() if match else None
    elif focal:
        point = tuple(focal)
    focal_x, focal_y = (int(n) if (n or n == 0) else 50 for n in point) if point else (50, 50)
    (scaled_x, scaled_y), (target_x, target_y) = scaled, target
    left = max(0, min(scaled_x - target_x, int(scaled_x * focal_x / 100) - int(target_x / 2)))
    top = max(0, min(scaled_y - target_y, int(scaled_y * focal_y / 100) - int(target_y / 2)))
    return left, top


# -- names ---------------------------------------------------------------------------------


def django_valid_name(name: str) -> str:
    """``django.utils.text.get_valid_filename``: spaces to ``_``, then only ``[-\\w.]`` kept."""
    return re.sub(r"(?u)[^-\w.]", "", str(name).strip().replace(" ", "_"))


def advance_thumbnail_name(source_key: str, upload_to: str) -> str:
    """django_advance_thumbnail: ``<upload_to>/<stem>_thumbnail<ext>``, as Django's storage names it."""
    stem, ext = posixpath.splitext(posixpath.basename(source_key))
    filename = django_valid_name(f"{stem}_thumbnail{ext}")
    return posixpath.normpath(posixpath.join(upload_to, filename))


def versatile_name(
    source_key: str, key: str, width: int, height: int, jpeg_quality: int, webp_quality: int, sized_dir: str
) -> str:
    """versatileimagefield's ``get_resized_path`` (no ``image_key_post_processor``)."""
    folder, filename = posixpath.split(source_key)
    try:
        stem, ext = filename.rsplit(".", 1)
    except ValueError:
        stem, ext = filename, "jpg"
    part = f"{key}-{width}x{height}"
    if ext.lower() in ("jpg", "jpeg", "webp"):
        part += f"-{webp_quality if ext.lower() == 'webp' else jpeg_quality}"
    return posixpath.join(sized_dir, folder, f"{stem}-{part}.{ext}").replace(" ", "")


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


def versatile_key(sizer: str, ppoi: tuple[float, float]) -> str:
    """``thumbnail``, or ``crop-c0-5__0-5`` for a crop at PPOI (0.5, 0.5)."""
    if sizer == "thumbnail":
        return "thumbnail"
    x, y = (str(value).replace(".", "-") for value in ppoi)
    return f"crop-c{x}__{y}"


# imagekit hashes the pickle of [source name, processors, format, options, autoconvert]
# made by the pure-Python pickler, protocol 0, dict items and sets sorted
# (imagekit.hashers.CanonicalizingPickler). A processor pickles as its class path and
# every attribute; these stand-ins carry exactly pilkit's attributes, under pilkit's names.


class PilkitClass:
    """Stands for a pilkit class in the pickle: written as its module and name, nothing more."""

    def __init__(self, name: str, module: str = "pilkit.processors.resize") -> None:
        self.module = module
        self.name = name


class PilkitProcessor:
    """A processor as imagekit pickles it: its class, then every attribute (``__dict__``)."""

    def __init__(self, cls: PilkitClass, attributes: dict[str, Any]) -> None:
        self.cls = cls
        self.attributes = attributes

    def __reduce_ex__(self, protocol: Any) -> Any:
        # what copyreg._reduce_ex gives a plain object at protocol 0
        return (_reconstructor, (self.cls, object, None), self.attributes)


PILKIT_CLASSES = {
    name: PilkitClass(name) for name in ("ResizeToFit", "ResizeToFill", "SmartResize", "Thumbnail")
}


_Pickler: Any = vars(pickle)["_Pickler"]  # the pure-Python one: the C pickler gives other bytes
_reconstructor: Any = vars(copyreg)["_reconstructor"]
DICT, GLOBAL, MARK = pickle.DICT, pickle.GLOBAL, pickle.MARK


class _CanonicalPickler(_Pickler):  # type: ignore[misc]
    """The pure-Python pickler with dict items sorted (imagekit's ``CanonicalizingPickler``)."""

    dispatch = _Pickler.dispatch.copy()

    def save_dict(self, obj: dict[Any, Any]) -> None:
        self.write(MARK + DICT)
        self.memoize(obj)
        self._batch_setitems(sorted(obj.items()))

    dispatch[dict] = save_dict

    def save(self, obj: Any, save_persistent_id: bool = True) -> None:
        if isinstance(obj, PilkitClass):
            memoized = self.memo.get(id(obj))
            if memoized is not None:
                self.write(self.get(memoized[0]))
                return
            self.write(GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            self.memoize(obj)
            return
        super().save(obj, save_persistent_id)


def imagekit_hash(
    source_name: str,
    processors: list[PilkitProcessor],
    fmt: str | None,
    options: dict[str, Any] | None,
    autoconvert: bool,
) -> str:
    """imagekit's ``ImageSpec.get_hash`` for these processors (md5 of the canonical pickle)."""
    buffer = io.BytesIO()
    _CanonicalPickler(buffer, 0).dump([source_name, processors, fmt, options, autoconvert])
    return hashlib.md5(buffer.getvalue()).hexdigest()


def imagekit_name(source_name: str, digest: str, extension: str, cachefile_dir: str) -> str:
    """imagekit's ``source_name_as_path`` namer."""
    return posixpath.normpath(
        posixpath.join(cachefile_dir, posixpath.splitext(source_name)[0], digest + extension)
    )


def sorl_tokey(*parts: str) -> str:
    """sorl's ``tokey``: md5 of the parts joined by ``||``."""
    return hashlib.md5("||".join(parts).encode()).hexdigest()


SORL_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "AVIF": "avif"}


def sorl_name(source_name: str, storage: str, geometry: str, options: dict[str, Any], prefix: str) -> str:
    """``_get_thumbnail_filename``: ``<prefix>ab/cd/abcd….<ext>`` from the source's key, the
    geometry as written and the options (every default included) as sorted JSON."""
    key = sorl_tokey(sorl_tokey(source_name, storage), geometry, json.dumps(options, sort_keys=True))
    return f"{prefix}{key[:2]}/{key[2:4]}/{key}.{SORL_EXTENSIONS[options['format']]}"


def easy_prepared_options(options: dict[str, Any]) -> list[str]:
    """``ThumbnailOptions.prepared_options``: ``["300x300", "q85", "crop", "target-10,20"]``."""
    prepared = ["{}x{}".format(*options["size"]), f"q{options['quality']}"]
    for key, value in sorted(options.items()):
        if key == key.upper() or not value or key in ("size", "quality", "subsampling"):
            continue
        if value is True:
            prepared.append(key)
            continue
        if not isinstance(value, str):
            try:
                value = ",".join(str(item) for item in value)
            except TypeError:
                value = str(value)
        prepared.append(f"{key}-{value}")
    return prepared


def easy_name(
    source_name: str,
    prepared: list[str],
    extension: str,
    basedir: str = "",
    subdir: str = "",
    prefix: str = "",
) -> str:
    """The default namer: ``<basedir>/<folder>/<subdir>/<prefix><file>.<options>.<ext>``."""
    path, filename = posixpath.split(source_name)
    name = f"{prefix}{filename}.{'_'.join(prepared)}.{extension}"
    return posixpath.join(basedir, path.lstrip("/"), subdir, name)


def easy_extension(
    source_name: str,
    transparent: bool,
    extension: str,
    transparency_extension: str,
    preserve: bool | tuple[str, ...],
) -> str:
    """The thumbnail's extension: the source's if preserved, else by transparency."""
    source_extension = posixpath.splitext(source_name)[1][1:].lower()
    if preserve is True or (isinstance(preserve, tuple) and source_extension in preserve):
        chosen = source_extension
    else:
        chosen = transparency_extension if transparent else extension
    return chosen or "jpg"


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


def imagekit_extension(source_key: str, fmt: str | None) -> str:
    """imagekit's ``suggest_extension``: the source's own extension when the format is the same."""
    original_ext = posixpath.splitext(source_key)[1]
    if fmt is None or source_format(source_key) == fmt.upper():
        return (
            original_ext.lower() if original_ext else PILLOW_EXTENSIONS.get((fmt or "JPEG").upper(), ".jpg")
        )
    return PILLOW_EXTENSIONS.get(fmt.upper(), "." + fmt.lower())


__all__ = [name for name in dir(sys.modules[__name__]) if not name.startswith("_")]
