"""django-imagekit: ``ImageSpecField(source="image", processors=[ResizeToFit(300, 300)], ...)``.

Names: ``CACHE/images/<source less its extension>/<md5 of the canonical pickle>.<ext>``, the
pickle of pilkit's processor with every attribute (:func:`batchthumb.presets.imagekit_hash`);
no EXIF rotation (no ``Transpose``); pilkit's processors' arithmetic. No metadata: the name
says whose it is.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING, Any, Literal

from batchthumb import presets
from batchthumb.config import DjangoConfig, ImagekitRendition, RenditionConfig
from batchthumb.django.base import PIL_QUALITY, Format, Library, RenditionSpec, kept_format

if TYPE_CHECKING:
    from batchthumb.presets import Geometry


def pilkit(preset: ImagekitRendition) -> presets.PilkitProcessor:
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


class Imagekit(Library):
    name = "imagekit"
    # the first presets hashed both sections (kept: a changed hash regenerates everything)
    hashed_sections = frozenset({"versatileimagefield", "imagekit"})
    unturned = True

    def rendering(self, preset: ImagekitRendition, django: DjangoConfig) -> RenditionConfig:
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
            return presets.pilkit_fit(width, height, processor.width, processor.height, bool(upscale))
        assert processor.width is not None
        assert processor.height is not None
        if kind == "SmartResize":
            return presets.pilkit_smart(width, height, processor.width, processor.height, bool(upscale))
        anchor = presets.pilkit_anchor(attributes["anchor"])
        return presets.pilkit_fill(width, height, processor.width, processor.height, bool(upscale), anchor)

    def object_key(self, spec: RenditionSpec, source_key: str, ppoi: str | None, transparent: bool) -> str:
        preset = spec.preset
        assert isinstance(preset, ImagekitRendition)
        digest = presets.imagekit_hash(
            source_key,
            [pilkit(preset)],
            preset.format,
            None if preset.options is None else dict(preset.options),
            preset.autoconvert,
        )
        extension = presets.imagekit_extension(source_key, preset.format)
        cachefile_dir = (spec.django or DjangoConfig()).imagekit.cachefile_dir
        return presets.imagekit_name(source_key, digest, extension, cachefile_dir)

    def namespace(self, spec: RenditionSpec) -> str:
        return (spec.django or DjangoConfig()).imagekit.cachefile_dir.rstrip("/") + "/"

    def pattern(self, spec: RenditionSpec) -> str:
        return rf"{re.escape(self.namespace(spec))}.+/[0-9a-f]{{32}}\.[A-Za-z0-9]+"

    def derived_source(
        self, spec: RenditionSpec, object_key: str
    ) -> tuple[Literal["stem", "compact"], str] | None:
        """The folder is the source's path less its extension."""
        folder = posixpath.dirname(object_key.removeprefix(self.namespace(spec)))
        return ("stem", folder) if folder else None
