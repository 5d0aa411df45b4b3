"""django_advance_thumbnail: ``AdvanceThumbnailField(source_field="image", upload_to=..., size=...)``.

Names: ``<upload_to>/<stem>_thumbnail<ext>`` (the size is not in the name), held by the model's
thumbnail column, which batchthumb fills; quality 85, the format by the extension.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING, Literal

from batchthumb import presets
from batchthumb.config import AdvanceThumbnailRendition, DjangoConfig, RenditionConfig
from batchthumb.django.base import Format, Library, RenditionSpec

if TYPE_CHECKING:
    from batchthumb.presets import Geometry


class AdvanceThumbnail(Library):
    name = "django_advance_thumbnail"
    # the first presets hashed both sections (kept: a changed hash regenerates everything)
    hashed_sections = frozenset({"versatileimagefield", "imagekit"})

    def rendering(self, preset: AdvanceThumbnailRendition, django: DjangoConfig) -> RenditionConfig:
        mode: Literal["fit", "crop"] = "fit" if preset.resize_method == "fit" else "crop"
        width, height = preset.size
        return RenditionConfig(mode=mode, width=width, height=height, quality=85, upscale=mode == "crop")

    def quality(self, spec: RenditionSpec, fmt: Format) -> int:
        return 85

    def format_for(self, spec: RenditionSpec, source_key: str) -> Format:
        # by the extension; anything else gets JPEG bytes (under the source's extension)
        return presets.BATCHTHUMB_FORMATS.get(presets.source_format(source_key) or "", "jpeg")

    def geometry(self, spec: RenditionSpec, width: int, height: int) -> Geometry | None:
        preset = spec.preset
        assert isinstance(preset, AdvanceThumbnailRendition)
        box_width, box_height = preset.size
        if preset.resize_method == "fit":
            return presets.pil_thumbnail(width, height, box_width, box_height)
        return presets.pil_fit(width, height, box_width, box_height)

    def object_key(self, spec: RenditionSpec, source_key: str, ppoi: str | None, transparent: bool) -> str:
        assert isinstance(spec.preset, AdvanceThumbnailRendition)
        return presets.advance_thumbnail_name(source_key, spec.preset.upload_to)

    def namespace(self, spec: RenditionSpec) -> str:
        assert isinstance(spec.preset, AdvanceThumbnailRendition)
        return posixpath.normpath(spec.preset.upload_to) + "/"

    def pattern(self, spec: RenditionSpec) -> str:
        # Django may have appended _XXXXXXX to a name that was taken
        return rf"{re.escape(self.namespace(spec))}[^/]+_thumbnail(_[A-Za-z0-9]{{7}})?\.[^/.]+"
