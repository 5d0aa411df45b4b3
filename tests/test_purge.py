"""Purges end to end: real Postgres, a local directory and moto's S3 over HTTP; each safety rule."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import aioboto3
import anyio
import pytest

from batchthumb.config import Config
from batchthumb.errors import PurgeRefused, StoreError
from batchthumb.purge import parse_duration
from batchthumb.runtime import open_runtime
from batchthumb.stores import DeleteResult, LocalStore
from tests.helpers import (
    S3_CREDENTIALS,
    SOURCES,
    FailingListing,
    create_photo_table,
    files,
    generate,
    make_config,
    purge,
    registry_rows,
    runs,
    s3_keys,
    s3_store_settings,
    source_files,
    sql,
    write_sources,
)

pytestmark = pytest.mark.anyio

DAY_S = 86400


@pytest.fixture
async def generated(pg_dsn: str, tmp_path: Path) -> tuple[Config, Path]:
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    config = make_config(pg_dsn, media, out)
    counters, _, _ = await generate(config)
    assert counters.written == 12
    return config, out


async def test_purge_referenced_by_rendition_keys_and_unconfigured(
    generated: tuple[Config, Path], pg_dsn: str
) -> None:
    config, out = generated
    before = await registry_rows(pg_dsn)

    counters, _, requests = await purge(config, kind="referenced", renditions=("thumb",))
    assert (counters.planned, counters.deleted, counters.rows_removed, counters.failed) == (4, 4, 4, 0)
    assert requests == {"delete": 1}
    after = await registry_rows(pg_dsn)
    assert {key[1] for key in after} == {"medium", "wide"}
    assert all(not (out / before[key]["object_key"]).exists() for key in before if key[1] == "thumb")
    assert all((out / row["object_key"]).exists() for row in after.values())

    counters, _, _ = await purge(config, kind="referenced", source_keys=("images/portrait.png",))
    assert counters.deleted == 2
    assert {k for k in await registry_rows(pg_dsn) if k[0] == "images/portrait.png"} == set()

    # 'wide' dropped from the config: --unconfigured selects exactly its renditions
    renditions = {n: s.model_dump() for n, s in config.renditions.items() if n != "wide"}
    reduced = make_config(pg_dsn, config.stores.source.url, config.stores.target.url, renditions)
    counters, _, _ = await purge(reduced, kind="referenced", unconfigured=True)
    assert counters.deleted == 3
    assert {key[1] for key in await registry_rows(pg_dsn)} == {"medium"}
    assert len(files(out)) == 3


async def test_dry_run_lists_exactly_what_the_real_run_deletes(
    generated: tuple[Config, Path], pg_dsn: str
) -> None:
    config, out = generated
    present = files(out)
    counters, lines, requests = await purge(config, kind="referenced", dry_run=True)
    assert counters.planned == 12
    assert counters.deleted == 0
    assert requests == {}
    assert files(out) == present
    assert len(await registry_rows(pg_dsn)) == 12
    would = {line.split()[2] for line in lines if line.startswith("would delete")}
    assert len(would) == 12
    sizes = [line for line in lines if line.startswith("would delete") and line.endswith(" bytes)")]
    assert len(sizes) == 12  # --verbose: one line per object with its size

    counters, lines, _ = await purge(config, kind="referenced")
    deleted = {line.split()[1] for line in lines if line.startswith("deleted ")}
    assert deleted == would
    assert counters.bytes_deleted == counters.planned_bytes > 0
    assert files(out) == set()
    assert not any(out.iterdir())  # directories left empty are removed


async def test_max_delete_stops_before_deleting_anything(generated: tuple[Config, Path], pg_dsn: str) -> None:
    config, out = generated
    present = files(out)
    with pytest.raises(PurgeRefused, match="would delete 12 objects, more than --max-delete 11"):
        await purge(config, kind="referenced", max_delete=11)
    assert files(out) == present
    assert len(await registry_rows(pg_dsn)) == 12
    counters, _, _ = await purge(config, kind="referenced", max_delete=12)
    assert counters.deleted == 12


async def test_orphan_rows_whose_source_row_is_gone(generated: tuple[Config, Path], pg_dsn: str) -> None:
    config, out = generated
    await sql(pg_dsn, "DELETE FROM gallery_photo WHERE image = 'images/square.webp'")
    before = await registry_rows(pg_dsn)
    counters, _, _ = await purge(config, kind="orphans")
    assert (counters.planned, counters.deleted, counters.rows_removed) == (3, 3, 3)
    after = await registry_rows(pg_dsn)
    assert {key[0] for key in after} == {k for k, _ in SOURCES} - {"images/square.webp"}
    assert all(not (out / row["object_key"]).exists() for key, row in before.items() if key not in after)
    # the listing ran before any delete: all 12 objects were listed, all still referenced
    assert (counters.listed, counters.referenced, counters.too_young) == (12, 12, 0)


async def test_orphan_sweep_respects_the_grace_and_never_deletes_referenced(
    generated: tuple[Config, Path], pg_dsn: str
) -> None:
    config, out = generated
    rows = await registry_rows(pg_dsn)
    referenced_old = out / next(iter(rows.values()))["object_key"]
    old_time = time.time() - 3 * DAY_S
    os.utime(referenced_old, (old_time, old_time))
    orphan_old = out / "photos/gone/abc/x.jpg.webp"
    orphan_young = out / "photos/failed-upload.jpg"
    for path in (orphan_old, orphan_young):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"left behind")
    os.utime(orphan_old, (old_time, old_time))

    counters, _, _ = await purge(config, kind="orphans")
    assert (counters.listed, counters.referenced, counters.too_young) == (14, 12, 1)
    assert (counters.planned, counters.deleted, counters.rows_removed) == (1, 1, 0)
    assert not orphan_old.exists()
    assert orphan_young.exists()
    assert referenced_old.exists()  # referenced: never deleted, whatever its age

    counters, _, _ = await purge(config, kind="orphans", older_than_s=0)
    assert counters.deleted == 1
    assert not orphan_young.exists()
    assert referenced_old.exists()
    assert len(files(out)) == 12


async def test_a_failed_listing_page_deletes_nothing(generated: tuple[Config, Path], pg_dsn: str) -> None:
    config, out = generated
    await sql(pg_dsn, "DELETE FROM gallery_photo WHERE image = 'images/square.webp'")  # 3 row orphans
    old = out / "stray/old.jpg"
    old.parent.mkdir(parents=True)
    old.write_bytes(b"x")
    os.utime(old, (time.time() - 3 * DAY_S,) * 2)
    present = files(out)
    store = FailingListing(config.stores.target.location, page_size=5)
    with pytest.raises(StoreError, match="listing .* failed, so nothing was deleted"):
        await purge(config, target_store=store, kind="orphans")
    assert files(out) == present
    assert len(await registry_rows(pg_dsn)) == 12
    assert store.requests.get("delete", 0) == 0


class PartlyRefusingDeletes(LocalStore):
    """Answers like DeleteObjects with per-key errors for keys containing 'medium'."""

    async def delete_many(self, keys: Any) -> DeleteResult:
        refused = {key: "AccessDenied Access Denied" for key in keys if "/medium/" in key}
        result = await super().delete_many([key for key in keys if key not in refused])
        result.errors.update(refused)
        return result


async def test_per_key_delete_errors_are_failures_and_keep_their_rows(
    generated: tuple[Config, Path], pg_dsn: str
) -> None:
    config, out = generated
    store = PartlyRefusingDeletes(config.stores.target.location)
    counters, lines, _ = await purge(config, target_store=store, kind="referenced")
    assert (counters.deleted, counters.failed, counters.rows_removed) == (8, 4, 8)
    assert sum("AccessDenied" in line for line in lines) == 4
    rows = await registry_rows(pg_dsn)
    assert {key[1] for key in rows} == {"medium"}
    assert all((out / row["object_key"]).exists() for row in rows.values())


class DeletesDown(LocalStore):
    async def delete_many(self, keys: Any) -> DeleteResult:
        raise StoreError("DeleteObjects s3://bucket/renditions/: SlowDown after 5 attempts")


async def test_objects_first_rows_after(generated: tuple[Config, Path], pg_dsn: str) -> None:
    config, _ = generated
    store = DeletesDown(config.stores.target.location)
    with pytest.raises(StoreError, match="SlowDown after 5 attempts"):
        await purge(config, target_store=store, kind="referenced")
    assert len(await registry_rows(pg_dsn)) == 12  # no row removed for an object still there
    assert (await runs(pg_dsn))[-1] == ("purge referenced", "failed")


async def test_clear_forgets_rows_and_touches_no_object(generated: tuple[Config, Path], pg_dsn: str) -> None:
    config, out = generated
    present = files(out)
    async with open_runtime(config) as runtime:
        assert await runtime.registry.clear(runtime.target_url, ["photos"], ["thumb"], dry_run=True) == 4
        assert len(await registry_rows(pg_dsn)) == 12
        assert await runtime.registry.clear(runtime.target_url, ["photos"], ["thumb"], dry_run=False) == 4
        assert await runtime.registry.clear(runtime.target_url, [], [], dry_run=False) == 8
    assert await registry_rows(pg_dsn) == {}
    assert files(out) == present
    # and generate, trusting the registry, writes them again
    counters, _, _ = await generate(config)
    assert counters.written == 12


async def test_purge_prefix_on_s3(pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str) -> None:
    for key, data in source_files():
        s3_client.put_object(Bucket=bucket, Key=f"media/{key}", Body=data)
    s3_client.put_object(Bucket=bucket, Key="renditions/left-by-another-tool.jpg", Body=b"x")
    s3_client.put_object(Bucket=bucket, Key="renditions-archive/keep.jpg", Body=b"x")
    await create_photo_table(pg_dsn, [key for key, _ in SOURCES])
    config = make_config(
        pg_dsn,
        s3_store_settings(s3_endpoint, f"s3://{bucket}/media/"),
        s3_store_settings(s3_endpoint, f"s3://{bucket}/renditions/"),
    )
    await generate(config)
    assert len(s3_keys(s3_client, bucket, "renditions/")) == 13

    counters, lines, _ = await purge(config, kind="prefix", dry_run=True)
    assert (counters.listed, counters.planned, counters.deleted) == (13, 13, 0)
    assert sum(line.startswith(f"would delete s3://{bucket}/renditions/") for line in lines) == 13
    assert len(s3_keys(s3_client, bucket, "renditions/")) == 13

    counters, _, requests = await purge(config, kind="prefix")
    assert (counters.deleted, counters.rows_removed, counters.failed) == (13, 12, 0)
    assert requests == {"ListObjectsV2": 1, "DeleteObjects": 1}
    assert s3_keys(s3_client, bucket, "renditions/") == {}
    assert await registry_rows(pg_dsn) == {}
    # nothing outside the prefix: not the sources, not a sibling prefix that shares its first letters
    assert len(s3_keys(s3_client, bucket, "media/")) == len(SOURCES)
    assert list(s3_keys(s3_client, bucket, "renditions-archive/")) == ["renditions-archive/keep.jpg"]


async def test_5000_objects_take_at_most_5_delete_requests(
    pg_dsn: str, s3_endpoint: str, bucket: str, tmp_path: Path, s3_client: Any
) -> None:
    session = aioboto3.Session(region_name="us-east-1", **S3_CREDENTIALS)
    limiter = anyio.CapacityLimiter(32)
    async with session.client("s3", endpoint_url=s3_endpoint) as client:

        async def put(index: int) -> None:
            async with limiter:
                await client.put_object(Bucket=bucket, Key=f"cache/obj-{index:05d}.webp", Body=b"tiny")

        async with anyio.create_task_group() as tg:
            for index in range(5000):
                tg.start_soon(put, index)
    await create_photo_table(pg_dsn, [])
    config = make_config(pg_dsn, tmp_path / "media", s3_store_settings(s3_endpoint, f"s3://{bucket}/cache/"))
    counters, _, requests = await purge(config, kind="prefix")
    assert counters.deleted == 5000
    assert requests["DeleteObjects"] <= 5
    assert requests["ListObjectsV2"] == 5
    assert s3_keys(s3_client, bucket, "cache/") == {}


def test_durations() -> None:
    assert parse_duration("24h") == DAY_S
    assert parse_duration("90s") == 90
    assert parse_duration("7d") == 7 * DAY_S
    assert parse_duration("2") == 7200
    from batchthumb.errors import UsageError

    with pytest.raises(UsageError, match="--older-than 'soon'"):
        parse_duration("soon")


async def test_orphan_sweep_on_s3(pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str) -> None:
    for key, data in source_files():
        s3_client.put_object(Bucket=bucket, Key=f"media/{key}", Body=data)
    await create_photo_table(pg_dsn, [key for key, _ in SOURCES])
    config = make_config(
        pg_dsn,
        s3_store_settings(s3_endpoint, f"s3://{bucket}/media/"),
        s3_store_settings(s3_endpoint, f"s3://{bucket}/renditions/"),
    )
    await generate(config)
    for name in ("interrupted-upload.webp", "old-config/thumb/x.jpg"):
        s3_client.put_object(Bucket=bucket, Key=f"renditions/{name}", Body=b"orphan")

    # moto stamps objects "now": within the default 24h grace nothing unreferenced goes
    counters, _, requests = await purge(config, kind="orphans")
    assert (counters.listed, counters.referenced, counters.too_young, counters.deleted) == (14, 12, 2, 0)
    assert "DeleteObjects" not in requests
    assert requests["ListObjectsV2"] == 1

    counters, lines, requests = await purge(config, kind="orphans", older_than_s=0)
    assert (counters.deleted, counters.rows_removed) == (2, 0)
    assert sorted(line.split()[1] for line in lines if line.startswith("deleted ")) == [
        f"s3://{bucket}/renditions/interrupted-upload.webp",
        f"s3://{bucket}/renditions/old-config/thumb/x.jpg",
    ]
    assert requests["DeleteObjects"] == 1
    remaining = s3_keys(s3_client, bucket, "renditions/")
    assert set(remaining) == {
        f"renditions/{row['object_key']}" for row in (await registry_rows(pg_dsn)).values()
    }
    assert len(s3_keys(s3_client, bucket, "media/")) == len(SOURCES)


class DeletesThenDies(LocalStore):
    """Deletes its objects, then the run is cancelled before their rows go: a crash between."""

    def __init__(self, *args: Any, die: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.die = die

    async def delete_many(self, keys: Any) -> DeleteResult:
        result = await super().delete_many(keys)
        self.die()
        await anyio.sleep(1)  # the cancellation lands here, before the rows are removed
        return result


async def test_a_purge_stopped_between_objects_and_rows_leaves_no_trusted_row_pointing_at_nothing(
    generated: tuple[Config, Path], pg_dsn: str
) -> None:
    config, out = generated
    scope = anyio.CancelScope()
    store = DeletesThenDies(config.stores.target.location, die=scope.cancel)
    with scope:
        await purge(config, target_store=store, kind="referenced", renditions=("thumb",))
    assert scope.cancelled_caught
    rows = await sql(pg_dsn, "SELECT * FROM batchthumb.renditions")
    marked = [row for row in rows if row["deleting_since"] is not None]
    assert len(marked) == 4  # the thumbs: their objects are gone, their rows still there
    assert all(not (out / row["object_key"]).exists() for row in marked)
    assert all((out / row["object_key"]).exists() for row in rows if row["deleting_since"] is None)
    # no run trusts them: generate plans them as missing and puts their objects back
    counters, _, _ = await generate(config)
    assert counters.written == 4
    rows = await sql(pg_dsn, "SELECT * FROM batchthumb.renditions")
    assert all(row["deleting_since"] is None and (out / row["object_key"]).exists() for row in rows)


async def test_missing_sources_take_only_the_renditions_of_files_that_are_gone(
    generated: tuple[Config, Path], pg_dsn: str, tmp_path: Path
) -> None:
    config, out = generated
    media = tmp_path / "media"
    (media / "images/square.webp").unlink()  # the file is gone, its row is still there
    before = await registry_rows(pg_dsn)

    counters, _, _ = await purge(config, kind="orphans")
    assert counters.planned == 0  # without the flag, a row with its source row is never an orphan

    counters, _, requests = await purge(config, kind="orphans", missing_sources=True, dry_run=True)
    assert (counters.sources_listed, counters.sources_missing, counters.planned) == (3, 1, 3)
    assert requests == {"list": 1}  # the target's sweep; the sources were listed on their own store
    counters, _, _ = await purge(config, kind="orphans", missing_sources=True)
    assert (counters.deleted, counters.rows_removed, counters.failed) == (3, 3, 0)
    after = await registry_rows(pg_dsn)
    assert set(before) - set(after) == {("images/square.webp", name) for name in ("thumb", "medium", "wide")}
    assert all(not (out / before[key]["object_key"]).exists() for key in set(before) - set(after))
    assert all((out / row["object_key"]).exists() for row in after.values())
    # the user's rows are left alone
    assert len(await sql(pg_dsn, "SELECT 1 FROM gallery_photo")) == len(SOURCES)

    # a source set's listing_prefix bounds what is judged: keys outside it are never missing
    narrowed = make_config(pg_dsn, media, out, listing_prefix="elsewhere/")
    (media / "elsewhere").mkdir()
    (media / "elsewhere/unrelated.jpg").write_bytes(b"x")
    counters, _, _ = await purge(narrowed, kind="orphans", missing_sources=True)
    assert (counters.sources_missing, counters.deleted) == (0, 0)


async def test_missing_sources_refuse_an_empty_listing(generated: tuple[Config, Path], pg_dsn: str) -> None:
    config, out = generated
    present = files(out)
    empty = make_config(
        pg_dsn, config.stores.source.url, config.stores.target.url, listing_prefix="nothing-here/"
    )
    with pytest.raises(PurgeRefused, match="found no object at all"):
        await purge(empty, kind="orphans", missing_sources=True)
    assert files(out) == present
    assert len(await registry_rows(pg_dsn)) == 12
