"""What the Django libraries keep besides the file, for the jobs: every library's store of
rows a config's renditions need, written, forgotten and read as one.

Each library's rows are its module's (``batchthumb/django/<library>.py``, ``Library.metadata``);
the shape they share, and what they are given, is :mod:`batchthumb.django.base`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from batchthumb.caches import SiteCache
from batchthumb.config import DjangoConfig
from batchthumb.database import Database
from batchthumb.django import LIBRARIES, Library
from batchthumb.django.base import DeleteNotes, Gone, LibraryStore, NameClaims, Written
from batchthumb.specs import RenditionSpec
from batchthumb.stores import Store

__all__ = ["Gone", "LibraryMetadata", "LibraryStore", "Written"]


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
        caches: Mapping[str, SiteCache] | None = None,
    ) -> LibraryMetadata:
        """What these renditions' libraries keep, its tables checked in the catalog (``target``:
        the storage root, where a library looks at the files themselves; ``caches``: by library, the
        site's shared cache it reads its rows through: sorl's ``cached_db``, Wagtail's renditions)."""
        order = list(LIBRARIES.values())
        owners: list[Library] = sorted(
            {id(spec.library): spec.library for spec in specs if spec.library is not None}.values(),
            key=order.index,
        )
        stores = [
            store
            for owner in owners
            if (store := owner.metadata(db, django, specs, target, (caches or {}).get(owner.name)))
            is not None
        ]
        for store in stores:
            await store.check()
        return cls(stores)

    async def claim(self, wanted: Sequence[Written]) -> list[str]:
        """The names to write these renditions under (a library's rows may hold the first choice)."""
        names = [entry.object_key for entry in wanted]
        for store in self.stores:
            if isinstance(store, NameClaims):
                claimed = await store.claim(
                    [replace(entry, object_key=name) for entry, name in zip(wanted, names, strict=True)]
                )
                names = list(claimed)
        return names

    async def record(self, written: Sequence[Written]) -> dict[str, str]:
        """Every library's rows; the names whose rows the site had written first (ours → the
        site's name), whose objects are not needed."""
        lost: dict[str, str] = {}
        for store in self.stores:
            lost |= await store.record(written) or {}
        return lost

    def after_deletes(self) -> list[str]:
        """What the summary says of the library rows a run deleted (a cache that may serve them)."""
        return [
            note for store in self.stores if isinstance(store, DeleteNotes) if (note := store.after_deletes())
        ]

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
