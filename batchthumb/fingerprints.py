"""Object fingerprints: a source set's files as one listing of its prefix sees them.

A source set with ``object_fingerprint = true`` takes each source's fingerprint from the
stored file (its size and ETag on S3, its size and modification time on disk), so an image
replaced in place under the same name makes its renditions stale, with no column in the
table to say so. Each ``generate``, ``regenerate`` and ``adopt`` lists the set's
``listing_prefix`` once (one request per 1000 objects, never a HEAD per source) into a work
table and merges it into the registry's ``source_objects`` in SQL; planning reads the
fingerprints from there. A failed listing page stops the run before anything is planned.
"""

from __future__ import annotations

from batchthumb.config import SourceSetConfig
from batchthumb.report import Reporter
from batchthumb.runtime import Runtime
from batchthumb.shards import Shard


async def refresh(
    runtime: Runtime, source_sets: list[SourceSetConfig], shard: Shard, reporter: Reporter
) -> int:
    """List the prefix of each set with ``object_fingerprint`` and merge it; the objects listed."""
    store, db = runtime.source_store, runtime.registry.db
    listed = 0
    for source_set in source_sets:
        if not source_set.object_fingerprint:
            continue
        prefix = source_set.listing_prefix
        where = f"{store.location.url}{prefix}"
        async with runtime.registry.work_tables() as tables:
            consequence = f"so {source_set.name}'s fingerprints are unknown and nothing was planned"
            listed += await tables.load_listing(store, prefix, consequence)
            merged = await tables.fetchrow(
                "merging the files' fingerprints",
                db.q("source_objects_merge"),
                source_set.name,
                prefix,
                shard.count,
                shard.index,
            )
        reporter.detail(
            f"{source_set.name}: listed {where}: {merged['changed']:,} files new or replaced, "
            f"{merged['gone']:,} gone since the last listing"
        )
    return listed
