"""django-versatileimagefield: ``image.thumbnail["300x300"]``, ``image.crop["300x300"]``.

Names: ``__sized__/<folder>/<stem>-<key>-WxH[-Q].<ext>``, no hash, every space removed; the
source's format kept; ``thumbnail`` never enlarges, ``crop`` cuts the box's aspect around the
PPOI; JPEGs turned by orientations 3, 6 and 8 only. No metadata: the name says whose it is.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from batchthumb import presets
from batchthumb.config import DjangoConfig, RenditionConfig, VersatileImageRendition
from batchthumb.django.base import Format, Library, RenditionSpec, kept_format, ppoi_or_centre

if TYPE_CHECKING:
    from batchthumb.presets import Geometry


class VersatileImageField(Library):
    name = "versatileimagefield"
    # the first presets hashed both sections (kept: a changed hash regenerates everything)
    hashed_sections = frozenset({"versatileimagefield", "imagekit"})
    unturned = True

    def rendering(self, preset: VersatileImageRendition, django: DjangoConfig) -> RenditionConfig:
        width, height = preset.box
        mode: Literal["fit", "crop"] = "fit" if preset.sizer == "thumbnail" else "crop"
        return RenditionConfig(
            mode=mode,
            width=width,
            height=height,
            upscale=preset.sizer == "crop",
            autorotate="jpeg-rotations",  # it turns JPEGs by orientations 3, 6 and 8 only
        )

    def quality(self, spec: RenditionSpec, fmt: Format) -> int:
        settings = (spec.django or DjangoConfig()).versatileimagefield
        return settings.webp_resize_quality if fmt == "webp" else settings.jpeg_resize_quality

    def format_for(self, spec: RenditionSpec, source_key: str) -> Format:
        return kept_format(self.name, source_key)

    def geometry(self, spec: RenditionSpec, width: int, height: int) -> Geometry | None:
        preset = spec.preset
        assert isinstance(preset, VersatileImageRendition)
        box_width, box_height = preset.box
        if preset.sizer == "thumbnail":
            return presets.pil_thumbnail(width, height, box_width, box_height)
        return presets.versatile_crop(width, height, box_width, box_height, spec.ppoi)

    def crops_about_focal(self, spec: RenditionSpec) -> bool:
        assert isinstance(spec.preset, VersatileImageRendition)
        return spec.preset.sizer == "crop"

    def object_key(self, spec: RenditionSpec, source_key: str, ppoi: str | None, transparent: bool) -> str:
        preset = spec.preset
        assert isinstance(preset, VersatileImageRendition)
        settings = (spec.django or DjangoConfig()).versatileimagefield
        width, height = preset.box
        return presets.versatile_name(
            source_key,
            presets.versatile_key(preset.sizer, ppoi_or_centre(ppoi)),
            width,
            height,
            settings.jpeg_resize_quality,
            settings.webp_resize_quality,
            settings.sized_directory_name,
        )

    def namespace(self, spec: RenditionSpec) -> str:
        return (spec.django or DjangoConfig()).versatileimagefield.sized_directory_name + "/"

    def pattern(self, spec: RenditionSpec) -> str:
        preset = spec.preset
        assert isinstance(preset, VersatileImageRendition)
        width, height = preset.box
        key = "thumbnail" if preset.sizer == "thumbnail" else r"crop-c[0-9-]+__[0-9-]+"
        return rf"{re.escape(self.namespace(spec))}(.+/)?[^/]+-{key}-{width}x{height}(-[0-9]+)?\.[^/.]+"

    def derived_source(
        self, spec: RenditionSpec, object_key: str
    ) -> tuple[Literal["stem", "compact"], str] | None:
        """The name is the source's path with every space removed and the size inserted."""
        match = re.fullmatch(
            rf"{re.escape(self.namespace(spec))}(?P<base>.+)-(?:thumbnail|crop-c[0-9-]+__[0-9-]+)"
            r"-[0-9]+x[0-9]+(?:-[0-9]+)?\.(?P<ext>[^/.]+)",
            object_key,
        )
        return ("compact", f"{match['base']}.{match['ext']}") if match else None
