"""What a Django thumbnail library keeps besides the file, kept where it looks for it.

sorl-thumbnail decides that a thumbnail exists from its key value store
(``thumbnail_kvstore``), not from the file: a file without its rows makes the site
HEAD it, read the source and the thumbnail again, and write the rows itself. So a
drop-in run writes the rows sorl would write, in the same shielded block as its own
registry rows (the objects exist by then), and a purge removes them once the objects
are gone. Every write is batched: one statement per kind of row and batch, never a
query per thumbnail.

The rows live in the site's database (the one the source tables are in), reached
through :class:`batchthumb.database.Database` like every other query.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from batchthumb.config import DjangoConfig, SorlRendition, SorlSettings
from batchthumb.database import Database
from batchthumb.errors import ConfigError
from batchthumb.presets import sorl_tokey
from batchthumb.queries import query, quote_identifier, split_table
from batchthumb.specs import RenditionSpec


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

    def __init__(self, db: Database, settings: SorlSettings, specs: Sequence[RenditionSpec]) -> None:
        self.db = db
        self.settings = settings
        self.specs = [spec for spec in specs if isinstance(spec.preset, SorlRendition)]
        self.identifiers: dict[str, str] = {}

    async def check(self) -> None:
        """The table exists, with sorl's columns; quote it for the queries."""
        where = f"django.sorl.kvstore_table {self.settings.kvstore_table!r}"
        schema, table = split_table(self.settings.kvstore_table)
        rows = await self.db.fetch("reading the catalog", query("table_columns"), schema, table)
        columns = {row[0] for row in rows}
        if not columns:
            raise ConfigError(
                f"{where}: table {schema}.{table} not found in the sources' database; "
                "run the site's migrations (sorl.thumbnail) first"
            )
        missing = {self.settings.key_column, "value"} - columns
        if missing:
            raise ConfigError(
                f"{where}: has no column {', '.join(sorted(missing))}: not sorl's key value store"
            )
        self.identifiers = {
            "table": f"{quote_identifier(schema)}.{quote_identifier(table)}",
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

    def owns(self, object_key: str) -> bool:
        return any(spec.owns(object_key) for spec in self.specs)

    async def forget(self, gone: Sequence[Gone]) -> None:
        """Remove deleted thumbnails' rows and their keys from their sources' lists."""
        ours = [entry for entry in gone if self.owns(entry.object_key)]
        if not ours:
            return
        thumbnails = sorted({self.image_key(entry.object_key) for entry in ours})
        known = sorted({self._key("thumbnails", self.image_key(e.source_key)) for e in ours if e.source_key})
        unknown = any(entry.source_key is None for entry in ours)
        lists_like = self._key("thumbnails", "%")
        statements: list[tuple[str, tuple[Any, ...]]] = [
            (
                self.db.q("sorl_delete_keys", **self.identifiers),
                ([self._key("image", key) for key in thumbnails],),
            ),
        ]
        for sources in ([known] if known else []) + ([None] if unknown else []):
            statements.append(
                (self.db.q("sorl_remove_thumbnails", **self.identifiers), (sources, thumbnails, lists_like))
            )
            statements.append((self.db.q("sorl_drop_empty_lists", **self.identifiers), (sources, lists_like)))
        await self.db.transaction("removing sorl-thumbnail's key value rows", statements)

    async def known_sizes(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        """The sizes sorl recorded for these thumbnails (``adopt``: nothing is read)."""
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


class LibraryMetadata:
    """Every library's metadata a config's presets need (none for most)."""

    def __init__(self, stores: Sequence[SorlKeyValueStore]) -> None:
        self.stores = list(stores)

    @classmethod
    async def checked(
        cls, db: Database, django: DjangoConfig, specs: Sequence[RenditionSpec]
    ) -> LibraryMetadata:
        """What these renditions' libraries keep, its tables checked in the catalog."""
        stores = []
        if any(isinstance(spec.preset, SorlRendition) for spec in specs):
            stores.append(SorlKeyValueStore(db, django.sorl, specs))
        for store in stores:
            await store.check()
        return cls(stores)

    async def record(self, written: Sequence[Written]) -> None:
        for store in self.stores:
            await store.record(written)

    async def forget(self, gone: Sequence[Gone]) -> None:
        for store in self.stores:
            await store.forget(gone)

    async def known_sizes(self, names: Sequence[str]) -> dict[str, tuple[int, int]]:
        sizes: dict[str, tuple[int, int]] = {}
        for store in self.stores:
            sizes.update(await store.known_sizes(names))
        return sizes
