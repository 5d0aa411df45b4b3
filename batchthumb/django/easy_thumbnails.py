"""easy-thumbnails: ``THUMBNAIL_ALIASES`` and ``get_thumbnailer(f)[alias]``.

Names are the default namer's (``images/cat.jpg.300x300_q85_crop.jpg``, beside the source), the
extension chosen by the output's transparency as Pillow sees it; ``scale_and_crop`` renders
(never enlarging without ``upscale``); its rows are in :mod:`batchthumb.metadata`
(``EasyThumbnailsTables``), and on disk it compares modification times.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from batchthumb import presets
from batchthumb.config import DjangoConfig, EasyThumbnailsRendition, RenditionConfig
from batchthumb.django.base import Encoding, Format, Library, RenditionSpec, hex_colour
from batchthumb.errors import RenderError

if TYPE_CHECKING:
    from batchthumb.presets import Geometry


def options(spec: RenditionSpec) -> dict[str, Any]:
    """The alias's options as easy-thumbnails completes them (``quality`` always set)."""
    assert isinstance(spec.preset, EasyThumbnailsRendition)
    found = spec.preset.alias_options()
    found.setdefault("quality", (spec.django or DjangoConfig()).easy_thumbnails.quality)
    return found


def _extension(spec: RenditionSpec, source_key: str, transparent: bool) -> str:
    settings = (spec.django or DjangoConfig()).easy_thumbnails
    return presets.easy_extension(
        source_key,
        transparent,
        settings.extension,
        settings.transparency_extension,
        settings.preserve_extensions,
    )


class EasyThumbnails(Library):
    name = "easy_thumbnails"
    hashed_sections = frozenset({"easy_thumbnails"})
    pillow_alpha = True
    keeps_up_with_source = True

    def rendering(self, preset: EasyThumbnailsRendition, django: DjangoConfig) -> RenditionConfig:
        width, height = preset.size
        return RenditionConfig(
            # sizes come from easy-thumbnails' geometry; the box here only bounds the decode
            mode="crop" if preset.crop or preset.zoom else "fit",
            width=width or None,
            height=height or None,
            upscale=True,
            background=hex_colour(preset.background) if preset.background else (255, 255, 255),
        )

    def quality(self, spec: RenditionSpec, fmt: Format) -> int:
        return int(options(spec)["quality"])

    def format_for(self, spec: RenditionSpec, source_key: str) -> Format:
        # without transparency; render decides
        return self.encoding(spec.for_name(source_key), False, None).format

    def geometry(self, spec: RenditionSpec, width: int, height: int) -> Geometry | None:
        return presets.easy_geometry(width, height, options(spec))

    def encoding(self, spec: RenditionSpec, alpha: bool, geometry: Geometry | None) -> Encoding:
        """easy-thumbnails picks the format, and the name, by whether the output is transparent."""
        # background() pads onto an opaque colour: what it pads is no longer transparent
        padded = geometry is not None and geometry.pad is not None
        transparent = alpha and not padded
        fmt = presets.extension_format(_extension(spec, spec.source_key or "", transparent))
        if fmt is None:
            raise RenderError(
                f"easy-thumbnails keeps the extension of {spec.source_key!r}, whose format "
                "batchthumb does not write (JPEG, PNG and WebP only)"
            )
        # a transparent image saved as JPEG loses its alpha band (Pillow's convert)
        return Encoding(fmt, transparent, "flatten" if padded else "drop")

    def object_key(self, spec: RenditionSpec, source_key: str, ppoi: str | None, transparent: bool) -> str:
        easy = (spec.django or DjangoConfig()).easy_thumbnails
        return presets.easy_name(
            source_key,
            presets.easy_prepared_options(options(spec)),
            _extension(spec, source_key, transparent),
            easy.basedir,
            easy.subdir,
            easy.prefix,
        )

    def candidate_keys(self, spec: RenditionSpec, source_key: str, ppoi: str | None) -> list[str]:
        """The opaque and the transparent name: it looks for both."""
        keys = [self.object_key(spec, source_key, ppoi, False)]
        transparent = self.object_key(spec, source_key, ppoi, True)
        return keys + ([transparent] if transparent != keys[0] else [])

    def namespace(self, spec: RenditionSpec) -> str:
        # beside each source, under the base directory
        basedir = (spec.django or DjangoConfig()).easy_thumbnails.basedir.strip("/")
        return f"{basedir}/" if basedir else ""

    def pattern(self, spec: RenditionSpec) -> str:
        """``<basedir>/<folder>/<subdir>/<prefix><file>.<this alias's options>.<ext>``."""
        settings = (spec.django or DjangoConfig()).easy_thumbnails
        prepared = "_".join(presets.easy_prepared_options(options(spec)))
        preserve = settings.preserve_extensions
        if preserve is True:
            extensions = "[A-Za-z0-9]+"
        else:
            kept = preserve if isinstance(preserve, tuple) else ()
            choices = {settings.extension, settings.transparency_extension, *kept}
            extensions = "(?:" + "|".join(re.escape(ext) for ext in sorted(choices)) + ")"
        subdir = settings.subdir.strip("/")
        return (
            re.escape(self.namespace(spec))
            + "(?:.+/)?"
            + (re.escape(subdir + "/") if subdir else "")
            + re.escape(settings.prefix)
            + rf"[^/]+\.{re.escape(prepared)}\.{extensions}"
        )
