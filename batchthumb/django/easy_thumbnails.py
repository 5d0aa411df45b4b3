"""easy-thumbnails: ``THUMBNAIL_ALIASES`` and ``get_thumbnailer(f)[alias]``.

Names are the default namer's (``images/cat.jpg.300x300_q85_crop.jpg``, beside the source), the
extension chosen by the output's transparency as Pillow sees it; ``scale_and_crop`` renders
(never enlarging without ``upscale``); its rows (:class:`EasyThumbnailsTables`); on disk it
compares modification times.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from batchthumb import presets
from batchthumb.caches import SiteCache
from batchthumb.database import Database
from batchthumb.django.base import (
    HEX_COLOUR,
    DerivedSite,
    Encoding,
    Format,
    Gone,
    Library,
    LibraryStore,
    PresetRendition,
    RenditionSpec,
    Written,
    hex_colour,
)
from batchthumb.django.dropin import checked_table
from batchthumb.errors import RenderError
from batchthumb.models import Frozen, RenditionConfig
from batchthumb.presets import (
    Geometry,
)
from batchthumb.stores.local import LocalStore

if TYPE_CHECKING:
    from batchthumb.models import DjangoSettings
    from batchthumb.stores import Store


EASY_CROP = r"^[-A-Za-z0-9,]+$"
"""``crop``: ``"smart"``, ``"scale"``, edge offsets ``",0"`` / ``"-10,-0"`` (another word crops
around the centre, as easy-thumbnails does; the name keeps the word)."""


class EasyThumbnailsRendition(PresetRendition):
    """An easy-thumbnails alias: ``THUMBNAIL_ALIASES = {"": {"fit": {"size": (300, 300), ...}}}``.

    Options as the alias writes them; those batchthumb does not render as easy-thumbnails
    does (``bw``, ``sharpen``, ``autocrop``, ``subsampling``, ...) are refused rather than
    named right and drawn wrong.
    """

    preset: Literal["easy_thumbnails"]
    """``"easy_thumbnails"``."""
    size: tuple[Annotated[int, Field(ge=0, le=20_000)], Annotated[int, Field(ge=0, le=20_000)]]
    """``size``: ``(300, 300)``; a 0 follows the source's aspect (``(300, 0)``)."""
    crop: bool | Annotated[str, Field(pattern=EASY_CROP)] = False
    """``crop``: ``true``, ``"smart"``, ``"scale"`` or an edge crop (``",0"``, ``"-10,-0"``)."""
    upscale: bool = False
    """``upscale``: enlarge a smaller source."""
    quality: Annotated[int, Field(ge=1, le=100)] | None = None
    """Absent: ``THUMBNAIL_QUALITY``."""
    zoom: Annotated[int, Field(ge=0, le=1000)] | None = None
    """``zoom``: crop this percentage more before resizing."""
    target: (
        Annotated[str, Field(pattern=r"^(\d+)?,(\d+)?$")]
        | tuple[Annotated[int, Field(ge=0, le=100)], Annotated[int, Field(ge=0, le=100)]]
        | None
    ) = None
    """The focal point a crop keeps centred, in percent: ``"10,20"`` or ``[10, 20]``."""
    background: Annotated[str, Field(pattern=HEX_COLOUR)] | None = None
    """Pads a smaller result to ``size`` on this colour (``"#fff"``)."""

    @model_validator(mode="after")
    def _size(self) -> EasyThumbnailsRendition:
        if not any(self.size):
            raise ValueError("size needs a width, a height or both (easy-thumbnails refuses (0, 0))")
        return self

    def alias_options(self) -> dict[str, Any]:
        """The alias's options as easy-thumbnails reads them (what was left out, left out)."""
        options = self.model_dump(mode="python", exclude={"preset", "column"}, exclude_none=True)
        return {key: value for key, value in options.items() if value is not False}


class EasyThumbnailsSettings(Frozen):
    """easy-thumbnails' settings, as far as names, rows and output depend on them."""

    basedir: Annotated[str, Field(pattern=r"^([A-Za-z0-9_][A-Za-z0-9_./-]*)?$")] = ""
    """``THUMBNAIL_BASEDIR`` (``%(opts)s`` patterns are not supported)."""
    subdir: Annotated[str, Field(pattern=r"^([A-Za-z0-9_][A-Za-z0-9_./-]*)?$")] = ""
    """``THUMBNAIL_SUBDIR``."""
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]*$")] = ""
    """``THUMBNAIL_PREFIX``."""
    quality: Annotated[int, Field(ge=1, le=100)] = 85
    """``THUMBNAIL_QUALITY``."""
    extension: Literal["jpg", "jpeg", "png", "webp"] = "jpg"
    """``THUMBNAIL_EXTENSION``: the format of every thumbnail without transparency."""
    transparency_extension: Literal["jpg", "jpeg", "png", "webp"] = "png"
    """``THUMBNAIL_TRANSPARENCY_EXTENSION``."""
    preserve_extensions: bool | tuple[Annotated[str, Field(pattern=r"^[a-z0-9]+$")], ...] = ()
    """``THUMBNAIL_PRESERVE_EXTENSIONS``: ``true``, or the source extensions kept (``["png"]``)."""
    storage: Annotated[str, Field(min_length=1)] = "django.core.files.storage.filesystem.FileSystemStorage"
    """The class path of the sources' storage (``STORAGES["default"]``'s ``BACKEND``): its md5
    is the sources' ``storage_hash``."""
    thumbnail_storage: Annotated[str, Field(min_length=1)] | None = None
    """The class path of ``STORAGES["easy_thumbnails"]``, where the site has that alias (the
    thumbnails' ``storage_hash``); absent: the sources' storage."""
    cache_dimensions: bool = False
    """``THUMBNAIL_CACHE_DIMENSIONS``: a ``thumbnaildimensions`` row per thumbnail."""
    source_table: str = "easy_thumbnails_source"
    """The table of easy-thumbnails' ``Source`` model."""
    thumbnail_table: str = "easy_thumbnails_thumbnail"
    """The table of its ``Thumbnail`` model."""
    dimensions_table: str = "easy_thumbnails_thumbnaildimensions"
    """The table of its ``ThumbnailDimensions`` model."""

    @property
    def thumbnail_storage_class(self) -> str:
        return self.thumbnail_storage or self.storage


def easy_geometry(width: int, height: int, options: dict[str, Any]) -> Geometry:
    """easy-thumbnails' ``scale_and_crop`` (and ``background``) on an upright source.

    Scale by the tighter side (the looser one to crop, or when a side of ``size`` is 0),
    ``int(round(...))``, never enlarging without ``upscale``; ``zoom`` enlarges the scale
    after the size is settled; then a crop of at most ``size`` around the ``target``
    focal point (default the centre), from the edges (``",0"``, ``"-10,"``) or by entropy
    (``"smart"``, pilkit's algorithm); ``"scale"`` keeps the scaled image whole.
    """
    source_x, source_y = float(width), float(height)
    target_x, target_y = (int(side) for side in options["size"])
    crop = options.get("crop") or False
    if crop or not target_x or not target_y:
        scale = max(target_x / source_x, target_y / source_y)
    else:
        scale = min(target_x / source_x, target_y / source_y)
    if not target_x:
        target_x = round(source_x * scale)
    elif not target_y:
        target_y = round(source_y * scale)
    zoom = options.get("zoom")
    if zoom:
        if not crop:
            target_x, target_y, crop = round(source_x * scale), round(source_y * scale), True
        scale *= (100 + int(zoom)) / 100.0
    scaled = (width, height)
    if scale < 1.0 or (scale > 1.0 and options.get("upscale")):
        scaled = (round(source_x * scale), round(source_y * scale))
    if 0 in scaled:  # found by the property tests: easy-thumbnails' resize fails here too
        raise RenderError(
            f"easy-thumbnails scales this {width}x{height} source to {scaled[0]}x{scaled[1]} with "
            f"these options: a side of 0 px, which it cannot save either"
        )
    result = Geometry(*scaled)
    scaled_x, scaled_y = scaled
    diff_x, diff_y = scaled_x - min(scaled_x, target_x), scaled_y - min(scaled_y, target_y)
    if crop and crop != "scale" and (diff_x or diff_y):
        window = (scaled_x - diff_x, scaled_y - diff_y)
        edges = re.match(r"(?:(-?)(\d+))?,(?:(-?)(\d+))?$", crop) if isinstance(crop, str) else None
        if edges is None and crop == "smart":
            result = Geometry(*window, smart_cover=scaled)
        else:
            left, top = _easy_focal_offsets(scaled, (target_x, target_y), options.get("target"))
            if edges is not None:
                x_right, x_crop, y_bottom, y_crop = edges.groups()
                if x_crop:
                    offset = min(target_x * int(x_crop) // 100, diff_x)
                    left = diff_x - offset if x_right else offset
                if y_crop:
                    offset = min(target_y * int(y_crop) // 100, diff_y)
                    top = diff_y - offset if y_bottom else offset
            factor_x, factor_y = scaled_x / width, scaled_y / height
            box = (
                left / factor_x,
                top / factor_y,
                (left + window[0]) / factor_x,
                (top + window[1]) / factor_y,
            )
            result = Geometry(*window, crop=box)
    background, (size_x, size_y) = options.get("background"), options["size"]
    if background and size_x and size_y and (result.width < size_x or result.height < size_y):
        return replace(result, pad=(int(size_x), int(size_y)))
    return result


def _easy_focal_offsets(
    scaled: tuple[int, int], target: tuple[int, int], focal: str | tuple[int, int] | None
) -> tuple[int, int]:
    """Where a crop of ``target`` starts so that the focal point (percent) is centred."""
    point: tuple[Any, ...] | None = None
    if isinstance(focal, str):
        match = re.match(r"(\d+)?,(\d+)?$", focal)
        point = match.groups() if match else None
    elif focal:
        point = tuple(focal)
    focal_x, focal_y = (int(n) if (n or n == 0) else 50 for n in point) if point else (50, 50)
    (scaled_x, scaled_y), (target_x, target_y) = scaled, target
    left = max(0, min(scaled_x - target_x, int(scaled_x * focal_x / 100) - int(target_x / 2)))
    top = max(0, min(scaled_y - target_y, int(scaled_y * focal_y / 100) - int(target_y / 2)))
    return left, top


def easy_prepared_options(options: dict[str, Any]) -> list[str]:
    """``ThumbnailOptions.prepared_options``: ``["300x300", "q85", "crop", "target-10,20"]``."""
    prepared = ["{}x{}".format(*options["size"]), f"q{options['quality']}"]
    for key, value in sorted(options.items()):
        if key == key.upper() or not value or key in ("size", "quality", "subsampling"):
            continue
        if value is True:
            prepared.append(key)
            continue
        if not isinstance(value, str):
            try:
                value = ",".join(str(item) for item in value)
            except TypeError:
                value = str(value)
        prepared.append(f"{key}-{value}")
    return prepared


def easy_name(
    source_name: str,
    prepared: list[str],
    extension: str,
    basedir: str = "",
    subdir: str = "",
    prefix: str = "",
) -> str:
    """The default namer: ``<basedir>/<folder>/<subdir>/<prefix><file>.<options>.<ext>``."""
    path, filename = posixpath.split(source_name)
    name = f"{prefix}{filename}.{'_'.join(prepared)}.{extension}"
    return posixpath.join(basedir, path.lstrip("/"), subdir, name)


def easy_extension(
    source_name: str,
    transparent: bool,
    extension: str,
    transparency_extension: str,
    preserve: bool | tuple[str, ...],
) -> str:
    """The thumbnail's extension: the source's if preserved, else by transparency."""
    source_extension = posixpath.splitext(source_name)[1][1:].lower()
    if preserve is True or (isinstance(preserve, tuple) and source_extension in preserve):
        chosen = source_extension
    else:
        chosen = transparency_extension if transparent else extension
    return chosen or "jpg"


def options(spec: RenditionSpec) -> dict[str, Any]:
    """The alias's options as easy-thumbnails completes them (``quality`` always set)."""
    assert isinstance(spec.preset, EasyThumbnailsRendition)
    found = spec.preset.alias_options()
    found.setdefault("quality", site_settings(spec.django).quality)
    return found


def _extension(spec: RenditionSpec, source_key: str, transparent: bool) -> str:
    settings = site_settings(spec.django)
    return easy_extension(
        source_key,
        transparent,
        settings.extension,
        settings.transparency_extension,
        settings.preserve_extensions,
    )


def site_settings(django: DjangoSettings | None) -> EasyThumbnailsSettings:
    """The site's ``[django.easy_thumbnails]`` section (its defaults, without a config)."""
    return (
        django.section("easy_thumbnails", EasyThumbnailsSettings)
        if django is not None
        else EasyThumbnailsSettings()
    )


class EasyThumbnails(Library):
    rendition_model = EasyThumbnailsRendition
    settings_model = EasyThumbnailsSettings
    name = "easy_thumbnails"
    django_app = "easy_thumbnails"
    hashed_sections = frozenset({"easy_thumbnails"})
    pillow_alpha = True
    keeps_up_with_source = True

    def derive(self, site: DerivedSite) -> None:
        from django.conf import settings as django_settings
        from django.core.files.storage import storages
        from easy_thumbnails import conf
        from easy_thumbnails.conf import settings

        from batchthumb.django.sitetools import class_path, slug

        for setting in ("THUMBNAIL_NAMER", "THUMBNAIL_PROCESSORS", "THUMBNAIL_SOURCE_GENERATORS"):
            value, default = getattr(settings, setting), getattr(conf.Settings, setting)
            if tuple(value) != tuple(default) if not isinstance(value, str) else value != default:
                site.refuse(
                    setting, f"{value!r}: batchthumb names and renders as easy-thumbnails' defaults do"
                )
                return
        if getattr(django_settings, "THUMBNAIL_DEFAULT_OPTIONS", None):
            site.refuse("THUMBNAIL_DEFAULT_OPTIONS", "options laid over every alias are not derived")
            return
        names = {
            "basedir": "THUMBNAIL_BASEDIR",
            "subdir": "THUMBNAIL_SUBDIR",
            "prefix": "THUMBNAIL_PREFIX",
            "quality": "THUMBNAIL_QUALITY",
            "extension": "THUMBNAIL_EXTENSION",
            "transparency_extension": "THUMBNAIL_TRANSPARENCY_EXTENSION",
            "cache_dimensions": "THUMBNAIL_CACHE_DIMENSIONS",
        }
        for key, setting in names.items():
            given = hasattr(django_settings, setting)
            site.setting(
                self.name, key, getattr(settings, setting), setting if given else "easy-thumbnails' default"
            )
        preserve = settings.THUMBNAIL_PRESERVE_EXTENSIONS
        if preserve:
            value = True if preserve is True else sorted(str(e).lower() for e in preserve)
            site.setting(self.name, "preserve_extensions", value, "THUMBNAIL_PRESERVE_EXTENSIONS")
        sets = site.image_sets()
        if sets:
            site.setting(
                self.name,
                "storage",
                class_path(sets[0].field.storage),
                f"{sets[0].origin}.storage (its storage_hash)",
            )
        alias = settings.THUMBNAIL_DEFAULT_STORAGE_ALIAS
        if alias in getattr(django_settings, "STORAGES", {}):
            site.setting(self.name, "thumbnail_storage", class_path(storages[alias]), f"STORAGES[{alias!r}]")
        for target, aliases in (settings.THUMBNAIL_ALIASES or {}).items():
            chosen = site.sets_named(target)
            for name, options in aliases.items():
                where = f"THUMBNAIL_ALIASES[{target!r}][{name!r}]"
                table = {
                    key: list(value) if isinstance(value, tuple) else value for key, value in options.items()
                }
                site.add_rendition(
                    self.name, name if not target else slug(f"{target}-{name}"), table, where, chosen
                )
        aliases = {name for named in (settings.THUMBNAIL_ALIASES or {}).values() for name in named}
        for tag in site.template_tags({"thumbnail"}):
            if not tag.library.startswith("easy_thumbnails."):
                continue  # sorl's tag of the same name
            size = tag.bits[2].strip("\"'") if len(tag.bits) > 2 else ""
            if size not in aliases:
                site.refuse(
                    tag.where,
                    f"{tag.text}: an easy-thumbnails tag with a size and options of its own is not "
                    "derived: name them as a THUMBNAIL_ALIASES alias (the tag takes an alias's name)",
                )

    def rendering(self, preset: EasyThumbnailsRendition, django: DjangoSettings) -> RenditionConfig:
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
        return easy_geometry(width, height, options(spec))

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
        easy = site_settings(spec.django)
        return easy_name(
            source_key,
            easy_prepared_options(options(spec)),
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

    def metadata(
        self,
        db: Database,
        django: DjangoSettings,
        specs: Sequence[RenditionSpec],
        target: Store | None,
        cache: SiteCache | None,
    ) -> LibraryStore | None:
        local = target if isinstance(target, LocalStore) else None
        return EasyThumbnailsTables(db, site_settings(django), specs, local)

    def namespace(self, spec: RenditionSpec) -> str:
        # beside each source, under the base directory
        basedir = site_settings(spec.django).basedir.strip("/")
        return f"{basedir}/" if basedir else ""

    def pattern(self, spec: RenditionSpec) -> str:
        """``<basedir>/<folder>/<subdir>/<prefix><file>.<this alias's options>.<ext>``."""
        settings = site_settings(spec.django)
        prepared = "_".join(easy_prepared_options(options(spec)))
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


def storage_hash(class_path: str) -> str:
    """easy-thumbnails' ``get_storage_hash``: the md5 of the storage's class path."""
    return hashlib.md5(class_path.encode()).hexdigest()


class EasyThumbnailsTables:
    """easy-thumbnails' rows per thumbnail, in the site's database.

    - ``easy_thumbnails_source``: one per source (its storage hash and name), added where
      missing; an existing row's ``modified`` is left alone;
    - ``easy_thumbnails_thumbnail``: one per thumbnail, ``modified`` not older than the
      source's, so that the site counts it current (on S3 it looks nowhere else);
    - ``easy_thumbnails_thumbnaildimensions``: its size as written, when the site caches
      dimensions (``THUMBNAIL_CACHE_DIMENSIONS``), so ``.width`` reads no file.

    Written on disk too, as easy-thumbnails itself does: the field's ``delete_thumbnails``
    and ``thumbnail_cleanup`` find thumbnails through them.
    """

    def __init__(
        self,
        db: Database,
        settings: EasyThumbnailsSettings,
        specs: Sequence[RenditionSpec],
        local: LocalStore | None = None,
    ) -> None:
        self.db = db
        self.local = local
        """The storage root, when it is a local directory (where modification times decide)."""
        self.settings = settings
        self.specs = [spec for spec in specs if isinstance(spec.preset, EasyThumbnailsRendition)]
        self.identifiers: dict[str, str] = {}
        self.source_hash = storage_hash(settings.storage)
        self.thumbnail_hash = storage_hash(settings.thumbnail_storage_class)

    async def check(self) -> None:
        """The three tables exist, with easy-thumbnails' columns; quote them for the queries."""
        settings = self.settings
        tables = {
            "sources": (settings.source_table, {"id", "storage_hash", "name", "modified"}),
            "thumbnails": (settings.thumbnail_table, {"id", "storage_hash", "name", "modified", "source_id"}),
            "dimensions": (settings.dimensions_table, {"thumbnail_id", "width", "height"}),
        }
        for placeholder, (table, columns) in tables.items():
            where = f"site_settings(django).{placeholder.rstrip('s')}_table {table!r}"
            self.identifiers[placeholder] = await checked_table(
                self.db, where, table, columns, "easy_thumbnails"
            )

    def owns(self, object_key: str) -> bool:
        return any(spec.owns(object_key) for spec in self.specs)

    async def record(self, written: Sequence[Written]) -> None:
        """Add the sources' rows where missing, then upsert the thumbnails' (and sizes)."""
        ours = {
            (entry.object_key, entry.source_key): entry
            for entry in written
            if isinstance(entry.spec.preset, EasyThumbnailsRendition)
        }
        if not ours:
            return
        pairs = sorted(ours)
        names, sources = [name for name, _ in pairs], [source for _, source in pairs]
        now = datetime.now(UTC)
        # the time the source version it shows was read, never later: a source row the site
        # bumped since (it replaced the file and made thumbnails) makes these stale to it
        read_at = [ours[pair].read_at or now for pair in pairs]
        first_read: dict[str, datetime] = {}
        for source, when in zip(sources, read_at, strict=True):
            first_read[source] = min(when, first_read.get(source, when))
        new_sources = sorted(first_read)
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (
                self.db.q("easy_add_sources", **self.identifiers),
                (self.source_hash, new_sources, [first_read[name] for name in new_sources]),
            ),
            (
                self.db.q("easy_set_thumbnails", **self.identifiers),
                (self.thumbnail_hash, names, sources, self.source_hash, read_at),
            ),
            (
                self.db.q("easy_set_dimensions", **self.identifiers),
                (
                    self.thumbnail_hash,
                    names,
                    sources,
                    self.source_hash,
                    [ours[pair].size[0] for pair in pairs],
                    [ours[pair].size[1] for pair in pairs],
                    self.settings.cache_dimensions,
                ),
            ),
        ]
        await self.db.transaction("writing easy-thumbnails' rows", statements)

    async def forget(self, gone: Sequence[Gone]) -> None:
        """Delete the deleted thumbnails' rows, and the source rows they leave empty (whatever
        spec named them: a replaced alias's objects are gone too, and rows naming them are wrong)."""
        names = sorted({entry.object_key for entry in gone})
        if names:
            await self.db.transaction(
                "removing easy-thumbnails' rows",
                [(self.db.q("easy_forget", **self.identifiers), (self.thumbnail_hash, names))],
            )

    async def in_use(self, names: Sequence[str]) -> dict[str, str | None]:
        """Of these names, the thumbnails easy-thumbnails' rows know, with their source's name."""
        ours = sorted({name for name in names if self.owns(name)})
        if not ours:
            return {}
        rows = await self.db.fetch(
            "reading easy-thumbnails' rows",
            self.db.q("easy_in_use", **self.identifiers),
            self.thumbnail_hash,
            ours,
        )
        return {row["name"]: row["source"] for row in rows}

    async def adoptable(self, found: Sequence[tuple[str, str]]) -> dict[str, tuple[int, int]]:
        """The thumbnails easy-thumbnails itself counts current, with the dimensions it cached
        ((0, 0): unknown; nothing is read). On disk, a file not older than its source (a stat
        of each: the library bumps a source's row whenever it saves a thumbnail there, so on
        disk its rows say nothing); elsewhere, a row not older than the source's."""
        pairs = sorted(set(found))
        rows = await self.db.fetch(
            "reading easy-thumbnails' rows",
            self.db.q("easy_current", **self.identifiers),
            self.thumbnail_hash,
            [name for name, _ in pairs],
            [source for _, source in pairs],
            self.source_hash,
        )
        if self.local is not None:
            current = set(await self.local.not_older(pairs))
        else:
            current = {row["name"] for row in rows if row["current"]}
        return {
            row["name"]: (row["width"] or 0, row["height"] or 0) for row in rows if row["name"] in current
        }
