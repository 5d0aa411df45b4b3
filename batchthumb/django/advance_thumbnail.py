"""django_advance_thumbnail: ``AdvanceThumbnailField(source_field="image", upload_to=..., size=...)``.

Names: ``<upload_to>/<stem>_thumbnail<ext>`` (the size is not in the name), held by the model's
thumbnail column, which batchthumb fills; quality 85, the format by the extension.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field, field_validator

from batchthumb import presets
from batchthumb.django.base import DerivedSite, Format, Library, PresetRendition, RenditionSpec
from batchthumb.models import RenditionConfig
from batchthumb.presets import (
    Geometry,
    django_valid_name,
)

if TYPE_CHECKING:
    from batchthumb.models import DjangoSettings


class AdvanceThumbnailRendition(PresetRendition):
    """``AdvanceThumbnailField(source_field="image", upload_to=..., size=..., resize_method=...)``."""

    preset: Literal["django_advance_thumbnail"]
    """``"django_advance_thumbnail"``."""
    upload_to: Annotated[str, Field(min_length=1)]
    """The field's ``upload_to``: the directory the thumbnails go in (``"thumbnails/"``)."""
    size: tuple[Annotated[int, Field(gt=0, le=20_000)], Annotated[int, Field(gt=0, le=20_000)]] = (300, 300)
    """The field's ``size``: ``[300, 300]``."""
    resize_method: Literal["fit", "fill", "cover"] = "fit"
    """The field's ``resize_method``."""

    @field_validator("upload_to")
    @classmethod
    def _plain_directory(cls, value: str) -> str:
        if "%" in value:
            raise ValueError("an upload_to with strftime patterns names files by the date: not supported")
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("upload_to must be a relative directory without '..'")
        return value


def advance_thumbnail_name(source_key: str, upload_to: str) -> str:
    """django_advance_thumbnail: ``<upload_to>/<stem>_thumbnail<ext>``, as Django's storage names it."""
    stem, ext = posixpath.splitext(posixpath.basename(source_key))
    filename = django_valid_name(f"{stem}_thumbnail{ext}")
    return posixpath.normpath(posixpath.join(upload_to, filename))


class AdvanceThumbnail(Library):
    rendition_model = AdvanceThumbnailRendition
    name = "django_advance_thumbnail"
    django_app = "django_advance_thumbnail"
    # the first presets hashed both sections (kept: a changed hash regenerates everything)
    hashed_sections = frozenset({"versatileimagefield", "imagekit"})

    def rendition_fields(self) -> tuple[type, ...]:
        from django_advance_thumbnail.fields import AdvanceThumbnailField

        return (AdvanceThumbnailField,)

    def derive(self, site: DerivedSite) -> None:
        from django.apps import apps
        from django_advance_thumbnail.fields import AdvanceThumbnailField

        for model in apps.get_models():
            for field in model._meta.concrete_fields:
                if not isinstance(field, AdvanceThumbnailField):
                    continue
                where = f"{model._meta.label}.{field.name}"
                if callable(field.upload_to):
                    site.refuse(
                        where, f"upload_to is a function ({field.upload_to!r}): its names cannot be known"
                    )
                    continue
                sets = [
                    s
                    for s in site.sets.values()
                    if s.model is model and s.field.name == field.source_field_name
                ]
                table = {
                    "upload_to": field.upload_to,
                    "size": list(field.size),
                    "resize_method": field.resize_method,
                    "column": field.column,
                }
                site.add_rendition(self.name, field.name, table, where, sets)

    def rendering(self, preset: AdvanceThumbnailRendition, django: DjangoSettings) -> RenditionConfig:
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
        return advance_thumbnail_name(source_key, spec.preset.upload_to)

    def namespace(self, spec: RenditionSpec) -> str:
        assert isinstance(spec.preset, AdvanceThumbnailRendition)
        return posixpath.normpath(spec.preset.upload_to) + "/"

    def pattern(self, spec: RenditionSpec) -> str:
        # Django may have appended _XXXXXXX to a name that was taken
        return rf"{re.escape(self.namespace(spec))}[^/]+_thumbnail(_[A-Za-z0-9]{{7}})?\.[^/.]+"
