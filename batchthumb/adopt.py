"""``adopt``: record the renditions a Django library already made, so ``generate`` skips them.

- **list** the presets' namespaces page by page (one request per 1000 objects, no HEAD
  per object) into a table on the registry's connection, keeping only names of the
  presets' patterns;
- **match** the source set's missing renditions, a keyset page at a time, against it:
  the name each library computes for a source is looked up in one query per page;
- **record** what is there as done, with the listed size (its pixel size unknown: 0×0).

Nothing is written to the store and no source is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio

from batchthumb import fingerprints
from batchthumb.counters import AdoptCounters
from batchthumb.errors import ConfigError, StoreError
from batchthumb.generate import PreparedSet, prepare
from batchthumb.lifecycle import Job, options_arguments
from batchthumb.metadata import LibraryMetadata
from batchthumb.registry import RecordRow, WorkTables
from batchthumb.report import Reporter
from batchthumb.runtime import Runtime
from batchthumb.shards import WHOLE, Shard
from batchthumb.specs import RenditionSpec, listing_prefixes


@dataclass(frozen=True)
class AdoptOptions:
    source_sets: tuple[str, ...] = ()
    """Only these source sets (all when empty)."""
    renditions: tuple[str, ...] = ()
    """Only these renditions (all the set's when empty)."""
    dry_run: bool = False
    shard: Shard = WHOLE
    wait: bool = False
    """Wait for the run lock instead of exiting when another run holds it."""


class AdoptJob(Job[AdoptCounters]):
    """Match the listing of the presets' namespaces with the sources' missing renditions."""

    command = "adopt"

    def __init__(
        self, runtime: Runtime, options: AdoptOptions, reporter: Reporter, *, stop: anyio.Event | None = None
    ) -> None:
        super().__init__(
            runtime, reporter, dry_run=options.dry_run, shard=options.shard, wait=options.wait, stop=stop
        )
        self.counters = AdoptCounters()
        self.options = options
        self.metadata = LibraryMetadata([])
        self.prepared: list[PreparedSet] = []
        self.target_url = runtime.target_url

    def lock_key(self) -> str:
        # adopting records renditions as generate does: the same lock as generate's
        sets = ",".join(sorted(entry.config.name for entry in self.prepared))
        return f"generate {self.target_url} {sets} shard {self.shard}"

    def arguments(self) -> dict[str, Any]:
        return options_arguments(self.options)

    async def check(self) -> None:
        await super().check()
        if not self.runtime.config.drop_in:
            raise ConfigError("adopt records what a Django library made: it needs preset renditions")
        self.prepared = await prepare(self.runtime, self.options.source_sets, self.options.renditions)
        specs = [spec for entry in self.prepared for spec in entry.specs.values()]
        config = self.runtime.config
        self.metadata = await LibraryMetadata.checked(
            self.runtime.sources.db, config.django, specs, self.runtime.target_store
        )

    async def run(self) -> None:
        # what is adopted is recorded with its file's fingerprint, as generate would record it
        await fingerprints.refresh(
            self.runtime, [entry.config for entry in self.prepared], self.shard, self.reporter
        )
        self.reporter.start(f"adopt{' (dry run)' if self.dry_run else ''}")
        async with self.runtime.registry.work_tables() as listing:
            await self.list_namespaces(listing)
            for entry in self.prepared:
                await self.match(entry, listing)

    async def list_namespaces(self, listing: WorkTables) -> None:
        """Every name of a preset's pattern under the presets' namespaces, into ``listing``."""
        specs = [spec for entry in self.prepared for spec in entry.specs.values()]
        store = self.runtime.target_store
        try:
            for prefix in listing_prefixes(specs):
                async for page in store.list_pages(prefix):
                    self.counters.listed += len(page)
                    await listing.add_listed([info for info in page if any(s.owns(info.key) for s in specs)])
        except StoreError as error:
            raise StoreError(
                f"listing {self.target_url} failed, so nothing was adopted: {error.message}"
            ) from error

    async def match(self, entry: PreparedSet, listing: WorkTables) -> None:
        """The set's missing renditions, page by page, looked up in the listing; found ones recorded."""
        pages = self.runtime.sources.plan(
            entry.config.name,
            entry.identifiers,
            entry.spec_hashes,
            ("missing",),
            self.target_url,
            self.runtime.config.limits.page_size,
            retry_failed=True,
            shard=self.shard,
        )
        async for page in pages:
            wanted: dict[str, tuple[Any, RenditionSpec]] = {}
            for item in page:
                self.counters.sources += 1
                for name in item.renditions:
                    spec = entry.specs[name]
                    for object_key in spec.candidate_keys(item.source_set, item.source_key, item.ppoi):
                        wanted[object_key] = (item, spec)
            found = await listing.sizes(list(wanted))
            adoptable = await self.metadata.adoptable([(key, wanted[key][0].source_key) for key in found])
            rows: dict[tuple[str, str], RecordRow] = {}
            for object_key, (item, spec) in wanted.items():  # a source's candidates in the library's order
                size = found.get(object_key)
                if size is None or (item.source_key, spec.name) in rows:
                    continue
                if object_key not in adoptable:
                    self.reporter.detail(
                        f"left {item.source_set}/{spec.name} {object_key} to generate: "
                        "its library counts it stale (its rows are missing or older than the source's)"
                    )
                    continue
                width, height = adoptable[object_key]  # (0, 0): unknown; nothing is read
                rows[(item.source_key, spec.name)] = RecordRow(
                    item.source_set,
                    item.source_key,
                    spec.name,
                    spec.spec_hash,
                    item.fingerprint_for(spec.crops_about_focal),
                    self.target_url,
                    object_key,
                    width,
                    height,
                    size,
                )
                verb = "would adopt" if self.dry_run else "adopted"
                self.reporter.detail(f"{verb} {item.source_set}/{spec.name} {object_key}")
            self.counters.missing += sum(len(item.renditions) for item in page)
            self.counters.adopted += len(rows)
            if rows and not self.dry_run:
                await self.runtime.registry.record(list(rows.values()))
            self.reporter.advance(len(page))
