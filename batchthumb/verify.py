"""``verify``: the registry against one listing of the target, and ``--repair``.

- **list** the target (a drop-in config: the presets' namespaces, names of their patterns)
  page by page into a work table on the registry's connection: one request per 1000
  objects, never a HEAD per object;
- **compare** in SQL: the registry rows whose object the listing lacks, or lists with
  another size than recorded (rows recorded after the listing began are left for the next
  verify: their objects may have been written behind the listing);
- **mark** them ``damaged``, so that the next ``generate`` rebuilds exactly those (rows
  marked before whose object is whole again are trusted again);
- **repair** (``--repair``): the generate pipeline over exactly the marked renditions, in
  the same run.

A failed listing page marks nothing: a partial listing would make every object after it
look missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import anyio

from batchthumb.counters import VerifyCounters
from batchthumb.errors import StoreError
from batchthumb.generate import GenerateJob, GenerateOptions, PreparedSet, prepare
from batchthumb.lifecycle import Job, options_arguments
from batchthumb.registry import WorkTables
from batchthumb.report import Reporter
from batchthumb.runtime import Runtime
from batchthumb.shards import WHOLE, Shard
from batchthumb.specs import listing_prefixes

SHOWN = 100
"""Findings printed one per line without ``--verbose``."""


@dataclass(frozen=True)
class VerifyOptions:
    source_sets: tuple[str, ...] = ()
    """Only these source sets' rows (all when empty)."""
    renditions: tuple[str, ...] = ()
    """Only these renditions' rows (all when empty)."""
    repair: bool = False
    """Rebuild what was found in the same run."""
    dry_run: bool = False
    shard: Shard = WHOLE
    """Only the rows whose source key hashes to this shard (the listing is the whole target)."""
    wait: bool = False


class VerifyJob(Job[VerifyCounters]):
    """List the target once, compare it with the registry in SQL, mark, and maybe repair."""

    command = "verify"

    def __init__(
        self, runtime: Runtime, options: VerifyOptions, reporter: Reporter, *, stop: anyio.Event | None = None
    ) -> None:
        super().__init__(
            runtime, reporter, dry_run=options.dry_run, shard=options.shard, wait=options.wait, stop=stop
        )
        self.options = options
        self.counters = VerifyCounters()
        self.target_url = runtime.target_url
        self.prepared: list[PreparedSet] = []
        self.repair: GenerateJob | None = None

    def lock_key(self) -> str:
        # verify marks what generate plans, and --repair writes as generate does: generate's lock
        sets = ",".join(sorted(entry.config.name for entry in self.prepared))
        return f"generate {self.target_url} {sets} shard {self.shard}"

    def arguments(self) -> dict[str, Any]:
        return options_arguments(self.options)

    async def check(self) -> None:
        await super().check()
        options = self.options
        self.prepared = await prepare(self.runtime, options.source_sets, options.renditions)
        if options.repair and not options.dry_run:
            self.repair = GenerateJob(
                self.runtime,
                GenerateOptions(
                    source_sets=options.source_sets,
                    renditions=options.renditions,
                    shard=options.shard,
                    repair=True,
                ),
                self.reporter,
                stop=self.stop,
            )
            await self.repair.check()

    async def run(self) -> None:
        db = self.runtime.registry.db
        # rows recorded from here on may have objects written behind the listing: not judged
        listing_began = await db.fetchval("reading the clock", db.q("database_now"))
        async with self.runtime.registry.work_tables() as tables:
            await self.list_target(tables)
            if self.stop.is_set():
                return
            await self.compare(tables, listing_began)
            await self.report(tables)
            if not self.dry_run:
                marked = await tables.fetchrow(
                    "marking damaged renditions", db.q("verify_mark"), self.target_url
                )
                self.counters.marked, self.counters.whole_again = marked["marked"], marked["trusted"]
        if self.repair is not None and self.counters.marked and not self.stop.is_set():
            self.repair.run_id = self.run_id  # its failures are this run's
            await self.repair.run()
            repaired = self.repair.counters
            self.counters.repaired = repaired.written
            self.counters.bytes_written = repaired.bytes_written
            self.counters.deleted += repaired.deleted
            for line in repaired.failures:
                self.counters.add_failure(line)
            self.counters.failed += repaired.failed - len(repaired.failures)

    # -- stages ----------------------------------------------------------------------

    async def list_target(self, tables: WorkTables) -> None:
        """Every object of the target (of the presets' patterns, at a storage root), into ``tables``."""
        specs = [spec for entry in self.prepared for spec in entry.specs.values()]
        drop_in = self.runtime.config.drop_in
        counters = self.counters
        self.reporter.start(f"verify: listing {self.target_url}")
        try:
            for prefix in listing_prefixes(specs):
                async for page in self.runtime.target_store.list_pages(prefix):
                    counters.listing_requests += 1
                    counters.listed += len(page)
                    if drop_in:
                        page = [info for info in page if any(spec.owns(info.key) for spec in specs)]
                    await tables.add_listed(page)
                    self.reporter.advance(len(page))
                    if self.stop.is_set():
                        return
        except StoreError as error:
            raise StoreError(
                f"listing {self.target_url} failed, so nothing was marked: {error.message}"
            ) from error
        await tables.listing_done()
        self.reporter.stop()
        self.reporter.detail(
            f"listed {counters.listed:,} objects under {self.target_url} "
            f"in {counters.listing_requests:,} listing requests"
        )

    async def compare(self, tables: WorkTables, listing_began: Any) -> None:
        """The registry rows anti-joined with the listing, in SQL: the findings into a work table."""
        db, options, shard = self.runtime.registry.db, self.options, self.shard
        await tables.execute("comparing", db.q("verify_found_create"))
        self.counters.checked = await tables.fetchval(
            "comparing the registry with the listing",
            db.q("verify_compare"),
            self.target_url,
            list(options.source_sets),
            list(options.renditions),
            listing_began,
            shard.count,
            shard.index,
        )
        counts = await tables.fetchrow("counting", db.q("verify_counts"), self.target_url)
        self.counters.missing = counts["missing"]
        self.counters.wrong_size = counts["wrong_size"]
        self.counters.whole_again = counts["whole_again"]
        self.counters.unreferenced = counts["unreferenced"]

    async def report(self, tables: WorkTables) -> None:
        """One line per rendition found missing or of the wrong size (past the first
        ``SHOWN``, with ``--verbose`` only)."""
        db = self.runtime.registry.db
        shown = 0
        async for row in tables.rows("reading the findings", db.q("verify_findings")):
            where = f"{row['source_set']}/{row['rendition']} {self.target_url}{row['object_key']}"
            if row["verdict"] == "missing":
                line = f"missing {where} (of {row['source_key']})"
            else:
                line = f"wrong size {where}: {row['listed_bytes']:,} bytes listed, {row['bytes']:,} recorded"
            shown += 1
            if shown <= SHOWN:
                self.reporter.info(line)
            else:
                self.reporter.detail(line)
        if shown > SHOWN and not self.reporter.verbose:
            self.reporter.info(f"... and {shown - SHOWN:,} more (--verbose lists every one)")
