"""django-versatileimagefield: ``image.thumbnail["300x300"]``, ``image.crop["300x300"]``.

Names: ``__sized__/<folder>/<stem>-<key>-WxH[-Q].<ext>``, no hash, every space removed; the
source's format kept; ``thumbnail`` never enlarges, ``crop`` cuts the box's aspect around the
PPOI; JPEGs turned by orientations 3, 6 and 8 only. No metadata: the name says whose it is.
"""

from __future__ import annotations

import posixpath
import re
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from batchthumb import presets
from batchthumb.django.base import (
    DerivedSite,
    Format,
    Library,
    PresetRendition,
    RenditionSpec,
    kept_format,
    ppoi_or_centre,
)
from batchthumb.models import Frozen, RenditionConfig
from batchthumb.presets import (
    Geometry,
)

if TYPE_CHECKING:
    from batchthumb.models import DjangoSettings


class VersatileImageRendition(PresetRendition):
    """``image.thumbnail['300x300']`` or ``image.crop['300x300']`` of a ``VersatileImageField``."""

    preset: Literal["versatileimagefield"]
    """``"versatileimagefield"``."""
    sizer: Literal["thumbnail", "crop"]
    """The sizer: ``image.thumbnail[...]`` or ``image.crop[...]``."""
    size: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$")]
    """The sizer's key: ``"300x300"``."""

    @property
    def box(self) -> tuple[int, int]:
        width, height = self.size.split("x")
        return int(width), int(height)


class VersatileImageSettings(Frozen):
    """``VERSATILEIMAGEFIELD_SETTINGS`` as far as names depend on it."""

    jpeg_resize_quality: Annotated[int, Field(ge=1, le=100)] = 70
    """``VERSATILEIMAGEFIELD_SETTINGS['jpeg_resize_quality']``."""
    webp_resize_quality: Annotated[int, Field(ge=1, le=100)] = 70
    """``VERSATILEIMAGEFIELD_SETTINGS['webp_resize_quality']``."""
    sized_directory_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")] = "__sized__"
    """``VERSATILEIMAGEFIELD_SETTINGS['sized_directory_name']``."""


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


def versatile_key(sizer: str, ppoi: tuple[float, float]) -> str:
    """``thumbnail``, or ``crop-c0-5__0-5`` for a crop at PPOI (0.5, 0.5)."""
    if sizer == "thumbnail":
        return "thumbnail"
    x, y = (str(value).replace(".", "-") for value in ppoi)
    return f"crop-c{x}__{y}"


def site_settings(django: DjangoSettings | None) -> VersatileImageSettings:
    """The site's ``[django.versatileimagefield]`` section (its defaults, without a config)."""
    return (
        django.section("versatileimagefield", VersatileImageSettings)
        if django is not None
        else VersatileImageSettings()
    )


class VersatileImageField(Library):
    rendition_model = VersatileImageRendition
    settings_model = VersatileImageSettings
    name = "versatileimagefield"
    django_app = "versatileimagefield"
    # the first presets hashed both sections (kept: a changed hash regenerates everything)
    hashed_sections = frozenset({"versatileimagefield", "imagekit"})
    unturned = True

    def derive(self, site: DerivedSite) -> None:
        from django.conf import settings
        from versatileimagefield.fields import VersatileImageField as Field

        given = getattr(settings, "VERSATILEIMAGEFIELD_SETTINGS", {}) or {}
        for key, default in (
            ("jpeg_resize_quality", 70),
            ("webp_resize_quality", 70),
            ("sized_directory_name", "__sized__"),
        ):
            origin = (
                f"VERSATILEIMAGEFIELD_SETTINGS[{key!r}]" if key in given else "versatileimagefield's default"
            )
            site.setting(self.name, key, given.get(key, default), origin)
        if given.get("image_key_post_processor"):
            site.refuse(
                "VERSATILEIMAGEFIELD_SETTINGS['image_key_post_processor']",
                f"{given['image_key_post_processor']!r} changes every name: "
                "batchthumb names as the default does",
            )
            return
        sets = site.image_sets(Field)
        for sizes, keys in (getattr(settings, "VERSATILEIMAGEFIELD_RENDITION_KEY_SETS", {}) or {}).items():
            for name, key in keys:
                where = f"VERSATILEIMAGEFIELD_RENDITION_KEY_SETS[{sizes!r}] ({name!r}, {key!r})"
                sizer, _, size = key.partition("__")
                if sizer not in ("thumbnail", "crop") or "__" in size:
                    site.refuse(
                        where, f"{key!r}: batchthumb makes the thumbnail and crop sizers only, unfiltered"
                    )
                    continue
                site.add_rendition(self.name, name, {"sizer": sizer, "size": size}, where, sets)
        for source_set in sets:
            ppoi = getattr(source_set.field, "ppoi_field", None)
            if ppoi:
                column = source_set.model._meta.get_field(ppoi).column
                source_set.table["ppoi_column"] = column

    def rendering(self, preset: VersatileImageRendition, django: DjangoSettings) -> RenditionConfig:
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
        settings = site_settings(spec.django)
        return settings.webp_resize_quality if fmt == "webp" else settings.jpeg_resize_quality

    def format_for(self, spec: RenditionSpec, source_key: str) -> Format:
        return kept_format(self.name, source_key)

    def geometry(self, spec: RenditionSpec, width: int, height: int) -> Geometry | None:
        preset = spec.preset
        assert isinstance(preset, VersatileImageRendition)
        box_width, box_height = preset.box
        if preset.sizer == "thumbnail":
            return presets.pil_thumbnail(width, height, box_width, box_height)
        return versatile_crop(width, height, box_width, box_height, spec.ppoi)

    def crops_about_focal(self, spec: RenditionSpec) -> bool:
        assert isinstance(spec.preset, VersatileImageRendition)
        return spec.preset.sizer == "crop"

    def object_key(self, spec: RenditionSpec, source_key: str, ppoi: str | None, transparent: bool) -> str:
        preset = spec.preset
        assert isinstance(preset, VersatileImageRendition)
        settings = site_settings(spec.django)
        width, height = preset.box
        return versatile_name(
            source_key,
            versatile_key(preset.sizer, ppoi_or_centre(ppoi)),
            width,
            height,
            settings.jpeg_resize_quality,
            settings.webp_resize_quality,
            settings.sized_directory_name,
        )

    def namespace(self, spec: RenditionSpec) -> str:
        return site_settings(spec.django).sized_directory_name + "/"

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
