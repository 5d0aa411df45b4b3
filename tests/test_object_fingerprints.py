"""Sources replaced in place (same name, new bytes), seen from one listing of the source prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchthumb.errors import ConfigError
from batchthumb.samples import sample_bytes
from tests.helpers import (
    SOURCES,
    create_photo_table,
    generate,
    make_config,
    registry_rows,
    s3_store_settings,
    source_files,
    write_sources,
)

pytestmark = pytest.mark.anyio

REPLACED = [key for key, _ in SOURCES[:3]]


def new_bytes(key: str) -> bytes:
    """Another picture of the same kind under the same name (what an edit saved over it leaves)."""
    params = dict(SOURCES)[key]
    return sample_bytes(**{**params, "seed": int(params["seed"]) + 100})  # type: ignore[arg-type]


async def test_sources_replaced_in_place_on_s3_are_rebuilt_and_nothing_else(
    pg_dsn: str, tmp_path: Path, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    for key, data in source_files():
        s3_client.put_object(Bucket=bucket, Key=f"media/{key}", Body=data)
    await create_photo_table(pg_dsn, [key for key, _ in SOURCES])
    source = s3_store_settings(s3_endpoint, f"s3://{bucket}/media/")
    target = s3_store_settings(s3_endpoint, f"s3://{bucket}/renditions/")
    config = make_config(
        pg_dsn, source, target, fingerprint_column=None, object_fingerprint=True, listing_prefix="images/"
    )
    counters, _, _ = await generate(config)
    assert counters.written == 12
    etags = {
        key: s3_client.head_object(Bucket=bucket, Key=f"media/{key}")["ETag"].strip('"') for key, _ in SOURCES
    }
    rows = await registry_rows(pg_dsn)
    for (key, _), row in rows.items():
        assert row["fingerprint"].endswith(f":{etags[key]}")

    for key in REPLACED:
        s3_client.put_object(Bucket=bucket, Key=f"media/{key}", Body=new_bytes(key))

    counters, source_requests, target_requests = await generate(config, command="regenerate")
    assert (counters.written, counters.stale, counters.failed) == (9, 9, 0)
    assert source_requests == {"ListObjectsV2": 1, "GetObject": 3, "HeadObject": 3}
    assert target_requests == {"PutObject": 9}
    after = await registry_rows(pg_dsn)
    rebuilt = {key for key in after if after[key]["created_at"] > rows[key]["created_at"]}
    assert rebuilt == {(key, name) for key in REPLACED for name in ("thumb", "medium", "wide")}

    # nothing changed since: only the listing request, on the source store; none on the target
    counters, source_requests, target_requests = await generate(config, command="regenerate")
    assert (counters.written, counters.sources) == (0, 0)
    assert source_requests == {"ListObjectsV2": 1}
    assert target_requests == {}


async def test_sources_replaced_in_place_on_disk(pg_dsn: str, tmp_path: Path) -> None:
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    config = make_config(pg_dsn, media, out, fingerprint_column=None, object_fingerprint=True)
    counters, _, _ = await generate(config)
    assert counters.written == 12
    for key in REPLACED:
        (media / key).write_bytes(new_bytes(key))

    counters, source_requests, _ = await generate(config, command="regenerate")
    assert (counters.written, counters.stale) == (9, 9)
    assert source_requests == {"list": 1, "get": 3, "stat": 3}
    counters, source_requests, target_requests = await generate(config, command="regenerate")
    assert counters.written == 0
    assert (source_requests, target_requests) == ({"list": 1}, {})

    # a file that is gone is a failure to read (a missing source), never a reason to delete:
    # its renditions stay until `purge orphans --missing-sources` takes them
    (media / REPLACED[0]).unlink()
    counters, source_requests, target_requests = await generate(config, command="regenerate")
    assert (counters.sources, counters.written, counters.failed) == (1, 0, 1)
    assert "no such file" in counters.failures[0]
    assert (source_requests, target_requests) == ({"list": 1, "get": 1}, {})
    assert all((out / row["object_key"]).exists() for row in (await registry_rows(pg_dsn)).values())


def test_one_fingerprint_per_source_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="fingerprint_column or object_fingerprint, not both"):
        make_config("postgresql://x@localhost/db", tmp_path, tmp_path / "out", object_fingerprint=True)
