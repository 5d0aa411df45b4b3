"""django-imagekit: ``ImageSpecField(source="image", processors=[ResizeToFit(300, 300)], ...)``.

Names: ``CACHE/images/<source less its extension>/<md5 of the canonical pickle>.<ext>``, the
pickle of pilkit's processor with every attribute (:func:`batchthumb.imagekit_hash`);
no EXIF rotation (no ``Transpose``); pilkit's processors' arithmetic. No metadata: the name
says whose it is.
"""

from __future__ import annotations

import copyreg
import hashlib
import io
import pickle
import posixpath
import re
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from batchthumb import presets
from batchthumb.django.base import (
    PIL_QUALITY,
    DerivedSite,
    Format,
    Library,
    PresetRendition,
    RenditionSpec,
    kept_format,
)
from batchthumb.models import Frozen, RenditionConfig
from batchthumb.presets import (
    PILLOW_EXTENSIONS,
    Geometry,
    source_format,
)

if TYPE_CHECKING:
    from batchthumb.models import DjangoSettings


class ImagekitProcessor(Frozen):
    """One of pilkit's resize processors, with its arguments: ``ResizeToFit(300, 300)``."""

    processor: Literal["ResizeToFit", "ResizeToFill", "SmartResize", "Thumbnail"]
    """The pilkit class: ``ResizeToFit``, ``ResizeToFill``, ``SmartResize`` or ``Thumbnail``."""
    width: Annotated[int, Field(gt=0, le=20_000)] | None = None
    """Its ``width`` argument."""
    height: Annotated[int, Field(gt=0, le=20_000)] | None = None
    """Its ``height`` argument."""
    upscale: bool | None = None
    """pilkit's default when absent: ``True``, but ``None`` for ``Thumbnail``."""
    anchor: (
        Literal["c", "t", "b", "l", "r", "tl", "tr", "bl", "br", "auto"]
        | tuple[Annotated[int | float, Field(ge=0, le=1)], Annotated[int | float, Field(ge=0, le=1)]]
        | None
    ) = None
    """pilkit's ``Anchor`` (``"tl"`` is ``Anchor.TOP_LEFT``) or ``(x, y)`` fractions, as written:
    the name hashes the value itself; ``"auto"`` (``Thumbnail`` only) crops by entropy."""
    crop: bool | None = None
    """``Thumbnail`` only."""

    @model_validator(mode="after")
    def _arguments(self) -> ImagekitProcessor:
        if self.width is None and self.height is None:
            raise ValueError(f"{self.processor} needs a width, a height or both")
        both = self.width is not None and self.height is not None
        if self.processor in ("ResizeToFill", "SmartResize") and not both:
            raise ValueError(f"{self.processor} needs both width and height")
        if self.processor != "Thumbnail" and self.crop is not None:
            raise ValueError("crop is an argument of Thumbnail only")
        if self.processor == "SmartResize" and self.anchor is not None:
            raise ValueError("SmartResize takes no anchor")
        if self.anchor == "auto" and self.processor != "Thumbnail":
            raise ValueError("anchor 'auto' is an argument of Thumbnail only")
        if self.processor == "Thumbnail" and self.anchor and self.crop is False:
            raise ValueError("Thumbnail takes no anchor when crop is false (pilkit refuses it)")
        return self


class ImagekitRendition(PresetRendition):
    """``ImageSpecField(source="image", processors=[...], format=..., options=...)``."""

    preset: Literal["imagekit"]
    """``"imagekit"``."""
    processors: Annotated[tuple[ImagekitProcessor, ...], Field(min_length=1, max_length=1)]
    """The spec's ``processors``: one pilkit resize processor."""
    format: Literal["JPEG", "PNG", "WEBP"] | None = None
    """The spec's ``format``; absent: the source's format, as imagekit keeps it."""
    options: dict[str, int | float | str | bool] | None = None
    """The spec's ``options``: ``{quality = 85}``. Absent is not ``{}``: imagekit hashes ``None``."""
    autoconvert: bool = True
    """The spec's ``autoconvert``."""


class ImagekitSettings(Frozen):
    """``IMAGEKIT_CACHEFILE_DIR`` (with the default ``source_name_as_path`` namer)."""

    cachefile_dir: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")] = "CACHE/images"
    """``IMAGEKIT_CACHEFILE_DIR``."""


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


def imagekit_extension(source_key: str, fmt: str | None) -> str:
    """imagekit's ``suggest_extension``: the source's own extension when the format is the same."""
    original_ext = posixpath.splitext(source_key)[1]
    if fmt is None or source_format(source_key) == fmt.upper():
        return (
            original_ext.lower() if original_ext else PILLOW_EXTENSIONS.get((fmt or "JPEG").upper(), ".jpg")
        )
    return PILLOW_EXTENSIONS.get(fmt.upper(), "." + fmt.lower())


def pilkit(preset: ImagekitRendition) -> PilkitProcessor:
    """The processor as imagekit pickles it: pilkit's attributes, pilkit's defaults."""
    processor = preset.processors[0]
    cls = PILKIT_CLASSES[processor.processor]
    width, height = processor.width, processor.height
    upscale = True if processor.upscale is None else processor.upscale
    if processor.processor == "ResizeToFit":
        attributes: dict[str, Any] = {"width": width, "height": height, "upscale": upscale, "mat_color": None}
        attributes["anchor"] = processor.anchor or "c"
    elif processor.processor == "ResizeToFill":
        attributes = {"width": width, "height": height, "anchor": processor.anchor, "upscale": upscale}
    elif processor.processor == "SmartResize":
        attributes = {"width": width, "height": height, "upscale": upscale}
    else:  # Thumbnail keeps upscale=None unless given, and works out crop and anchor
        anchor, crop = processor.anchor, processor.crop
        if anchor:
            crop = True
        elif crop is None:
            crop = width is not None and height is not None
            if crop and anchor is None:
                anchor = "auto"
        attributes = {"width": width, "height": height, "upscale": processor.upscale, "crop": crop}
        attributes["anchor"] = anchor
    return PilkitProcessor(cls, attributes)


def site_settings(django: DjangoSettings | None) -> ImagekitSettings:
    """The site's ``[django.imagekit]`` section (its defaults, without a config)."""
    if django is None:
        return ImagekitSettings()
    return django.section("imagekit", ImagekitSettings)


DEFAULT_NAMER = "imagekit.cachefiles.namers.source_name_as_path"


def pilkit_processor(processor: Any) -> dict[str, Any] | str:
    """A pilkit processor object as a ``processors`` entry: its arguments that differ from the
    class's defaults (as written); or why it is not one batchthumb renders."""
    cls = type(processor)
    name = cls.__name__
    if not cls.__module__.startswith("pilkit.processors") or name not in PILKIT_CLASSES:
        return (
            f"processor {cls.__module__}.{name} is not one batchthumb renders "
            "(ResizeToFit, ResizeToFill, SmartResize, Thumbnail)"
        )
    width, height = getattr(processor, "width", None), getattr(processor, "height", None)
    plain = vars(cls(width=width, height=height))
    found: dict[str, Any] = {"processor": name}
    if width is not None:
        found["width"] = width
    if height is not None:
        found["height"] = height
    for key, value in vars(processor).items():
        if key in ("width", "height") or plain.get(key) == value:
            continue
        if key not in ("upscale", "anchor", "crop"):
            return f"{name}({key}={value!r}): an argument batchthumb does not render"
        found[key] = list(value) if isinstance(value, tuple) else value
    return found


class Imagekit(Library):
    rendition_model = ImagekitRendition
    settings_model = ImagekitSettings
    name = "imagekit"
    django_app = "imagekit"
    # the first presets hashed both sections (kept: a changed hash regenerates everything)
    hashed_sections = frozenset({"versatileimagefield", "imagekit"})
    unturned = True

    def derive(self, site: DerivedSite) -> None:
        from django.apps import apps
        from django.conf import settings
        from imagekit.models.fields.utils import ImageSpecFileDescriptor

        cachefile_dir = getattr(settings, "IMAGEKIT_CACHEFILE_DIR", "CACHE/images")
        origin = (
            "IMAGEKIT_CACHEFILE_DIR" if hasattr(settings, "IMAGEKIT_CACHEFILE_DIR") else "imagekit's default"
        )
        site.setting(self.name, "cachefile_dir", cachefile_dir, origin)
        namer = getattr(settings, "IMAGEKIT_SPEC_CACHEFILE_NAMER", DEFAULT_NAMER)
        if namer != DEFAULT_NAMER:
            site.refuse(
                "IMAGEKIT_SPEC_CACHEFILE_NAMER",
                f"{namer!r}: a custom namer (batchthumb names as {DEFAULT_NAMER})",
            )
            return
        for model in apps.get_models():
            for attname, descriptor in vars(model).items():
                if not isinstance(descriptor, ImageSpecFileDescriptor):
                    continue
                where = f"{model._meta.label}.{attname}"
                spec = descriptor.field._original_spec
                custom = sorted(
                    key
                    for key in ("cachefile_namer", "cachefile_storage", "cachefile_backend")
                    if key in vars(spec)
                )
                if custom:
                    site.refuse(
                        where, f"{', '.join(custom)} given: batchthumb writes as imagekit's defaults do"
                    )
                    continue
                processors = spec.processors
                if callable(processors) and not isinstance(processors, list | tuple):
                    site.refuse(
                        where, "processors is a function: what it makes cannot be known before a page asks"
                    )
                    continue
                table: dict[str, Any] = {"processors": []}
                for processor in processors:
                    described = pilkit_processor(processor)
                    if isinstance(described, str):
                        site.refuse(where, described)
                        break
                    table["processors"].append(described)
                else:
                    if getattr(spec, "format", None):
                        table["format"] = spec.format
                    if getattr(spec, "options", None) is not None:
                        table["options"] = dict(spec.options)
                    if getattr(spec, "autoconvert", True) is not True:
                        table["autoconvert"] = bool(spec.autoconvert)
                    sets = [
                        s
                        for s in site.sets.values()
                        if s.model is model and s.field.name == descriptor.source_field_name
                    ]
                    site.add_rendition(self.name, attname, table, where, sets)

    def rendering(self, preset: ImagekitRendition, django: DjangoSettings) -> RenditionConfig:
        processor = preset.processors[0]
        fit = processor.processor == "ResizeToFit" or (
            processor.processor == "Thumbnail" and not (processor.width and processor.height)
        )
        return RenditionConfig(
            mode="fit" if fit else "crop",
            width=processor.width,
            height=processor.height,
            upscale=processor.upscale is not False,
            autorotate=False,  # imagekit does not apply EXIF orientation (no Transpose processor)
        )

    def quality(self, spec: RenditionSpec, fmt: Format) -> int:
        assert isinstance(spec.preset, ImagekitRendition)
        quality = (spec.preset.options or {}).get("quality", PIL_QUALITY)
        return int(quality) if isinstance(quality, int | float) and 1 <= quality <= 100 else PIL_QUALITY

    def format_for(self, spec: RenditionSpec, source_key: str) -> Format:
        assert isinstance(spec.preset, ImagekitRendition)
        if spec.preset.format is not None:
            return presets.BATCHTHUMB_FORMATS[spec.preset.format]
        return kept_format(self.name, source_key)

    def geometry(self, spec: RenditionSpec, width: int, height: int) -> Geometry | None:
        preset = spec.preset
        assert isinstance(preset, ImagekitRendition)
        processor = preset.processors[0]
        attributes = pilkit(preset).attributes
        kind, upscale = processor.processor, attributes["upscale"]
        if kind == "Thumbnail":  # what it wraps, given its own upscale (None: no enlarging)
            kind = "ResizeToFit"
            if attributes["crop"]:
                kind = "SmartResize" if attributes["anchor"] == "auto" else "ResizeToFill"
        if kind == "ResizeToFit":
            return pilkit_fit(width, height, processor.width, processor.height, bool(upscale))
        assert processor.width is not None
        assert processor.height is not None
        if kind == "SmartResize":
            return pilkit_smart(width, height, processor.width, processor.height, bool(upscale))
        anchor = pilkit_anchor(attributes["anchor"])
        return pilkit_fill(width, height, processor.width, processor.height, bool(upscale), anchor)

    def object_key(self, spec: RenditionSpec, source_key: str, ppoi: str | None, transparent: bool) -> str:
        preset = spec.preset
        assert isinstance(preset, ImagekitRendition)
        digest = imagekit_hash(
            source_key,
            [pilkit(preset)],
            preset.format,
            None if preset.options is None else dict(preset.options),
            preset.autoconvert,
        )
        extension = imagekit_extension(source_key, preset.format)
        cachefile_dir = site_settings(spec.django).cachefile_dir
        return imagekit_name(source_key, digest, extension, cachefile_dir)

    def namespace(self, spec: RenditionSpec) -> str:
        return site_settings(spec.django).cachefile_dir.rstrip("/") + "/"

    def pattern(self, spec: RenditionSpec) -> str:
        return rf"{re.escape(self.namespace(spec))}.+/[0-9a-f]{{32}}\.[A-Za-z0-9]+"

    def derived_source(
        self, spec: RenditionSpec, object_key: str
    ) -> tuple[Literal["stem", "compact"], str] | None:
        """The folder is the source's path less its extension."""
        folder = posixpath.dirname(object_key.removeprefix(self.namespace(spec)))
        return ("stem", folder) if folder else None
