"""What a Django thumbnail library keeps besides the file, kept where it looks for it.

sorl-thumbnail decides that a thumbnail exists from its key value store
(``thumbnail_kvstore``), easy-thumbnails from its ``easy_thumbnails_source`` and
``easy_thumbnails_thumbnail`` rows (remote storage; on disk, from modification
times), not from the file: a file without its rows makes the site HEAD it, read the
source again or render again. So a drop-in run writes the rows the library would
write, in the same shielded block as its own registry rows (the objects exist by
then), and a purge removes them once the objects are gone. Every write is batched:
one statement per kind of row and batch, never a query per thumbnail.

The rows live in the site's database (the one the source tables are in), reached
through :class:`batchthumb.database.Database` like every other query.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

from batchthumb.caches import SiteCache
from batchthumb.config import (
    DjangoConfig,
    EasyThumbnailsRendition,
    EasyThumbnailsSettings,
    SorlRendition,
    SorlSettings,
)
from batchthumb.database import Database
from batchthumb.errors import ConfigError
from batchthumb.presets import sorl_tokey
from batchthumb.queries import query, quote_identifier, split_table
from batchthumb.specs import RenditionSpec
from batchthumb.stores import LocalStore, Store


@dataclass(frozen=True)
class Written:
    """A rendition stored and recorded: what the library's metadata says of it."""

    spec: RenditionSpec
    source_key: str
    source_size: tuple[int, int]
    """The source as decoded, before EXIF rotation (sorl records it so)."""
    object_key: str
    size: tuple[int, int]
    """The size written."""
    read_at: datetime | None = None
    """When the source version it shows was read: easy-thumbnails' ``modified`` (``None``: now)."""


@dataclass(frozen=True)
class Gone:
    """An object a purge deleted, with its source when the registry knew it."""

    object_key: str
    source_key: str | None


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


async def checked_table(db: Database, where: str, table: str, columns: set[str], app: str) -> str:
    """``table`` quoted, once the catalog shows it in the sources' database with ``columns``."""
    schema, name = split_table(table)
    rows = await db.fetch("reading the catalog", query("table_columns"), schema, name)
    found = {row[0] for row in rows}
    if not found:
        raise ConfigError(
            f"{where}: table {schema}.{name} not found in the sources' database; "
            f"run the site's migrations ({app}) first"
        )
    missing = columns - found
    if missing:
        raise ConfigError(f"{where}: has no column {', '.join(sorted(missing))}: not {app}'s table")
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"


class LibraryStore(Protocol):
    """One library's metadata: checked, written, forgotten, read for ``adopt``."""

    async def check(self) -> None: ...

    def owns(self, object_key: str) -> bool: ...

    async def record(self, written: Sequence[Written]) -> None: ...

    async def forget(self, gone: Sequence[Gone]) -> None: ...

    async def in_use(self, names: Sequence[str]) -> dict[str, str | None]: ...

    async def adoptable(self, found: Sequence[tuple[str, str]]) -> dict[str, tuple[int, int]]: ...


class LibraryMetadata:
    """Every library's metadata a config's presets need (none for most)."""

    def __init__(self, stores: Sequence[LibraryStore]) -> None:
        self.stores = list(stores)

    @classmethod
    async def checked(
        cls,
        db: Database,
        django: DjangoConfig,
        specs: Sequence[RenditionSpec],
        target: Store | None = None,
        cache: SiteCache | None = None,
    ) -> LibraryMetadata:
        """What these renditions' libraries keep, its tables checked in the catalog (``target``:
        the storage root, where a library looks at the files themselves; ``cache``: the site's
        shared cache, where sorl's ``cached_db`` store reads its rows through)."""
        stores: list[LibraryStore] = []
        if any(isinstance(spec.preset, SorlRendition) for spec in specs):
            stores.append(SorlKeyValueStore(db, django.sorl, specs, cache))
        if any(isinstance(spec.preset, EasyThumbnailsRendition) for spec in specs):
            local = target if isinstance(target, LocalStore) else None
            stores.append(EasyThumbnailsTables(db, django.easy_thumbnails, specs, local))
        for store in stores:
            await store.check()
        return cls(stores)

    async def record(self, written: Sequence[Written]) -> None:
        for store in self.stores:
            await store.record(written)

    async def forget(self, gone: Sequence[Gone]) -> None:
        for store in self.stores:
            await store.forget(gone)

    async def in_use(self, names: Sequence[str]) -> dict[str, str | None]:
        """Of these names, those a library's own metadata lists, whoever made them, each with the
        source it lists them for (``None``: it does not say). A purge in the library's namespace
        leaves them alone while that source exists."""
        found: dict[str, str | None] = {}
        for store in self.stores:
            for name, source in (await store.in_use(names)).items():
                if name not in found or found[name] is not None:
                    found[name] = source  # unknown wins: the stricter answer
        return found

    async def adoptable(self, found: Sequence[tuple[str, str]]) -> dict[str, tuple[int, int]]:
        """Of these (name, source) pairs found in the store, the ones to record as done, with
        their size where the library knows it: a library that would not serve one (its rows
        say it is stale) leaves it to ``generate``."""
        adoptable = {name: (0, 0) for name, _ in found}
        for store in self.stores:
            ours = [(name, source) for name, source in found if store.owns(name)]
            if not ours:
                continue
            vouched = await store.adoptable(ours)
            for name, _ in ours:
                if name in vouched:
                    adoptable[name] = vouched[name]
                else:
                    adoptable.pop(name, None)
        return adoptable
