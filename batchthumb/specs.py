"""Rendition specs: their canonical form, the spec hash, and object key naming.

The spec hash is a short SHA-256 of the canonical spec (every field, defaults
filled in, keys sorted) together with ``RENDER_VERSION``: it changes whenever
the output of a rendition would change, and only then.

A preset rendition (a Django library's) is a spec too: its canonical form is the
preset's settings plus the site settings its names depend on, its object key is the
library's name for the source (``presets.py``), and it carries the library's geometry
and rendering rules. What depends on the source itself (the format a library keeps,
the name) is resolved per source by :meth:`RenditionSpec.for_source`.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from batchthumb import presets
from batchthumb.config import (
    AdvanceThumbnailRendition,
    AnyRendition,
    DjangoConfig,
    EasyThumbnailsRendition,
    ImagekitRendition,
    PresetRendition,
    RenditionConfig,
    SorlRendition,
    VersatileImageRendition,
    variant_names,
)
from batchthumb.errors import RenderError

RENDER_VERSION = 1
"""Bumped when ``render.py`` changes its output for an unchanged spec."""

SPEC_HASH_LENGTH = 12

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}
CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
}
Format = Literal["jpeg", "png", "webp", "avif"]
PIL_QUALITY = 75
"""Pillow's JPEG and WebP quality when a library passes none."""


def canonical_spec(config: RenditionConfig) -> dict[str, Any]:
    """Every field of the spec, defaults filled in, as plain JSON-able values.

    Fields added after a spec's output was first hashed are left out at their defaults,
    so adding them changes no existing spec hash.
    """
    data = config.model_dump(mode="json")
    for later in ("widths", "formats", "aspect_ratio"):
        if data.get(later) is None:
            data.pop(later, None)
    if data.get("autorotate") is True:
        data.pop("autorotate")
    if data.get("jpeg_alpha") == "flatten":
        data.pop("jpeg_alpha")
    return data


HASHED_SETTINGS: dict[str, set[str]] = {
    # the first presets hashed both sections (kept: a changed hash regenerates everything)
    "django_advance_thumbnail": {"versatileimagefield", "imagekit"},
    "versatileimagefield": {"versatileimagefield", "imagekit"},
    "imagekit": {"versatileimagefield", "imagekit"},
    "sorl": {"sorl"},
    "easy_thumbnails": {"easy_thumbnails"},
}
"""The ``[django]`` sections each preset's spec hash covers: its own library's settings
only, so that configuring another library never makes its renditions stale."""

UNHASHED_SETTINGS: dict[str, set[str]] = {"sorl": {"cache", "cache_key_prefix", "cache_version"}}
"""Settings of those sections that change no output nor name (where the site's cache is):
never in a hash, so that adding them makes nothing stale."""

UNTURNED_FIX = 1
"""Renditions that keep a source as stored (no EXIF rotation) were turned by a later resize
before this fix: it is in their hash, so each is rebuilt once, and nothing else is."""


def spec_hash(config: RenditionConfig | PresetRendition, django: DjangoConfig | None = None) -> str:
    """The short hash that names this spec's output."""
    payload: dict[str, Any] = {"render_version": RENDER_VERSION}
    if isinstance(config, PresetRendition):
        spec: dict[str, Any] = config.model_dump(mode="json", exclude={"column"})
        spec["django"] = (django or DjangoConfig()).model_dump(
            mode="json",
            include=HASHED_SETTINGS[config.preset],  # type: ignore[attr-defined]
            exclude=UNHASHED_SETTINGS,
        )
        unturned = isinstance(config, VersatileImageRendition | ImagekitRendition)
    else:
        spec = canonical_spec(config)
        unturned = config.autorotate is not True
    payload["spec"] = spec
    if unturned:
        payload["unturned_fix"] = UNTURNED_FIX
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:SPEC_HASH_LENGTH]


def variant_key_hash(config: RenditionConfig) -> str:
    """The hash in a width set's object keys: the variant's spec but its size, so that every
    width of the set shares it (a width the source cannot give and a smaller one it can, the
    same output, get the same name), and adding a width to the set moves no existing object."""
    spec = canonical_spec(config)
    for size in ("width", "height"):
        spec.pop(size, None)
    payload = {"render_version": RENDER_VERSION, "spec": spec, "width_set": True}
    if config.autorotate is not True:
        payload["unturned_fix"] = UNTURNED_FIX
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:SPEC_HASH_LENGTH]


@dataclass(frozen=True)
class Variant:
    """What makes a spec one variant of a width set (or format set)."""

    family: str
    """The configured rendition it is a variant of (``hero`` of ``hero@640w.webp``)."""
    key_hash: str
    """The hash its object key carries (:func:`variant_key_hash`)."""
    sized: bool
    """Whether it is one width of a width set: its name carries the width written."""
    aspect_ratio: tuple[int, int] | None = None

    def capped(self, config: RenditionConfig, source_size: tuple[int, int]) -> RenditionConfig:
        """The variant's config for a source of this (upright) size: a width the source cannot
        give without upscaling becomes the largest one it can, at the same aspect ratio."""
        if not self.sized or config.upscale or config.width is None:
            return config
        width, height = source_size
        limit = width
        if self.aspect_ratio is not None:
            ratio_width, ratio_height = self.aspect_ratio
            at_ratio = max(1, height * ratio_width // ratio_height)
            # a crop must fit inside the source; a fill pads, and upscales only past both sides
            limit = min(width, at_ratio) if config.mode == "crop" else max(width, at_ratio)
        if config.width <= limit:
            return config
        update: dict[str, Any] = {"width": limit}
        if self.aspect_ratio is not None:
            update["height"] = max(1, round(limit * self.aspect_ratio[1] / self.aspect_ratio[0]))
        return config.model_copy(update=update)


@dataclass(frozen=True)
class FocalPoint:
    """Where a source's subject is: fractions of its upright size, or (wagtail's) pixels of it."""

    x: float
    y: float
    pixels: bool = False

    def fractions(self, width: int, height: int) -> tuple[float, float]:
        """The point as fractions of an upright source of this size, inside it."""
        x, y = (self.x / width, self.y / height) if self.pixels else (self.x, self.y)
        return min(max(x, 0.0), 1.0), min(max(y, 0.0), 1.0)


def parse_focal(text: str | None) -> FocalPoint | None:
    """A source set's focal point as planned (see ``sources.focal_expression``): ``f:x,y``,
    ``px:x,y[,width,height]`` or a PPOI (``0.3x0.7``). ``ValueError`` names what is wrong."""
    if text is None or text == "":
        return None
    try:
        if text.startswith("f:"):
            x, y = (float(part) for part in text[2:].split(","))
            if not (0 <= x <= 1 and 0 <= y <= 1):
                raise ValueError
            return FocalPoint(x, y)
        if text.startswith("px:"):
            parts = text[3:].split(",")
            x, y = float(parts[0]), float(parts[1])
            if x < 0 or y < 0:
                raise ValueError
            return FocalPoint(x, y, pixels=True)  # the centre of wagtail's box: the box follows
    except ValueError:
        raise ValueError(
            f"focal point {text.split(':', 1)[1]!r} is not x,y (fractions 0-1, or pixels)"
        ) from None
    x, y = presets.parse_ppoi(text)
    return FocalPoint(x, y)


@dataclass(frozen=True)
class Encoding:
    """How one output is written."""

    format: Format
    transparent: bool
    """Whether it keeps an alpha band (its name may say so)."""
    jpeg_alpha: Literal["flatten", "drop"]
    """What a JPEG does with an alpha band: composited onto the background, or dropped."""


@dataclass(frozen=True)
class RenditionSpec:
    """A named, hashed rendition: what the renderer and the planner share."""

    name: str
    config: RenditionConfig
    """How to render it (for a preset: the library's rules, the format still the source's)."""
    spec_hash: str
    preset: PresetRendition | None = None
    django: DjangoConfig | None = None
    source_key: str | None = None
    """Set by :meth:`for_source`: the source this spec was resolved for."""
    ppoi: tuple[float, float] = (0.5, 0.5)
    """Set by :meth:`for_source`: where versatileimagefield's ``crop`` centres, for that source."""
    variant: Variant | None = None
    """Set for one variant of a rendition with ``widths`` or ``formats``."""
    focal: FocalPoint | None = None
    """Set by :meth:`for_source`: the source's focal point, for a crop about it."""

    @classmethod
    def from_config(
        cls, name: str, config: AnyRendition, django: DjangoConfig | None = None
    ) -> RenditionSpec:
        if isinstance(config, PresetRendition):
            return cls(
                name, _rendering(config, django), spec_hash(config, django), config, django or DjangoConfig()
            )
        return cls(name, config, spec_hash(config))

    @property
    def crops_about_focal(self) -> bool:
        """Whether its output depends on the source's focal point (its PPOI): a crop. Moving
        the point makes it stale; it leaves a fit alone."""
        if self.preset is None:
            return self.config.mode == "crop"
        return isinstance(self.preset, VersatileImageRendition) and self.preset.sizer == "crop"

    @property
    def column(self) -> str | None:
        """The source table's column this rendition's name is written to, if any."""
        return self.preset.column if self.preset is not None else None

    @property
    def pillow_alpha(self) -> bool:
        """Whether a source has an alpha band only where Pillow gives it one (easy-thumbnails
        names its output by that): a colour-keyed PNG is opaque."""
        return isinstance(self.preset, EasyThumbnailsRendition)

    @property
    def keeps_up_with_source(self) -> bool:
        """Whether its library serves it on disk only while it is not older than the source
        (easy-thumbnails compares modification times)."""
        return isinstance(self.preset, EasyThumbnailsRendition)

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.config.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.config.format]

    # -- per source ------------------------------------------------------------------------

    def for_source(self, source_key: str, ppoi: str | None = None) -> RenditionSpec:
        """This spec for one source: the format a library keeps from the source, and its PPOI.

        Raises :class:`RenderError` (permanent) when the library would write a format
        batchthumb cannot (a GIF kept as GIF), or the PPOI is not one.
        """
        if self.preset is None:
            if not self.crops_about_focal:
                return self
            try:
                return replace(self, source_key=source_key, focal=parse_focal(ppoi))
            except ValueError as exc:
                raise RenderError(str(exc)) from None
        try:
            point = presets.parse_ppoi(ppoi)
        except ValueError as exc:
            raise RenderError(str(exc)) from None
        fmt = _format_for(self, source_key)
        config = self.config if fmt == self.config.format else self.config.model_copy(update={"format": fmt})
        quality = self._quality(fmt)
        if quality != config.quality:
            config = config.model_copy(update={"quality": quality})
        return replace(self, config=config, source_key=source_key, ppoi=point)

    def _quality(self, fmt: Format) -> int:
        preset, django = self.preset, self.django or DjangoConfig()
        if isinstance(preset, AdvanceThumbnailRendition):
            return 85
        if isinstance(preset, VersatileImageRendition):
            settings = django.versatileimagefield
            return settings.webp_resize_quality if fmt == "webp" else settings.jpeg_resize_quality
        if isinstance(preset, ImagekitRendition):
            quality = (preset.options or {}).get("quality", PIL_QUALITY)
            return int(quality) if isinstance(quality, int | float) and 1 <= quality <= 100 else PIL_QUALITY
        if isinstance(preset, SorlRendition):
            return _sorl_quality(self.sorl_options())
        if isinstance(preset, EasyThumbnailsRendition):
            return int(self.easy_options()["quality"])
        return self.config.quality

    def easy_options(self) -> dict[str, Any]:
        """The alias's options as easy-thumbnails completes them (``quality`` always set)."""
        assert isinstance(self.preset, EasyThumbnailsRendition)
        options = self.preset.alias_options()
        options.setdefault("quality", (self.django or DjangoConfig()).easy_thumbnails.quality)
        return options

    def encoding(self, alpha: bool, geometry: presets.Geometry | None) -> Encoding:
        """How an output with (or without) an alpha band is written: easy-thumbnails picks the
        format, and the name, by whether the output is transparent."""
        if not isinstance(self.preset, EasyThumbnailsRendition):
            return Encoding(self.config.format, False, self.config.jpeg_alpha)
        # background() pads onto an opaque colour: what it pads is no longer transparent
        padded = geometry is not None and geometry.pad is not None
        transparent = alpha and not padded
        fmt = presets.extension_format(self._easy_extension(self.source_key or "", transparent))
        if fmt is None:
            raise RenderError(
                f"easy-thumbnails keeps the extension of {self.source_key!r}, whose format "
                "batchthumb does not write (JPEG, PNG and WebP only)"
            )
        # a transparent image saved as JPEG loses its alpha band (Pillow's convert)
        return Encoding(fmt, transparent, "flatten" if padded else "drop")

    def _easy_extension(self, source_key: str, transparent: bool) -> str:
        settings = (self.django or DjangoConfig()).easy_thumbnails
        return presets.easy_extension(
            source_key,
            transparent,
            settings.extension,
            settings.transparency_extension,
            settings.preserve_extensions,
        )

    def sorl_options(self) -> dict[str, Any]:
        """sorl's options for this rendition: the template's, then every default sorl adds."""
        assert isinstance(self.preset, SorlRendition)
        settings = (self.django or DjangoConfig()).sorl
        options: dict[str, Any] = dict(self.preset.options)
        if settings.preserve_format and self.source_key is not None:
            options.setdefault("format", presets.source_format(self.source_key) or settings.format)
        defaults = {
            "format": settings.format,
            "quality": settings.quality,
            "colorspace": "RGB",
            "upscale": settings.upscale,
            "crop": False,
            "cropbox": None,
            "rounded": None,
            "padding": settings.padding,
            "padding_color": settings.padding_color,
        }
        for key, value in defaults.items():
            options.setdefault(key, value)
        return options

    def geometry(self, width: int, height: int) -> presets.Geometry | None:
        """The library's output for an upright (or, without autorotate, stored) source of this size."""
        preset = self.preset
        if isinstance(preset, AdvanceThumbnailRendition):
            box_width, box_height = preset.size
            if preset.resize_method == "fit":
                return presets.pil_thumbnail(width, height, box_width, box_height)
            return presets.pil_fit(width, height, box_width, box_height)
        if isinstance(preset, VersatileImageRendition):
            box_width, box_height = preset.box
            if preset.sizer == "thumbnail":
                return presets.pil_thumbnail(width, height, box_width, box_height)
            return presets.versatile_crop(width, height, box_width, box_height, self.ppoi)
        if isinstance(preset, SorlRendition):
            return presets.sorl_geometry(width, height, preset.geometry, self.sorl_options())
        if isinstance(preset, EasyThumbnailsRendition):
            return presets.easy_geometry(width, height, self.easy_options())
        if isinstance(preset, ImagekitRendition):
            processor = preset.processors[0]
            attributes = _pilkit(preset).attributes
            kind, upscale = processor.processor, attributes["upscale"]
            if kind == "Thumbnail":  # what it wraps, given its own upscale (None: no enlarging)
                kind = "ResizeToFit"
                if attributes["crop"]:
                    kind = "SmartResize" if attributes["anchor"] == "auto" else "ResizeToFill"
            if kind == "ResizeToFit":
                return presets.pilkit_fit(width, height, processor.width, processor.height, bool(upscale))
            assert processor.width is not None
            assert processor.height is not None
            if kind == "SmartResize":
                return presets.pilkit_smart(width, height, processor.width, processor.height, bool(upscale))
            anchor = presets.pilkit_anchor(attributes["anchor"])
            return presets.pilkit_fill(
                width, height, processor.width, processor.height, bool(upscale), anchor
            )
        return None

    # -- names -----------------------------------------------------------------------------

    def object_key(
        self,
        source_set: str,
        source_key: str,
        ppoi: str | None = None,
        *,
        transparent: bool = False,
        width: int | None = None,
    ) -> str:
        """Where this rendition of ``source_key`` lives, relative to the target location.

        Generic: ``{source set}/{rendition}/{spec hash}/{source key}.{ext}``: deterministic,
        distinct for distinct sources (the whole source key is kept), and a spec change
        moves the object to a new key, so the old one is never overwritten before the new
        one is recorded. A preset: the name its library computes, at the storage root
        (``ppoi``: the source's PPOI column, which versatileimagefield's crop names;
        ``transparent``: whether the output kept an alpha band, which easy-thumbnails names).

        A variant of a width set: ``{source set}/{rendition}/{hash}/{source key}.{width}w.{ext}``,
        with the width written (``width``; before rendering, the width asked for), so that the
        widths a source cannot give share one object.
        """
        preset = self.preset
        variant = self.variant
        if variant is not None:
            sized = f".{width or self.config.width}w" if variant.sized else ""
            base = f"{source_set}/{variant.family}/{variant.key_hash}/{source_key.lstrip('/')}"
            return f"{base}{sized}.{self.extension}"
        if preset is None:
            return f"{source_set}/{self.name}/{self.spec_hash}/{source_key.lstrip('/')}.{self.extension}"
        django = self.django or DjangoConfig()
        if isinstance(preset, AdvanceThumbnailRendition):
            return presets.advance_thumbnail_name(source_key, preset.upload_to)
        if isinstance(preset, VersatileImageRendition):
            settings = django.versatileimagefield
            width, height = preset.box
            return presets.versatile_name(
                source_key,
                presets.versatile_key(preset.sizer, _ppoi_or_centre(ppoi)),
                width,
                height,
                settings.jpeg_resize_quality,
                settings.webp_resize_quality,
                settings.sized_directory_name,
            )
        if isinstance(preset, SorlRendition):
            settings_ = django.sorl
            return presets.sorl_name(
                source_key,
                settings_.storage,
                preset.geometry,
                replace(self, source_key=source_key).sorl_options(),
                settings_.prefix,
            )
        if isinstance(preset, EasyThumbnailsRendition):
            easy = django.easy_thumbnails
            return presets.easy_name(
                source_key,
                presets.easy_prepared_options(self.easy_options()),
                self._easy_extension(source_key, transparent),
                easy.basedir,
                easy.subdir,
                easy.prefix,
            )
        assert isinstance(preset, ImagekitRendition)
        digest = presets.imagekit_hash(
            source_key,
            [_pilkit(preset)],
            preset.format,
            None if preset.options is None else dict(preset.options),
            preset.autoconvert,
        )
        extension = presets.imagekit_extension(source_key, preset.format)
        return presets.imagekit_name(source_key, digest, extension, django.imagekit.cachefile_dir)

    def candidate_keys(self, source_set: str, source_key: str, ppoi: str | None = None) -> list[str]:
        """Every name this rendition of the source may have (easy-thumbnails: the opaque and
        the transparent one, which it also looks for both)."""
        keys = [self.object_key(source_set, source_key, ppoi)]
        if isinstance(self.preset, EasyThumbnailsRendition):
            transparent = self.object_key(source_set, source_key, ppoi, transparent=True)
            keys += [transparent] if transparent != keys[0] else []
        return keys

    @property
    def namespace(self) -> str:
        """The prefix under which this rendition's objects live ('' for a generic one: its target)."""
        preset = self.preset
        if isinstance(preset, AdvanceThumbnailRendition):
            return posixpath.normpath(preset.upload_to) + "/"
        if isinstance(preset, VersatileImageRendition):
            return (self.django or DjangoConfig()).versatileimagefield.sized_directory_name + "/"
        if isinstance(preset, ImagekitRendition):
            return (self.django or DjangoConfig()).imagekit.cachefile_dir.rstrip("/") + "/"
        if isinstance(preset, SorlRendition):
            return (self.django or DjangoConfig()).sorl.prefix
        if isinstance(preset, EasyThumbnailsRendition):  # beside each source, under the base directory
            basedir = (self.django or DjangoConfig()).easy_thumbnails.basedir.strip("/")
            return f"{basedir}/" if basedir else ""
        return ""

    def owns(self, object_key: str) -> bool:
        """Whether ``object_key`` is a name of this rendition's pattern (always, for a generic one)."""
        preset = self.preset
        if preset is None:
            return True
        namespace = re.escape(self.namespace)
        if isinstance(preset, AdvanceThumbnailRendition):
            # Django may have appended _XXXXXXX to a name that was taken
            pattern = rf"{namespace}[^/]+_thumbnail(_[A-Za-z0-9]{{7}})?\.[^/.]+"
        elif isinstance(preset, VersatileImageRendition):
            width, height = preset.box
            key = "thumbnail" if preset.sizer == "thumbnail" else r"crop-c[0-9-]+__[0-9-]+"
            pattern = rf"{namespace}(.+/)?[^/]+-{key}-{width}x{height}(-[0-9]+)?\.[^/.]+"
        elif isinstance(preset, SorlRendition):
            # <prefix>ab/cd/abcd<28 hex>.<ext>
            hex2 = "[0-9a-f]{2}"
            pattern = rf"{namespace}(?P<a>{hex2})/(?P<b>{hex2})/(?P=a)(?P=b)[0-9a-f]{{28}}\.[a-z]+"
        elif isinstance(preset, EasyThumbnailsRendition):
            pattern = self._easy_pattern()
        else:
            pattern = rf"{namespace}.+/[0-9a-f]{{32}}\.[A-Za-z0-9]+"
        return re.fullmatch(pattern, object_key) is not None

    def derived_source(self, object_key: str) -> tuple[Literal["stem", "compact"], str] | None:
        """For a library that keeps no metadata, which source a name of this rendition's pattern
        is of, as far as the name says: imagekit's folder is the source's path less its extension
        (``stem``); versatileimagefield's name is the source's path with every space removed and
        the size inserted before the extension (``compact``). ``None``: another library, or not
        of the pattern. ``purge orphans`` keeps what it finds for a source that still exists."""
        preset = self.preset
        if not self.owns(object_key):
            return None
        namespace = self.namespace
        if isinstance(preset, ImagekitRendition):
            folder = posixpath.dirname(object_key.removeprefix(namespace))
            return ("stem", folder) if folder else None
        if isinstance(preset, VersatileImageRendition):
            match = re.fullmatch(
                rf"{re.escape(namespace)}(?P<base>.+)-(?:thumbnail|crop-c[0-9-]+__[0-9-]+)"
                r"-[0-9]+x[0-9]+(?:-[0-9]+)?\.(?P<ext>[^/.]+)",
                object_key,
            )
            return ("compact", f"{match['base']}.{match['ext']}") if match else None
        return None

    def _easy_pattern(self) -> str:
        """``<basedir>/<folder>/<subdir>/<prefix><file>.<this alias's options>.<ext>``."""
        settings = (self.django or DjangoConfig()).easy_thumbnails
        prepared = "_".join(presets.easy_prepared_options(self.easy_options()))
        preserve = settings.preserve_extensions
        if preserve is True:
            extensions = "[A-Za-z0-9]+"
        else:
            kept = preserve if isinstance(preserve, tuple) else ()
            options = {settings.extension, settings.transparency_extension, *kept}
            extensions = "(?:" + "|".join(re.escape(ext) for ext in sorted(options)) + ")"
        subdir = settings.subdir.strip("/")
        return (
            re.escape(self.namespace)
            + "(?:.+/)?"
            + (re.escape(subdir + "/") if subdir else "")
            + re.escape(settings.prefix)
            + rf"[^/]+\.{re.escape(prepared)}\.{extensions}"
        )


def _ppoi_or_centre(ppoi: str | None) -> tuple[float, float]:
    """The PPOI for a name; one that does not parse fails in :meth:`RenditionSpec.for_source`."""
    try:
        return presets.parse_ppoi(ppoi)
    except ValueError:
        return (0.5, 0.5)


def _pilkit(preset: ImagekitRendition) -> presets.PilkitProcessor:
    """The processor as imagekit pickles it: pilkit's attributes, pilkit's defaults."""
    processor = preset.processors[0]
    cls = presets.PILKIT_CLASSES[processor.processor]
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
    return presets.PilkitProcessor(cls, attributes)


def _rendering(preset: PresetRendition, django: DjangoConfig | None = None) -> RenditionConfig:
    """The rendering rules a library's output follows (sizes come from its geometry)."""
    if isinstance(preset, AdvanceThumbnailRendition):
        mode: Literal["fit", "crop"] = "fit" if preset.resize_method == "fit" else "crop"
        width, height = preset.size
        return RenditionConfig(mode=mode, width=width, height=height, quality=85, upscale=mode == "crop")
    if isinstance(preset, VersatileImageRendition):
        width, height = preset.box
        mode = "fit" if preset.sizer == "thumbnail" else "crop"
        return RenditionConfig(
            mode=mode,
            width=width,
            height=height,
            upscale=preset.sizer == "crop",
            autorotate="jpeg-rotations",  # it turns JPEGs by orientations 3, 6 and 8 only
        )
    if isinstance(preset, SorlRendition):
        settings = (django or DjangoConfig()).sorl
        crop = preset.options.get("crop")
        padding = preset.options.get("padding", settings.padding)
        colour = str(preset.options.get("padding_color", settings.padding_color))
        return RenditionConfig(
            # sizes come from sorl's geometry; the box here only bounds the decode
            mode="crop" if crop and crop != "noop" else "fit",
            width=None if preset.geometry.startswith("x") else int(preset.geometry.split("x")[0]),
            height=int(preset.geometry.split("x")[1]) if "x" in preset.geometry else None,
            upscale=True,
            background=_hex_colour(colour) if padding else (255, 255, 255),
            jpeg_alpha="flatten" if settings.flatten else "drop",
        )
    if isinstance(preset, EasyThumbnailsRendition):
        width, height = preset.size
        return RenditionConfig(
            # sizes come from easy-thumbnails' geometry; the box here only bounds the decode
            mode="crop" if preset.crop or preset.zoom else "fit",
            width=width or None,
            height=height or None,
            upscale=True,
            background=_hex_colour(preset.background) if preset.background else (255, 255, 255),
        )
    assert isinstance(preset, ImagekitRendition)
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


def _sorl_quality(options: dict[str, Any]) -> int:
    try:
        quality = int(options["quality"])
    except (TypeError, ValueError):
        return PIL_QUALITY
    return quality if 1 <= quality <= 100 else PIL_QUALITY


def _hex_colour(text: str) -> tuple[int, int, int]:
    digits = text.lstrip("#")
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    red, green, blue = bytes.fromhex(digits)
    return (red, green, blue)


def _format_for(spec: RenditionSpec, source_key: str) -> Format:
    """The format the library writes for this source."""
    preset = spec.preset
    if isinstance(preset, SorlRendition):
        return presets.BATCHTHUMB_FORMATS[str(replace(spec, source_key=source_key).sorl_options()["format"])]
    if isinstance(preset, EasyThumbnailsRendition):  # without transparency; render decides
        return replace(spec, source_key=source_key).encoding(False, None).format
    kept = presets.source_format(source_key)
    if isinstance(preset, AdvanceThumbnailRendition):
        # by the extension; anything else gets JPEG bytes (under the source's extension)
        return presets.BATCHTHUMB_FORMATS.get(kept or "", "jpeg")
    if isinstance(preset, ImagekitRendition) and preset.format is not None:
        return presets.BATCHTHUMB_FORMATS[preset.format]
    if kept not in presets.BATCHTHUMB_FORMATS:
        library = "versatileimagefield" if isinstance(preset, VersatileImageRendition) else "imagekit"
        raise RenderError(
            f"{library} keeps the source's format ({kept or 'unknown, by its extension'}), "
            "which batchthumb does not write (JPEG, PNG and WebP only)"
        )
    return presets.BATCHTHUMB_FORMATS[kept]


def specs_for(renditions: dict[str, AnyRendition], django: DjangoConfig | None = None) -> list[RenditionSpec]:
    """Every spec of these renditions: a width set's or format set's variants one by one."""
    specs = []
    for name, config in renditions.items():
        if isinstance(config, RenditionConfig) and (config.widths or config.formats):
            specs += variant_specs(name, config)
        else:
            specs.append(RenditionSpec.from_config(name, config, django))
    return specs


def variant_specs(name: str, config: RenditionConfig) -> list[RenditionSpec]:
    """One spec per width and format: a plain rendition each, as far as rendering goes."""
    widths: tuple[int | None, ...] = config.widths or (None,)
    formats: tuple[Format | None, ...] = config.formats or (None,)
    names = iter(variant_names(name, config))
    specs = []
    for width in widths:
        for fmt in formats:
            update: dict[str, Any] = {"widths": None, "formats": None, "aspect_ratio": None}
            if width is not None:
                update["width"] = width
                if config.aspect_ratio is not None:
                    ratio_width, ratio_height = config.aspect_ratio
                    update["height"] = max(1, round(width * ratio_height / ratio_width))
            if fmt is not None:
                update["format"] = fmt
            single = config.model_copy(update=update)
            # a format set's names carry no width: its hash must, as a plain rendition's does
            key_hash = variant_key_hash(single) if width is not None else spec_hash(single)
            variant = Variant(name, key_hash, width is not None, config.aspect_ratio)
            specs.append(RenditionSpec(next(names), single, spec_hash(single), variant=variant))
    return specs


def listing_prefixes(specs: Sequence[RenditionSpec]) -> list[str]:
    """The prefixes to list to see every object of these renditions: their namespaces, a
    namespace inside another listed with it, not twice (``[""]``: the whole target)."""
    namespaces = {spec.namespace for spec in specs} or {""}
    return sorted(p for p in namespaces if not any(p != q and p.startswith(q) for q in namespaces))
