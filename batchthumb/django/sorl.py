"""sorl-thumbnail: ``{% thumbnail p.image "300x300" crop="center" quality=85 %}``.

Names are md5 keys of the source name, the storage class and the options sorl completes
(``cache/ab/cd/<key>.jpg``); sorl's PIL engine renders (JPEG unless ``format`` says otherwise,
enlarging by default, ``toint`` rounding, crop positions, its own smart crop, padding); its key
value rows (:class:`SorlKeyValueStore`), and their cache keys in the site's shared cache.
"""

from __future__ import annotations

import ast
import hashlib
import json
import math
import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from batchthumb import presets
from batchthumb.caches import SiteCache
from batchthumb.database import Database
from batchthumb.django.base import (
    HEX_COLOUR,
    PIL_QUALITY,
    DerivedSite,
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
from batchthumb.models import Frozen, RenditionConfig
from batchthumb.presets import (
    Geometry,
)
from batchthumb.queries import quote_identifier

if TYPE_CHECKING:
    from batchthumb.models import DjangoSettings
    from batchthumb.stores import Store


SORL_OPTIONS = ("crop", "quality", "format", "upscale", "padding", "padding_color", "colorspace")
"""The template options batchthumb renders as sorl does; others (``rounded``, ``blur``,
``cropbox``, ...) are refused rather than named right and drawn wrong."""


class SorlRendition(PresetRendition):
    """``{% thumbnail image "300x300" crop="center" quality=85 %}`` / ``get_thumbnail(...)``."""

    preset: Literal["sorl"]
    """``"sorl"``."""
    geometry: Annotated[str, Field(pattern=r"^([1-9][0-9]{0,4}(x[1-9][0-9]{0,4})?|x[1-9][0-9]{0,4})$")]
    """The geometry string as the template writes it: ``"300x300"``, ``"300"``, ``"x300"``."""
    options: dict[str, int | bool | str] = Field(default_factory=dict)
    """The template's options as written (``quality = 85`` and ``quality = "85"`` name different files)."""

    @field_validator("options")
    @classmethod
    def _supported(cls, options: dict[str, int | bool | str]) -> dict[str, int | bool | str]:
        for key, value in options.items():
            if key not in SORL_OPTIONS:
                supported = ", ".join(SORL_OPTIONS)
                raise ValueError(f"sorl option {key!r} is not supported (supported: {supported})")
            if key == "format" and value not in ("JPEG", "PNG", "WEBP"):
                raise ValueError("format must be 'JPEG', 'PNG' or 'WEBP'")
            if key == "colorspace" and value != "RGB":
                raise ValueError("only colorspace 'RGB' is supported")
            if key == "crop" and isinstance(value, str) and value != "noop" and value != "smart":
                sorl_crop_offsets(value, (2, 2), (1, 1))  # raises on what sorl would refuse
        return options


class SorlSettings(Frozen):
    """sorl-thumbnail's settings, as far as names, rows and output depend on them."""

    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*/$")] = "cache/"
    """``THUMBNAIL_PREFIX``."""
    format: Literal["JPEG", "PNG", "WEBP"] = "JPEG"
    """``THUMBNAIL_FORMAT``."""
    preserve_format: bool = False
    """``THUMBNAIL_PRESERVE_FORMAT``: the source's format (by its extension) instead."""
    quality: Annotated[int, Field(ge=1, le=100)] = 95
    """``THUMBNAIL_QUALITY``."""
    upscale: bool = True
    """``THUMBNAIL_UPSCALE``."""
    padding: bool = False
    """``THUMBNAIL_PADDING``."""
    padding_color: Annotated[str, Field(pattern=HEX_COLOUR)] = "#ffffff"
    """``THUMBNAIL_PADDING_COLOR``."""
    flatten: bool = False
    """``THUMBNAIL_FLATTEN``: a transparent source written as JPEG is composited onto white
    (or the padding colour); without it, its alpha is dropped."""
    storage: Annotated[str, Field(min_length=1)] = "django.core.files.storage.filesystem.FileSystemStorage"
    """The class path of the storage the sources and thumbnails live on (``STORAGES["default"]``'s
    ``BACKEND``; ``storages.backends.s3.S3Storage`` on S3): it is hashed into every name."""
    storage_alias: Annotated[str, Field(min_length=1)] = "default"
    """What the key value rows name as their storage: the ``STORAGES`` alias."""
    key_prefix: Annotated[str, Field(pattern=r"^[^|%_]+$")] = "sorl-thumbnail"
    """``THUMBNAIL_KEY_PREFIX``."""
    kvstore_table: str = "thumbnail_kvstore"
    """The key value store's table (sorl's model ``KVStore``), in the sources' database."""
    key_column: str = "key"
    """``THUMBNAIL_KEY_DBCOLUMN``."""
    cache: SecretStr | None = None
    """The site's shared cache that sorl's ``cached_db`` key value store reads through
    (``CACHES[THUMBNAIL_CACHE]``, else ``CACHES["default"]``), as a Redis URL
    (``redis://cache:6379/0``; credentials in it stay secret): the keys of every row a run
    writes or deletes are deleted there, as sorl deletes them. Without it, a site whose cache
    is shared keeps serving what the cache holds (ten years by default). Not in the spec hash."""
    cache_key_prefix: str = ""
    """That cache's ``KEY_PREFIX``."""
    cache_version: int = 1
    """That cache's ``VERSION``."""

    @field_validator("cache")
    @classmethod
    def _redis_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            scheme = value.get_secret_value().partition("://")[0]
            if scheme not in ("redis", "rediss", "unix"):
                raise ValueError(
                    f"{scheme!r}: only a Redis cache can be reached from outside the site "
                    "(redis://host:6379/0); a LocMemCache lives inside each web process"
                )
        return value


def sorl_toint(number: float) -> int:
    """sorl's ``toint``: ``round`` above 1, ``ceil`` at or below (a 1×54 image keeps a pixel)."""
    return int(round(number, 0) if number > 1 else round(math.ceil(number), 0))


SORL_GEOMETRY = re.compile(r"^(?P<x>\d+)?(?:x(?P<y>\d+))?$")


SORL_POSITION = re.compile(r"^(?P<value>\d+)(?P<unit>%|px)$")


def sorl_parse_geometry(geometry: str, ratio: float) -> tuple[int, int]:
    """``parse_geometry``: ``"300x200"``, ``"300"``, ``"x200"``; the missing side by the ratio."""
    match = SORL_GEOMETRY.match(geometry)
    if match is None or (match.group("x") is None and match.group("y") is None):
        raise ValueError(f"geometry {geometry!r} is not 'WxH', 'W' or 'xH'")
    x = int(match.group("x")) if match.group("x") is not None else None
    y = int(match.group("y")) if match.group("y") is not None else None
    if x is None:
        assert y is not None
        return sorl_toint(y * ratio), y
    if y is None:
        return x, sorl_toint(x / ratio)
    return x, y


def sorl_crop_offsets(crop: str, image: tuple[int, int], window: tuple[int, int]) -> tuple[int, int]:
    """``parse_crop``: ``center``, ``top``, ``left bottom``, ``"30% 70%"``, ``"10px 0px"``."""
    x_alias = {"left": "0%", "center": "50%", "right": "100%"}
    y_alias = {"top": "0%", "center": "50%", "bottom": "100%"}
    parts = crop.split(" ")
    if len(parts) == 1:
        if crop in x_alias:
            x_crop, y_crop = x_alias[crop], "50%"
        elif crop in y_alias:
            x_crop, y_crop = "50%", y_alias[crop]
        else:
            x_crop = y_crop = crop
    elif len(parts) == 2:
        x_crop, y_crop = x_alias.get(parts[0], parts[0]), y_alias.get(parts[1], parts[1])
    else:
        raise ValueError(f"crop {crop!r} is not one of sorl's crop positions")

    def offset(position: str, room: int) -> int:
        match = SORL_POSITION.match(position)
        if match is None:
            raise ValueError(f"crop {crop!r} is not one of sorl's crop positions")
        value: float = int(match.group("value"))
        if match.group("unit") == "%":
            value = room * value / 100.0
        return int(max(0, min(value, room)))

    return offset(x_crop, image[0] - window[0]), offset(y_crop, image[1] - window[1])


def sorl_geometry(width: int, height: int, geometry: str, options: dict[str, Any]) -> Geometry:
    """sorl's PIL engine on an upright source: scale (``toint``), crop, padding."""
    box_width, box_height = sorl_parse_geometry(geometry, width / height)
    crop = options.get("crop") or None
    cropping = crop is not None and crop != "noop"
    factor = (max if cropping else min)(box_width / width, box_height / height)
    scaled = (width, height)
    if factor < 1 or options.get("upscale"):
        scaled = (sorl_toint(width * factor), sorl_toint(height * factor))
    if not cropping:
        result = Geometry(*scaled)
    elif crop == "smart":
        ratio = box_width / box_height
        target = (
            max(min(scaled[0], round(scaled[1] * ratio)), 1),
            max(min(scaled[1], round(scaled[0] / ratio)), 1),
        )
        result = Geometry(*target, smart_cover=scaled, smart="sorl")
    else:
        window = (min(scaled[0], box_width), min(scaled[1], box_height))
        x, y = sorl_crop_offsets(str(crop), scaled, window)
        scale_x, scale_y = scaled[0] / width, scaled[1] / height
        box = (x / scale_x, y / scale_y, (x + window[0]) / scale_x, (y + window[1]) / scale_y)
        result = Geometry(*window, crop=box)
    if options.get("padding") and (result.width, result.height) != (box_width, box_height):
        return replace(result, pad=(box_width, box_height))
    return result


def sorl_tokey(*parts: str) -> str:
    """sorl's ``tokey``: md5 of the parts joined by ``||``."""
    return hashlib.md5("||".join(parts).encode()).hexdigest()


SORL_EXTENSIONS = {"JPEG": "jpg", "PNG": "png", "GIF": "gif", "WEBP": "webp", "AVIF": "avif"}


def sorl_name(source_name: str, storage: str, geometry: str, options: dict[str, Any], prefix: str) -> str:
    """``_get_thumbnail_filename``: ``<prefix>ab/cd/abcd….<ext>`` from the source's key, the
    geometry as written and the options (every default included) as sorted JSON."""
    key = sorl_tokey(sorl_tokey(source_name, storage), geometry, json.dumps(options, sort_keys=True))
    return f"{prefix}{key[:2]}/{key[2:4]}/{key}.{SORL_EXTENSIONS[options['format']]}"


def options(spec: RenditionSpec) -> dict[str, Any]:
    """sorl's options for this rendition: the template's, then every default sorl adds."""
    preset = spec.preset
    assert isinstance(preset, SorlRendition)
    settings = site_settings(spec.django)
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


def site_settings(django: DjangoSettings | None) -> SorlSettings:
    """The site's ``[django.sorl]`` section (its defaults, without a config)."""
    if django is None:
        return SorlSettings()
    return django.section("sorl", SorlSettings)


SORL_CLASSES = {
    "backend": ("sorl.thumbnail.base.ThumbnailBackend",),
    "kvstore": (
        "sorl.thumbnail.kvstores.cached_db_kvstore.KVStore",
        "sorl.thumbnail.kvstores.db_kvstore.KVStore",
    ),
}
"""What a site's ``THUMBNAIL_BACKEND`` and ``THUMBNAIL_KVSTORE`` must be for batchthumb's names and rows."""


class Sorl(Library):
    rendition_model = SorlRendition
    settings_model = SorlSettings
    name = "sorl"
    django_app = "sorl.thumbnail"
    hashed_sections = frozenset({"sorl"})
    unhashed_settings: ClassVar[dict[str, frozenset[str]]] = {
        "sorl": frozenset({"cache", "cache_key_prefix", "cache_version"})
    }

    def derive(self, site: DerivedSite) -> None:
        from django.conf import settings as django_settings
        from sorl.thumbnail.conf import settings

        from batchthumb.django.sitetools import class_path, literal, shared_cache, slug

        for key, setting in (("backend", "THUMBNAIL_BACKEND"), ("kvstore", "THUMBNAIL_KVSTORE")):
            value, default = getattr(settings, setting), SORL_CLASSES[key]
            if value not in default:
                site.refuse(setting, f"{value!r}: batchthumb writes what {' or '.join(default)} reads")
                return
        names = {
            "prefix": "THUMBNAIL_PREFIX",
            "quality": "THUMBNAIL_QUALITY",
            "format": "THUMBNAIL_FORMAT",
            "preserve_format": "THUMBNAIL_PRESERVE_FORMAT",
            "upscale": "THUMBNAIL_UPSCALE",
            "padding": "THUMBNAIL_PADDING",
            "padding_color": "THUMBNAIL_PADDING_COLOR",
            "flatten": "THUMBNAIL_FLATTEN",
            "key_prefix": "THUMBNAIL_KEY_PREFIX",
            "key_column": "THUMBNAIL_KEY_DBCOLUMN",
        }
        for key, setting in names.items():
            given = hasattr(django_settings, setting)
            site.setting(self.name, key, getattr(settings, setting), setting if given else "sorl's default")
        sets = site.image_sets()
        if sets:
            storage = class_path(sets[0].field.storage)
            site.setting(
                self.name, "storage", storage, f"{sets[0].origin}.storage: its class, hashed into names"
            )
        site.setting(self.name, "storage_alias", settings.THUMBNAIL_STORAGE, "THUMBNAIL_STORAGE")
        shared_cache(site, self.name, settings.THUMBNAIL_CACHE, "THUMBNAIL_CACHE: cached_db reads through it")
        if settings.THUMBNAIL_ENGINE != "sorl.thumbnail.engines.pil_engine.Engine":
            site.notes.append(
                f"sorl: THUMBNAIL_ENGINE {settings.THUMBNAIL_ENGINE!r}: names are the same, pixels are "
                "libvips' rendering of the PIL engine's geometry"
            )

        def wanted(where: str, source: str, geometry: Any, options: dict[str, Any], text: str) -> None:
            field_name = source.split(".")[-1]
            chosen = [s for s in sets if s.field.name == field_name] or sets
            table: dict[str, Any] = {"geometry": geometry}
            if options:
                table["options"] = options
            words = "-".join(f"{k}-{v}" for k, v in options.items())
            site.add_rendition(self.name, slug(f"sorl-{geometry}-{words}"), table, f"{where}: {text}", chosen)

        for tag in site.template_tags({"thumbnail"}):
            if not tag.library.startswith("sorl."):
                continue
            bits = tag.bits[: tag.bits.index("as")] if "as" in tag.bits else tag.bits
            if len(bits) < 3:
                site.refuse(tag.where, f"{tag.text}: not a thumbnail tag sorl reads")
                continue
            known, geometry = literal(bits[2])
            if not known or not isinstance(geometry, str):
                site.refuse(tag.where, f"{tag.text}: the geometry {bits[2]} is not a literal: not derivable")
                continue
            options: dict[str, Any] = {}
            for bit in bits[3:]:
                key, _, raw = bit.partition("=")
                known, value = literal(raw)
                if not known:
                    site.refuse(tag.where, f"{tag.text}: option {bit} is not a literal: not derivable")
                    break
                options[key] = value
            else:
                wanted(tag.where, bits[1], geometry, options, tag.text)
        for where, call in site.python_calls("get_thumbnail"):
            arguments = [*call.args[1:2], *(k.value for k in call.keywords)]
            if (
                len(call.args) != 2
                or not all(isinstance(a, ast.Constant) for a in arguments)
                or any(k.arg is None for k in call.keywords)
            ):
                site.refuse(
                    where, "get_thumbnail(...) with a geometry or option that is not a literal: not derivable"
                )
                continue
            source = ast.unparse(call.args[0])
            options = {k.arg: k.value.value for k in call.keywords if k.arg}
            wanted(where, source, call.args[1].value, options, ast.unparse(call))

    def site_cache(self, django: DjangoSettings) -> tuple[str, str, int] | None:
        settings = site_settings(django)
        if settings.cache is None:
            return None
        return settings.cache.get_secret_value(), settings.cache_key_prefix, settings.cache_version

    def rendering(self, preset: SorlRendition, django: DjangoSettings) -> RenditionConfig:
        settings = site_settings(django)
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
        return sorl_geometry(width, height, spec.preset.geometry, options(spec))

    def object_key(self, spec: RenditionSpec, source_key: str, ppoi: str | None, transparent: bool) -> str:
        preset = spec.preset
        assert isinstance(preset, SorlRendition)
        settings = site_settings(spec.django)
        return sorl_name(
            source_key,
            settings.storage,
            preset.geometry,
            options(spec.for_name(source_key)),
            settings.prefix,
        )

    def namespace(self, spec: RenditionSpec) -> str:
        return site_settings(spec.django).prefix

    def metadata(
        self,
        db: Database,
        django: DjangoSettings,
        specs: Sequence[RenditionSpec],
        target: Store | None,
        cache: SiteCache | None,
    ) -> LibraryStore | None:
        return SorlKeyValueStore(db, site_settings(django), specs, cache)

    def pattern(self, spec: RenditionSpec) -> str:
        # <prefix>ab/cd/abcd<28 hex>.<ext>
        hex2 = "[0-9a-f]{2}"
        namespace = re.escape(self.namespace(spec))
        return rf"{namespace}(?P<a>{hex2})/(?P<b>{hex2})/(?P=a)(?P=b)[0-9a-f]{{28}}\.[a-z]+"


class SorlKeyValueStore:
    """sorl-thumbnail's three rows per thumbnail, in the site's ``thumbnail_kvstore``.

    - ``<prefix>||image||<tokey(source, storage)>``: the source's name, storage alias and size;
    - ``<prefix>||image||<tokey(thumbnail, storage)>``: the thumbnail's, with the size written;
    - ``<prefix>||thumbnails||<source key>``: the source's thumbnail keys, merged, never overwritten.
    """

    def __init__(
        self,
        db: Database,
        settings: SorlSettings,
        specs: Sequence[RenditionSpec],
        cache: SiteCache | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.specs = [spec for spec in specs if isinstance(spec.preset, SorlRendition)]
        self.identifiers: dict[str, str] = {}
        self.cache = cache
        """The site's shared cache (``cached_db``): the keys of every row changed are deleted there."""

    async def check(self) -> None:
        """The table exists, with sorl's columns; quote it for the queries."""
        where = f"site_settings(django).kvstore_table {self.settings.kvstore_table!r}"
        self.identifiers = {
            "table": await checked_table(
                self.db,
                where,
                self.settings.kvstore_table,
                {self.settings.key_column, "value"},
                "sorl.thumbnail",
            ),
            "key": quote_identifier(self.settings.key_column, "column"),
        }

    def _key(self, identity: str, key: str) -> str:
        return f"{self.settings.key_prefix}||{identity}||{key}"

    def image_key(self, name: str) -> str:
        """``ImageFile.key`` of a file on the site's storage (its name, the storage class)."""
        return sorl_tokey(name, self.settings.storage)

    def _image_value(self, name: str, size: tuple[int, int]) -> str:
        return json.dumps({"name": name, "storage": self.settings.storage_alias, "size": list(size)})

    async def record(self, written: Sequence[Written]) -> None:
        """Upsert the image rows and merge the thumbnail keys into the sources' lists."""
        ours = [entry for entry in written if isinstance(entry.spec.preset, SorlRendition)]
        if not ours:
            return
        images: dict[str, str] = {}
        lists: dict[str, set[str]] = {}
        for entry in ours:
            source = self.image_key(entry.source_key)
            thumbnail = self.image_key(entry.object_key)
            images[self._key("image", source)] = self._image_value(entry.source_key, entry.source_size)
            images[self._key("image", thumbnail)] = self._image_value(entry.object_key, entry.size)
            lists.setdefault(self._key("thumbnails", source), set()).add(thumbnail)
        image_keys = sorted(images)
        list_keys = sorted(lists)
        await self.db.transaction(
            "writing sorl-thumbnail's key value rows",
            [
                (
                    self.db.q("sorl_set_images", **self.identifiers),
                    (image_keys, [images[key] for key in image_keys]),
                ),
                (
                    self.db.q("sorl_add_thumbnails", **self.identifiers),
                    (list_keys, [json.dumps(sorted(lists[key])) for key in list_keys]),
                ),
            ],
        )
        # the site's cache may hold these rows' old values, or a miss: it reads them again
        await self.uncache(image_keys + list_keys)

    async def uncache(self, keys: Sequence[str]) -> None:
        """Delete these rows' entries from the site's shared cache, if it has one."""
        if self.cache is not None and keys:
            await self.cache.delete(keys)

    def owns(self, object_key: str) -> bool:
        return any(spec.owns(object_key) for spec in self.specs)

    async def forget(self, gone: Sequence[Gone]) -> None:
        """Remove these thumbnails' rows and their keys from their sources' lists, then the cache
        keys of every row changed (whatever spec named them: a replaced spec's objects go too,
        and rows naming them are wrong). Called before their files are deleted, as sorl does."""
        ours = list(gone)
        if not ours:
            return
        thumbnails = sorted({self.image_key(entry.object_key) for entry in ours})
        known = sorted({self._key("thumbnails", self.image_key(e.source_key)) for e in ours if e.source_key})
        unknown = any(entry.source_key is None for entry in ours)
        lists_like = self._key("thumbnails", "%")
        image_rows = [self._key("image", key) for key in thumbnails]
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (self.db.q("sorl_delete_keys", **self.identifiers), (image_rows,)),
        ]
        for sources in ([known] if known else []) + ([None] if unknown else []):
            statements.append(
                (self.db.q("sorl_remove_thumbnails", **self.identifiers), (sources, thumbnails, lists_like))
            )
            statements.append((self.db.q("sorl_drop_empty_lists", **self.identifiers), (sources, lists_like)))
        results = await self.db.transaction("removing sorl-thumbnail's key value rows", statements)
        # as sorl's _delete_raw: the rows, then their cache keys (then, the caller: the files)
        changed = [row[0] for rows in results[1:] for row in rows]
        await self.uncache(image_rows + changed)

    async def in_use(self, names: Sequence[str]) -> dict[str, str | None]:
        """Of these names, the thumbnails sorl's rows know, each with the name of the source whose
        list holds it (``None``: no list names a source for it), whoever made them."""
        ours = sorted({name for name in names if self.owns(name)})
        if not ours:
            return {}
        rows = await self.db.fetch(
            "reading sorl-thumbnail's key value rows",
            self.db.q("sorl_in_use", **self.identifiers),
            ours,
            [self.image_key(name) for name in ours],
            self._key("image", ""),
            self._key("thumbnails", ""),
        )
        found: dict[str, str | None] = {}
        for row in rows:
            source = _json_name(row["source"])
            if row["name"] not in found or source is not None:
                found[row["name"]] = source
        return found

    async def adoptable(self, found: Sequence[tuple[str, str]]) -> dict[str, tuple[int, int]]:
        """Every thumbnail found (sorl serves what its rows or the storage say exists), with
        the size sorl recorded where it did ((0, 0): unknown; nothing is read)."""
        sizes = await self.known_sizes([name for name, _ in found])
        return {name: sizes.get(name, (0, 0)) for name, _ in found}

    async def known_sizes(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        """The sizes sorl recorded for these thumbnails."""
        ours = [name for name in names if self.owns(name)]
        if not ours:
            return {}
        by_key = {self._key("image", self.image_key(name)): name for name in ours}
        rows = await self.db.fetch(
            "reading sorl-thumbnail's key value rows",
            self.db.q("sorl_find", **self.identifiers),
            list(by_key),
        )
        sizes: dict[str, tuple[int, int]] = {}
        for row in rows:
            try:
                value = json.loads(row["value"])
                width, height = (int(side) for side in value["size"])
            except (ValueError, TypeError, KeyError):
                continue  # a row sorl could not read either: the size stays unknown
            if value.get("name") == by_key[row["key"]]:
                sizes[by_key[row["key"]]] = (width, height)
        return sizes


def _json_name(value: str | None) -> str | None:
    """The ``name`` of a sorl image row's JSON value, or ``None`` (no row, or not sorl's JSON)."""
    if value is None:
        return None
    try:
        name = json.loads(value).get("name")
    except (ValueError, AttributeError):
        return None
    return name if isinstance(name, str) else None
