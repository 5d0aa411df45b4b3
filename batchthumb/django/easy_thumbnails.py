"""easy-thumbnails: ``THUMBNAIL_ALIASES`` and ``get_thumbnailer(f)[alias]``.

Names are the default namer's (``images/cat.jpg.300x300_q85_crop.jpg``, beside the source), the
extension chosen by the output's transparency as Pillow sees it; ``scale_and_crop`` renders
(never enlarging without ``upscale``); its rows (:class:`EasyThumbnailsTables`); on disk it
compares modification times.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from batchthumb import presets
from batchthumb.caches import SiteCache
from batchthumb.config import DjangoConfig, EasyThumbnailsRendition, EasyThumbnailsSettings, RenditionConfig
from batchthumb.database import Database
from batchthumb.django.base import (
    Encoding,
    Format,
    Gone,
    Library,
    LibraryStore,
    RenditionSpec,
    Written,
    hex_colour,
)
from batchthumb.django.dropin import checked_table
from batchthumb.errors import RenderError
from batchthumb.stores import LocalStore, Store

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

    def metadata(
        self,
        db: Database,
        django: DjangoConfig,
        specs: Sequence[RenditionSpec],
        target: Store | None,
        cache: SiteCache | None,
    ) -> LibraryStore | None:
        local = target if isinstance(target, LocalStore) else None
        return EasyThumbnailsTables(db, django.easy_thumbnails, specs, local)

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
            where = f"django.easy_thumbnails.{placeholder.rstrip('s')}_table {table!r}"
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
