"""sorl-thumbnail: ``{% thumbnail p.image "300x300" crop="center" quality=85 %}``.

Names are md5 keys of the source name, the storage class and the options sorl completes
(``cache/ab/cd/<key>.jpg``); sorl's PIL engine renders (JPEG unless ``format`` says otherwise,
enlarging by default, ``toint`` rounding, crop positions, its own smart crop, padding); its key
value rows (:class:`SorlKeyValueStore`), and their cache keys in the site's shared cache.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from batchthumb import presets
from batchthumb.caches import SiteCache
from batchthumb.config import DjangoConfig, RenditionConfig, SorlRendition, SorlSettings
from batchthumb.database import Database
from batchthumb.django.base import (
    PIL_QUALITY,
    Format,
    Gone,
    Library,
    LibraryStore,
    RenditionSpec,
    Written,
    hex_colour,
)
from batchthumb.django.dropin import checked_table
from batchthumb.queries import quote_identifier

if TYPE_CHECKING:
    from batchthumb.presets import Geometry
    from batchthumb.stores import Store


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
    unhashed_settings: ClassVar[dict[str, frozenset[str]]] = {
        "sorl": frozenset({"cache", "cache_key_prefix", "cache_version"})
    }

    def site_cache(self, django: DjangoConfig) -> tuple[str, str, int] | None:
        settings = django.sorl
        if settings.cache is None:
            return None
        return settings.cache.get_secret_value(), settings.cache_key_prefix, settings.cache_version

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

    def metadata(
        self,
        db: Database,
        django: DjangoConfig,
        specs: Sequence[RenditionSpec],
        target: Store | None,
        cache: SiteCache | None,
    ) -> LibraryStore | None:
        return SorlKeyValueStore(db, django.sorl, specs, cache)

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
        where = f"django.sorl.kvstore_table {self.settings.kvstore_table!r}"
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
        return presets.sorl_tokey(name, self.settings.storage)

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
