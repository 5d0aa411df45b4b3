"""generate / regenerate end to end: real Postgres, a local directory, moto's S3 over HTTP."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import pytest
import pyvips

from batchthumb.config import Config, config_from_dict
from batchthumb.errors import ConfigError, IdentifierError, RegistryError, StoreError
from batchthumb.registry import Registry
from batchthumb.render import render
from batchthumb.samples import sample_bytes
from batchthumb.stores import LocalStore
from tests.helpers import (
    SOURCES,
    UPRIGHT,
    create_photo_table,
    generate,
    make_config,
    registry_rows,
    runs,
    s3_keys,
    s3_store_settings,
    source_files,
    sql,
    with_renditions,
    write_sources,
)

pytestmark = pytest.mark.anyio


def expected_fit(width: int, height: int, box: int) -> tuple[int, int]:
    scale = min(box / width, box / height, 1.0)
    return round(width * scale), round(height * scale)


@pytest.fixture
async def local_setup(pg_dsn: str, tmp_path: Path) -> tuple[Config, Path]:
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    config = make_config(pg_dsn, media, out)
    return config, out


async def test_backfill_into_a_local_directory(local_setup: tuple[Config, Path], pg_dsn: str) -> None:
    config, out = local_setup
    counters, source_requests, target_requests = await generate(config)
    assert (counters.sources, counters.written, counters.failed) == (4, 12, 0)
    assert source_requests == {"get": 4, "stat": 4}  # each source fetched once, checked once after
    assert target_requests == {"put": 12}
    rows = await registry_rows(pg_dsn)
    assert len(rows) == 12
    for (source_key, rendition), row in rows.items():
        path = out / row["object_key"]
        image = pyvips.Image.new_from_file(str(path))
        assert (image.width, image.height) == (row["width"], row["height"])
        assert row["bytes"] == path.stat().st_size
        assert row["target"] == f"file://{out}/"
        width, height = UPRIGHT[source_key]
        if rendition == "medium":
            assert (image.width, image.height) == expected_fit(width, height, 400)
            assert image.get("vips-loader").startswith("jpeg")
        elif rendition == "thumb":
            assert (image.width, image.height) == (120, 120)
            assert image.get("vips-loader").startswith("webp")
        else:
            assert (image.width, image.height) == (320, 180)
            assert image.get("vips-loader").startswith("png")
    # the EXIF-rotated source came out upright (portrait)
    rotated = rows[("images/rotated.jpg", "medium")]
    assert (rotated["width"], rotated["height"]) == (200, 400)


async def test_second_run_writes_nothing_and_sends_no_request(local_setup: tuple[Config, Path]) -> None:
    config, _ = local_setup
    await generate(config)
    counters, source_requests, target_requests = await generate(config)
    assert (counters.sources, counters.written, counters.skipped) == (0, 0, 12)
    assert source_requests == {}
    assert target_requests == {}


async def test_dry_run_changes_nothing(local_setup: tuple[Config, Path], pg_dsn: str) -> None:
    config, out = local_setup
    counters, source_requests, target_requests = await generate(config, dry_run=True)
    assert (counters.sources, counters.written) == (4, 12)  # what it would write
    assert source_requests == target_requests == {}
    assert not out.exists() or not any(out.rglob("*"))
    assert await registry_rows(pg_dsn) == {}


async def test_size_change_regenerates_exactly_that_rendition(
    local_setup: tuple[Config, Path], pg_dsn: str
) -> None:
    config, out = local_setup
    await generate(config)
    before = await registry_rows(pg_dsn)
    files_before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    changed = with_renditions(config, thumb={"width": 90, "height": 90})

    # generate leaves stale renditions to regenerate
    counters, _, target_requests = await generate(changed)
    assert (counters.written, target_requests) == (0, {})

    dry, _, dry_requests = await generate(changed, command="regenerate", dry_run=True)
    assert (dry.written, dry.stale, dry_requests) == (4, 4, {})

    counters, source_requests, target_requests = await generate(changed, command="regenerate")
    assert (counters.written, counters.stale, counters.deleted) == (4, 4, 4)
    assert counters.bytes_deleted == sum(r["bytes"] for k, r in before.items() if k[1] == "thumb")
    assert source_requests == {"get": 4, "stat": 4}
    assert target_requests == {"put": 4, "delete": 1}
    after = await registry_rows(pg_dsn)
    for key, row in after.items():
        if key[1] == "thumb":
            assert row["spec_hash"] != before[key]["spec_hash"]
            assert (row["width"], row["height"]) == (90, 90)
            assert (out / row["object_key"]).exists()
            assert not (out / before[key]["object_key"]).exists()  # superseded object deleted
        else:
            assert row["object_key"] == before[key]["object_key"]
            assert row["created_at"] == before[key]["created_at"]  # untouched
    untouched = {p: m for p, m in files_before.items() if "/thumb/" not in str(p)}
    assert all(p.stat().st_mtime_ns == m for p, m in untouched.items())
    assert len(untouched) == 8

    counters, _, target_requests = await generate(changed, command="regenerate")
    assert (counters.written, target_requests) == (0, {})


async def test_changed_fingerprint_rebuilds_that_source(
    local_setup: tuple[Config, Path], pg_dsn: str
) -> None:
    config, _ = local_setup
    await generate(config)
    await sql(pg_dsn, "UPDATE gallery_photo SET updated_at = now() WHERE image = 'images/square.webp'")
    counters, source_requests, _ = await generate(config, command="regenerate")
    assert (counters.sources, counters.written, counters.deleted) == (1, 3, 0)  # same keys: overwritten
    assert source_requests == {"get": 1, "stat": 1}
    rows = await registry_rows(pg_dsn)
    (current,) = await sql(
        pg_dsn, "SELECT updated_at::text FROM gallery_photo WHERE image = 'images/square.webp'"
    )
    fingerprints = {k[1]: r["fingerprint"] for k, r in rows.items() if k[0] == "images/square.webp"}
    assert fingerprints == dict.fromkeys(["thumb", "medium", "wide"], current[0])
    assert all(
        r["fingerprint"] == "2026-01-01 00:00:00+00" for k, r in rows.items() if k[0] != "images/square.webp"
    )


async def test_force_and_limit_and_rendition_filter(local_setup: tuple[Config, Path]) -> None:
    config, _ = local_setup
    counters, _, _ = await generate(config, limit=2, renditions=("thumb",))
    assert (counters.sources, counters.written) == (2, 2)
    counters, _, _ = await generate(config, renditions=("thumb",))
    assert (counters.sources, counters.written) == (2, 2)
    counters, _, _ = await generate(config, force=True, renditions=("thumb",))
    assert (counters.sources, counters.written) == (4, 4)
    with pytest.raises(ConfigError, match="no rendition named 'nope'"):
        await generate(config, renditions=("nope",))
    with pytest.raises(ConfigError, match="no source set named 'nope'"):
        await generate(config, source_sets=("nope",))


async def test_bad_and_missing_sources_are_failures_not_crashes(pg_dsn: str, tmp_path: Path) -> None:
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(
        media,
        [
            ("ok.jpg", sample_bytes(300, 200, "jpeg")),
            ("corrupt.jpg", sample_bytes(300, 200, "jpeg")[:500]),
            ("text.jpg", b"not an image at all"),
            ("empty.jpg", b""),
        ],
    )
    await create_photo_table(pg_dsn, [*keys, "missing.jpg", ""])
    config = make_config(pg_dsn, media, out)
    counters, _, _ = await generate(config)
    assert (counters.written, counters.failed) == (3, 4)
    failures = {r["source_key"]: r for r in await sql(pg_dsn, "SELECT * FROM batchthumb.failures")}
    assert set(failures) == {"corrupt.jpg", "text.jpg", "empty.jpg", "missing.jpg"}
    assert failures["missing.jpg"]["error_class"] == "ObjectNotFound"
    assert not failures["missing.jpg"]["permanent"]
    assert "unknown format" in failures["text.jpg"]["message"]
    assert "empty file" in failures["empty.jpg"]["message"]
    assert failures["corrupt.jpg"]["permanent"]

    # permanent failures are skipped until retried; a missing source is retried each run
    counters, source_requests, _ = await generate(config)
    assert (counters.sources, counters.failed) == (1, 1)
    assert source_requests == {"get": 1}  # missing: nothing recorded, nothing to check after
    (media / "missing.jpg").write_bytes(sample_bytes(200, 200, "jpeg"))
    counters, _, _ = await generate(config)
    assert (counters.written, counters.failed) == (3, 0)
    assert "missing.jpg" not in {
        r["source_key"] for r in await sql(pg_dsn, "SELECT * FROM batchthumb.failures")
    }
    counters, _, _ = await generate(config, retry_failed=True)
    assert counters.failed == 3
    attempts = await sql(pg_dsn, "SELECT attempts FROM batchthumb.failures WHERE source_key = 'text.jpg'")
    assert attempts[0][0] == 2


async def test_backfill_into_s3_over_http(pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str) -> None:
    for key, data in source_files():
        s3_client.put_object(Bucket=bucket, Key=f"media/{key}", Body=data)
    await create_photo_table(pg_dsn, [key for key, _ in SOURCES])
    source = s3_store_settings(s3_endpoint, f"s3://{bucket}/media/")
    target = s3_store_settings(s3_endpoint, f"s3://{bucket}/renditions/")
    config = make_config(pg_dsn, source, target)
    counters, source_requests, target_requests = await generate(config)
    assert (counters.written, counters.failed) == (12, 0)
    assert source_requests == {"GetObject": 4, "HeadObject": 4}
    assert target_requests == {"PutObject": 12}
    stored = s3_keys(s3_client, bucket, "renditions/")
    rows = await registry_rows(pg_dsn)
    assert set(stored) == {f"renditions/{row['object_key']}" for row in rows.values()}
    for row in rows.values():
        obj = s3_client.get_object(Bucket=bucket, Key=f"renditions/{row['object_key']}")
        data = obj["Body"].read()
        image = pyvips.Image.new_from_buffer(data, "")
        assert (image.width, image.height) == (row["width"], row["height"])
        expected_type = {"thumb": "image/webp", "medium": "image/jpeg", "wide": "image/png"}[row["rendition"]]
        assert obj["ContentType"] == expected_type

    # a second run sends no request to either store (counted on the wire by botocore's hook)
    counters, source_requests, target_requests = await generate(config)
    assert (counters.written, source_requests, target_requests) == (0, {}, {})

    # a size change rewrites exactly that rendition and deletes its superseded objects
    changed = with_renditions(config, medium={"width": 300})
    counters, _, target_requests = await generate(changed, command="regenerate")
    assert (counters.written, counters.deleted) == (4, 4)
    assert target_requests == {"PutObject": 4, "DeleteObjects": 1}
    after = s3_keys(s3_client, bucket, "renditions/")
    assert len(after) == 12
    assert set(after) - set(stored) == {
        f"renditions/{row['object_key']}"
        for row in (await registry_rows(pg_dsn)).values()
        if row["rendition"] == "medium"
    }
    assert s3_keys(s3_client, bucket, "media/").keys() == {f"media/{k}" for k, _ in SOURCES}


async def test_rendering_never_runs_on_the_event_loop(local_setup: tuple[Config, Path]) -> None:
    config, _ = local_setup
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def checking_render(data: bytes, specs: Any, max_pixels: int) -> Any:
        threads.append(threading.get_ident())
        return render(data, specs, max_pixels)

    await generate(config, render_function=checking_render)
    assert len(threads) == 4
    assert loop_thread not in threads


async def test_identifiers_are_checked_against_the_catalog(pg_dsn: str, tmp_path: Path) -> None:
    await create_photo_table(pg_dsn, ["a.jpg"])
    await sql(pg_dsn, "CREATE TABLE canary (x int)")
    attempts = [
        ({"table": "gallery_photo; DROP TABLE canary"}, "not a plain SQL identifier"),
        ({"table": 'gallery_photo" ; DROP TABLE canary; --'}, "not a plain SQL identifier"),
        ({"path_column": "image FROM canary; --"}, "not a plain SQL identifier"),
        ({"key_column": "id) OR (1=1"}, "not a plain SQL identifier"),
        ({"fingerprint_column": "updated_at::text; DROP TABLE canary"}, "not a plain SQL identifier"),
        ({"path_column": "nope"}, "'nope' is not a column of public.gallery_photo"),
        ({"table": "absent_table"}, "table public.absent_table does not exist"),
    ]
    for overrides, message in attempts:
        config = make_config(pg_dsn, tmp_path / "m", tmp_path / "o", **overrides)
        with pytest.raises(IdentifierError, match=message):
            await generate(config)
    assert await sql(pg_dsn, "SELECT count(*) FROM canary") == [(0,)]
    config = make_config(pg_dsn, tmp_path / "m", tmp_path / "o", filter="no_such_col > 1")
    with pytest.raises(ConfigError, match=r"sources\[0\] \(photos\): filter"):
        await generate(config)


async def test_filter_and_several_source_sets(pg_dsn: str, tmp_path: Path) -> None:
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(media, [(f"p/{i}.jpg", sample_bytes(100, 80, "jpeg", seed=i)) for i in range(6)])
    await create_photo_table(pg_dsn, keys)
    await create_photo_table(pg_dsn, keys[:2], table="profile")
    config = make_config(pg_dsn, media, out, filter="id % 2 = 0")
    data = config.model_dump(mode="python")
    data["database"]["dsn"] = pg_dsn
    data["sources"] = [
        *data["sources"],
        {
            **data["sources"][0],
            "name": "profiles",
            "table": "profile",
            "filter": None,
            "renditions": ["thumb"],
        },
    ]
    config = config_from_dict(data, environ={})
    counters, _, _ = await generate(config)
    assert (counters.sources, counters.written) == (3 + 2, 3 * 3 + 2)
    per_set = await sql(
        pg_dsn, "SELECT source_set, count(*) FROM batchthumb.renditions GROUP BY 1 ORDER BY 1"
    )
    assert [tuple(r) for r in per_set] == [("photos", 9), ("profiles", 2)]


async def test_init_is_idempotent_and_safe_concurrently(empty_pg_dsn: str, tmp_path: Path) -> None:
    config = make_config(empty_pg_dsn, tmp_path / "m", tmp_path / "o")
    results: list[tuple[int, int]] = []

    async def migrate() -> None:
        registry = await Registry.connect(config.database)
        try:
            results.append(await registry.migrate())
        finally:
            await registry.close()

    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(migrate)
    from batchthumb.queries import migrations

    latest = migrations()[-1][0]
    assert latest >= 2
    assert sorted(results) == [(0, latest), (latest, latest), (latest, latest), (latest, latest)]
    await migrate()
    assert results[-1] == (latest, latest)


async def test_a_registry_that_was_never_initialised_is_refused(empty_pg_dsn: str, tmp_path: Path) -> None:
    await create_photo_table(empty_pg_dsn, ["a.jpg"])
    config = make_config(empty_pg_dsn, tmp_path / "m", tmp_path / "o")
    with pytest.raises(RegistryError, match="run `batchthumb init`"):
        await generate(config)


async def test_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    config = make_config(
        "postgresql://app:hunter2-secret@127.0.0.1:1/app", f"file://{tmp_path}/m", f"file://{tmp_path}/o"
    )
    with pytest.raises(RegistryError) as error:
        await generate(config)
    assert error.value.message.startswith("cannot connect to postgresql://app:***@127.0.0.1:1/app")
    assert "hunter2" not in error.value.message


async def test_a_store_outage_stops_the_run_with_one_clear_error(
    local_setup: tuple[Config, Path], pg_dsn: str
) -> None:
    config, out = local_setup
    await generate(config)

    class BrokenDeletes(LocalStore):
        async def delete_many(self, keys: Any) -> Any:
            raise StoreError("DeleteObjects s3://bucket/x: ServiceUnavailable after 5 attempts")

    changed = with_renditions(config, thumb={"width": 60})
    target = BrokenDeletes(changed.stores.target.location)
    with pytest.raises(StoreError, match="ServiceUnavailable after 5 attempts"):
        await generate(changed, target_store=target, command="regenerate")
    # the replacements were recorded before the deletes were tried: nothing points at nothing
    rows = await registry_rows(pg_dsn)
    assert all((out / row["object_key"]).exists() for row in rows.values())
    assert (await runs(pg_dsn))[-1] == ("regenerate", "failed")


async def test_rendering_in_worker_processes(local_setup: tuple[Config, Path], pg_dsn: str) -> None:
    config, out = local_setup
    limits = config.limits.model_copy(update={"render_pool": "process", "render_workers": 2})
    config = config.model_copy(update={"limits": limits})
    counters, _, _ = await generate(config)
    assert (counters.written, counters.failed) == (12, 0)
    rows = await registry_rows(pg_dsn)
    for row in rows.values():
        image = pyvips.Image.new_from_file(str(out / row["object_key"]))
        assert (image.width, image.height) == (row["width"], row["height"])
    # a bad image fails in the worker and comes back as a per-item failure, not a broken pool
    (out.parent / "media" / "images" / "square.webp").write_bytes(b"RIFF....WEBPVP8 broken")
    await sql(pg_dsn, "UPDATE gallery_photo SET updated_at = now() WHERE image = 'images/square.webp'")
    counters, _, _ = await generate(config, command="regenerate")
    assert (counters.written, counters.failed) == (0, 1)
    (failure,) = await sql(pg_dsn, "SELECT error_class, permanent FROM batchthumb.failures")
    assert tuple(failure) == ("RenderError", True)
