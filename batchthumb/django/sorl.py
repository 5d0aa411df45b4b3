"""sorl-thumbnail: ``{% thumbnail p.image "300x300" crop="center" quality=85 %}``.

Names are md5 keys of the source name, the storage class and the options sorl completes
(``cache/ab/cd/<key>.jpg``); sorl's PIL engine renders (JPEG unless ``format`` says otherwise,
enlarging by default, ``toint`` rounding, crop positions, its own smart crop, padding); its key
value rows are in :mod:`batchthumb.metadata` (``SorlKeyValueStore``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from batchthumb import presets
from batchthumb.config import DjangoConfig, RenditionConfig, SorlRendition
from batchthumb.django.base import PIL_QUALITY, Format, Library, RenditionSpec, hex_colour

if TYPE_CHECKING:
    from batchthumb.presets import Geometry


def options(spec: RenditionSpec) -> dict[str, Any]:
    """sorl's options for this rendition: the template's, then every default sorl adds."""
    preset = spec.preset
    assert isinstance(preset, SorlRendition)
    settings = (spec.django or DjangoConfig()).sorl
    found: dict[str, Any] = dict(preset.options)
    if settings.preserve_format and spec.source_key is not None:
        found.setdefault("format", presets.source_format(spec.source_key) or settings.format)
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
        found.setdefault(key, value)
    return found


def _quality(found: dict[str, Any]) -> int:
    try:
        quality = int(found["quality"])
    except (TypeError, ValueError):
        return PIL_QUALITY
    return quality if 1 <= quality <= 100 else PIL_QUALITY


class Sorl(Library):
    name = "sorl"
    hashed_sections = frozenset({"sorl"})

    def rendering(self, preset: SorlRendition, django: DjangoConfig) -> RenditionConfig:
        settings = django.sorl
        crop = preset.options.get("crop")
        padding = preset.options.get("padding", settings.padding)
        colour = str(preset.options.get("padding_color", settings.padding_color))
        return RenditionConfig(
            # sizes come from sorl's geometry; the box here only bounds the decode
            mode="crop" if crop and crop != "noop" else "fit",
            width=None if preset.geometry.startswith("x") else int(preset.geometry.split("x")[0]),
            height=int(preset.geometry.split("x")[1]) if "x" in preset.geometry else None,
            upscale=True,
            background=hex_colour(colour) if padding else (255, 255, 255),
            jpeg_alpha="flatten" if settings.flatten else "drop",
        )

    def quality(self, spec: RenditionSpec, fmt: Format) -> int:
        return _quality(options(spec))

    def format_for(self, spec: RenditionSpec, source_key: str) -> Format:
        return presets.BATCHTHUMB_FORMATS[str(options(spec.for_name(source_key))["format"])]

    def geometry(self, spec: RenditionSpec, width: int, height: int) -> Geometry | None:
        assert isinstance(spec.preset, SorlRendition)
        return presets.sorl_geometry(width, height, spec.preset.geometry, options(spec))

    def object_key(self, spec: RenditionSpec, source_key: str, ppoi: str | None, transparent: bool) -> str:
        preset = spec.preset
        assert isinstance(preset, SorlRendition)
        settings = (spec.django or DjangoConfig()).sorl
        return presets.sorl_name(
            source_key,
            settings.storage,
            preset.geometry,
            options(spec.for_name(source_key)),
            settings.prefix,
        )

    def namespace(self, spec: RenditionSpec) -> str:
        return (spec.django or DjangoConfig()).sorl.prefix

    def pattern(self, spec: RenditionSpec) -> str:
        # <prefix>ab/cd/abcd<28 hex>.<ext>
        hex2 = "[0-9a-f]{2}"
        namespace = re.escape(self.namespace(spec))
        return rf"{namespace}(?P<a>{hex2})/(?P<b>{hex2})/(?P=a)(?P=b)[0-9a-f]{{28}}\.[a-z]+"
