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
import math
import pickle
import posixpath
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

Box = tuple[float, float, float, float]
"""A crop box on the upright source, in source pixels: left, top, right, bottom."""


@dataclass(frozen=True)
class Geometry:
    """What a library makes of one source: an optional crop of the source, then an exact size."""

    width: int
    height: int
    crop: Box | None = None


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


def pilkit_fill(width: int, height: int, box_width: int, box_height: int, upscale: bool) -> Geometry:
    """pilkit's ``ResizeToFill`` / ``SmartResize`` size: cover the box, then crop (never enlarging)."""
    ratio = max(box_width / width, box_height / height)
    cover_width, cover_height = round(width * ratio), round(height * ratio)
    if not (upscale or (cover_width < width and cover_height < height)):
        cover_width, cover_height = width, height
    out_width, out_height = min(box_width, cover_width), min(box_height, cover_height)
    # the crop, in source pixels: centred on the cover image, scaled back
    scale = cover_width / width
    left = (cover_width - out_width) / 2 / scale
    top = (cover_height - out_height) / 2 / scale
    return Geometry(out_width, out_height, (left, top, left + out_width / scale, top + out_height / scale))


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
    options: dict[str, Any],
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
