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
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from batchthumb import presets
from batchthumb.config import (
    AnyRendition,
    DjangoConfig,
    RenditionConfig,
    variant_names,
)
from batchthumb.django import LIBRARIES, Library, library
from batchthumb.django.base import Encoding, PresetRendition
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


HASHED_SETTINGS: dict[str, set[str]] = {name: set(lib.hashed_sections) for name, lib in LIBRARIES.items()}
"""The ``[django]`` sections each preset's spec hash covers: its own library's settings
only, so that configuring another library never makes its renditions stale."""

UNHASHED_SETTINGS: dict[str, set[str]] = {
    section: set(fields)
    for owner in LIBRARIES.values()
    for section, fields in owner.unhashed_settings.items()
}
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
        owner = library(config.preset)
        spec["django"] = (django or DjangoConfig()).model_dump(
            mode="json", include=set(owner.hashed_sections), exclude=UNHASHED_SETTINGS
        )
        unturned = owner.unturned
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
    focal_text: str | None = None
    """Set by :meth:`for_source` for a preset: the source's focal point columns as planned, for
    a library that reads them itself (Wagtail's four pixel columns)."""
    focal: FocalPoint | None = None
    """Set by :meth:`for_source`: the source's focal point, for a crop about it."""

    @classmethod
    def from_config(
        cls, name: str, config: AnyRendition, django: DjangoConfig | None = None
    ) -> RenditionSpec:
        if isinstance(config, PresetRendition):
            django = django or DjangoConfig()
            rendering = library(config.preset).rendering(config, django)
            return cls(name, rendering, spec_hash(config, django), config, django)
        return cls(name, config, spec_hash(config))

    @property
    def library(self) -> Library | None:
        """The Django library a preset rendition stands in for (``None``: batchthumb's own)."""
        return None if self.preset is None else library(self.preset.preset)

    @property
    def crops_about_focal(self) -> bool:
        """Whether its output depends on the source's focal point (its PPOI): a crop. Moving
        the point makes it stale; it leaves a fit alone."""
        owner = self.library
        return self.config.mode == "crop" if owner is None else owner.crops_about_focal(self)

    @property
    def column(self) -> str | None:
        """The source table's column this rendition's name is written to, if any."""
        return self.preset.column if self.preset is not None else None

    @property
    def pillow_alpha(self) -> bool:
        """Whether a source has an alpha band only where Pillow gives it one (easy-thumbnails
        names its output by that): a colour-keyed PNG is opaque."""
        return self.library is not None and self.library.pillow_alpha

    @property
    def keeps_up_with_source(self) -> bool:
        """Whether its library serves it on disk only while it is not older than the source
        (easy-thumbnails compares modification times)."""
        return self.library is not None and self.library.keeps_up_with_source

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.config.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.config.format]

    # -- per source ------------------------------------------------------------------------

    def for_name(self, source_key: str) -> RenditionSpec:
        """This spec with its source's name set (the options of some libraries depend on it)."""
        return replace(self, source_key=source_key)

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
        assert self.library is not None
        try:
            point = self.library.focal(ppoi)
        except ValueError as exc:
            raise RenderError(str(exc)) from None
        fmt = self.library.format_for(self, source_key)
        config = self.config if fmt == self.config.format else self.config.model_copy(update={"format": fmt})
        quality = self._quality(fmt)
        if quality != config.quality:
            config = config.model_copy(update={"quality": quality})
        return replace(self, config=config, source_key=source_key, ppoi=point, focal_text=ppoi)

    def _quality(self, fmt: Format) -> int:
        return self.config.quality if self.library is None else self.library.quality(self, fmt)

    def encoding(self, alpha: bool, geometry: presets.Geometry | None) -> Encoding:
        """How an output with (or without) an alpha band is written: easy-thumbnails picks the
        format, and the name, by whether the output is transparent."""
        if self.library is None:
            return Encoding(self.config.format, False, self.config.jpeg_alpha)
        return self.library.encoding(self, alpha, geometry)

    def geometry(self, width: int, height: int) -> presets.Geometry | None:
        """The library's output for an upright (or, without autorotate, stored) source of this size."""
        return None if self.library is None else self.library.geometry(self, width, height)

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
        assert self.library is not None
        return self.library.object_key(self, source_key, ppoi, transparent)

    def candidate_keys(self, source_set: str, source_key: str, ppoi: str | None = None) -> list[str]:
        """Every name this rendition of the source may have (easy-thumbnails: the opaque and
        the transparent one, which it also looks for both)."""
        if self.library is None:
            return [self.object_key(source_set, source_key, ppoi)]
        return self.library.candidate_keys(self, source_key, ppoi)

    @property
    def namespace(self) -> str:
        """The prefix under which this rendition's objects live ('' for a generic one: its target)."""
        return "" if self.library is None else self.library.namespace(self)

    def skip_reason(self, source_key: str) -> str | None:
        """Why this rendition is never made of this source (a Wagtail SVG), or ``None``."""
        return None if self.library is None else self.library.skips(self, source_key)

    def owns(self, object_key: str) -> bool:
        """Whether ``object_key`` is a name of this rendition's pattern (always, for a generic one)."""
        return self.library is None or self.library.owns(self, object_key)

    def derived_source(self, object_key: str) -> tuple[Literal["stem", "compact"], str] | None:
        """For a library that keeps no metadata, which source a name of this rendition's pattern
        is of, as far as the name says: imagekit's folder is the source's path less its extension
        (``stem``); versatileimagefield's name is the source's path with every space removed and
        the size inserted before the extension (``compact``). ``None``: another library, or not
        of the pattern. ``purge orphans`` keeps what it finds for a source that still exists."""
        if self.library is None or not self.owns(object_key):
            return None
        return self.library.derived_source(self, object_key)


def specs_for(renditions: dict[str, AnyRendition], django: DjangoConfig | None = None) -> list[RenditionSpec]:
    """Every spec of these renditions: a width set's or format set's variants one by one."""
    specs = []
    for name, config in renditions.items():
        if isinstance(config, RenditionConfig):
            if config.widths or config.formats:
                specs += variant_specs(name, config)
            else:
                specs.append(RenditionSpec.from_config(name, config))
            continue
        for variant, preset in library(config.preset).variants(name, config):
            specs.append(RenditionSpec.from_config(variant, preset, django))
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
