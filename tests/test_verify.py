"""``verify``: one listing of the target against the registry, on a local directory and on S3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchthumb.config import Config
from batchthumb.errors import StoreError
from batchthumb.stores import LocalStore
from tests.helpers import (
    FailingListing,
    batchthumb,
    create_photo_table,
    generate,
    make_config,
    registry_rows,
    s3_store_settings,
    source_files,
    sql,
    verify,
    write_config,
    write_sources,
)

pytestmark = pytest.mark.anyio


async def setup_generated(pg_dsn: str, tmp_path: Path, target: Any) -> Config:
    """4 sources x 3 renditions generated: 12 objects, 12 rows."""
    media = tmp_path / "media"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    config = make_config(pg_dsn, media, target)
    counters, _, _ = await generate(config)
    assert counters.written == 12
    return config


async def damage(pg_dsn: str, delete: Any, truncate: Any) -> tuple[set[str], set[str]]:
    """Delete 5 objects by hand and truncate 2 others, as a person or a lifecycle rule would."""
    keys = sorted(row["object_key"] for row in (await registry_rows(pg_dsn)).values())
    deleted, truncated = set(keys[0:10:2]), {keys[1], keys[3]}
    for key in deleted:
        delete(key)
    for key in truncated:
        truncate(key)
    return deleted, truncated


def found(lines: list[str], verdict: str, target_url: str) -> set[str]:
    """The object keys verify reported as ``missing`` or ``wrong size``."""
    words = len(verdict.split()) + 1  # the verdict, then "set/rendition", then the URL
    return {
        line.split()[words].rstrip(":").removeprefix(target_url) for line in lines if line.startswith(verdict)
    }


async def test_verify_finds_exactly_what_was_deleted_or_truncated_on_disk(
    pg_dsn: str, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    config = await setup_generated(pg_dsn, tmp_path, out)
    location = config.stores.target.location
    deleted, truncated = await damage(
        pg_dsn,
        lambda key: (out / key).unlink(),
        lambda key: (out / key).write_bytes((out / key).read_bytes()[:100]),
    )

    # a dry run finds them and marks nothing
    counters, lines, _, _ = await verify(config, target_store=LocalStore(location, page_size=3), dry_run=True)
    assert (counters.missing, counters.wrong_size, counters.marked) == (5, 2, 0)
    again, _, _ = await generate(config, dry_run=True)
    assert again.written == 0

    store = LocalStore(location, page_size=3)
    counters, lines, source_requests, target_requests = await verify(config, target_store=store)
    assert (counters.checked, counters.listed) == (12, 7)
    assert (counters.missing, counters.wrong_size, counters.marked) == (5, 2, 7)
    assert found(lines, "missing", location.url) == deleted
    assert found(lines, "wrong size", location.url) == truncated
    # the whole cost: one listing request per page, nothing else on either store
    assert counters.listing_requests == 3
    assert target_requests == {"list": 3}
    assert source_requests == {}
    rows = await registry_rows(pg_dsn)
    assert {row["object_key"]: row["damaged"] for row in rows.values() if row["damaged"]} == {
        **dict.fromkeys(deleted, "missing"),
        **dict.fromkeys(truncated, "size"),
    }

    # the next generate rewrites exactly those 7, and a second verify finds nothing
    written, sources_read, target_written = await generate(config)
    assert (written.written, written.skipped, written.failed) == (7, 5, 0)
    assert target_written == {"put": 7}
    damaged = len({source for (source, _), row in rows.items() if row["damaged"]})
    assert sources_read == {"get": damaged, "stat": damaged}
    for row in (await registry_rows(pg_dsn)).values():
        assert (out / row["object_key"]).stat().st_size == row["bytes"]
    counters, _, _, _ = await verify(config)
    assert (counters.missing, counters.wrong_size, counters.marked, counters.checked) == (0, 0, 0, 12)
    assert not any(row["damaged"] for row in (await registry_rows(pg_dsn)).values())


async def test_verify_repair_on_s3_in_one_run(
    pg_dsn: str, tmp_path: Path, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    target = s3_store_settings(s3_endpoint, f"s3://{bucket}/renditions/")
    config = await setup_generated(pg_dsn, tmp_path, target)
    deleted, _ = await damage(
        pg_dsn,
        lambda key: s3_client.delete_object(Bucket=bucket, Key=f"renditions/{key}"),
        lambda key: s3_client.put_object(Bucket=bucket, Key=f"renditions/{key}", Body=b"cut short"),
    )
    # an object nobody recorded is counted for purge orphans, not touched
    s3_client.put_object(Bucket=bucket, Key="renditions/stray.jpg", Body=b"x")

    counters, lines, _, target_requests = await verify(config, dry_run=True)
    assert (counters.missing, counters.wrong_size, counters.unreferenced) == (5, 2, 1)
    assert target_requests == {"ListObjectsV2": 1} == {"ListObjectsV2": counters.listing_requests}
    assert found(lines, "missing", config.stores.target.location.url) == deleted

    counters, _, source_requests, target_requests = await verify(config, repair=True)
    assert (counters.marked, counters.repaired, counters.failed) == (7, 7, 0)
    # one listing request, then the 7 PUTs of the repair: no HEAD, no GET on the target
    assert target_requests == {"ListObjectsV2": 1, "PutObject": 7}
    reads = {operation: n for operation, n in source_requests.items() if operation in ("get", "GetObject")}
    checks = {operation: n for operation, n in source_requests.items() if operation in ("stat", "HeadObject")}
    assert sum(reads.values()) <= 4  # the damaged renditions' sources, each read once
    assert sum(checks.values()) == sum(reads.values())  # and checked once after
    rows = await registry_rows(pg_dsn)
    assert not any(row["damaged"] for row in rows.values())
    for row in rows.values():
        head = s3_client.head_object(Bucket=bucket, Key=f"renditions/{row['object_key']}")
        assert head["ContentLength"] == row["bytes"]

    counters, _, _, target_requests = await verify(config, repair=True)
    assert (counters.marked, counters.repaired) == (0, 0)
    assert target_requests == {"ListObjectsV2": 1}


async def test_verify_from_the_command_line(pg_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = await setup_generated(pg_dsn, tmp_path, out)
    victim = next(iter((await registry_rows(pg_dsn)).values()))["object_key"]
    (out / victim).unlink()
    path = write_config(tmp_path / "batchthumb.toml", pg_dsn, tmp_path / "media", out)
    result = batchthumb(path, "verify", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert (summary["command"], summary["missing"], summary["marked"]) == ("verify", 1, 1)
    assert summary["listing_requests"] == 1
    assert "missing photos/" in result.stderr
    assert f"{config.stores.target.location.url}{victim}" in result.stderr
    status = json.loads(batchthumb(path, "status", "--json").stdout)
    assert sum(row["damaged"] for row in status["renditions"]) == 1


async def test_a_failed_listing_marks_nothing(pg_dsn: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    config = await setup_generated(pg_dsn, tmp_path, out)
    store = FailingListing(config.stores.target.location, page_size=5)
    with pytest.raises(StoreError, match="listing .* failed, so nothing was marked"):
        await verify(config, target_store=store)
    assert not any(row["damaged"] for row in (await registry_rows(pg_dsn)).values())
    # a row recorded after the listing began is not judged by it
    await sql(pg_dsn, "UPDATE batchthumb.renditions SET created_at = now() + interval '1 hour'")
    (out / next(iter((await registry_rows(pg_dsn)).values()))["object_key"]).unlink()
    counters, _, _, _ = await verify(config)
    assert (counters.checked, counters.missing) == (0, 0)
