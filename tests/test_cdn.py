"""--changed-urls and CloudFront invalidations: what a run overwrote or deleted, told to the CDN
(moto's CloudFront over HTTP, the real aioboto3 client)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest

from batchthumb.cdn import MAX_PATHS, invalidation_batches
from batchthumb.errors import StoreError
from tests.helpers import (
    S3_CREDENTIALS,
    create_photo_table,
    generate,
    make_config,
    purge,
    registry_rows,
    source_files,
    sql,
    with_renditions,
    write_sources,
)

pytestmark = pytest.mark.anyio

RENDITIONS = {
    "hero": {"widths": [320, 640], "formats": ["webp", "jpeg"]},
    "thumb": {"mode": "crop", "width": 100, "height": 100, "format": "webp"},
}
BASE = "https://cdn.example.com/media/r/"


def test_batches_of_at_most_3000_paths_or_a_wildcard_per_folder() -> None:
    paths = [f"/r/{index}/a.webp" for index in range(7000)]
    folders = {f"/r/{index}/": 1 for index in range(7000)}
    assert [len(batch) for batch in invalidation_batches(paths, folders, len(paths))] == [
        MAX_PATHS,
        MAX_PATHS,
        1000,
    ]
    # 7000 paths in 4 folders: 4 wildcards, one invalidation
    paths = [f"/r/{index % 4}/{index}.webp" for index in range(7000)]
    folders = {f"/r/{index}/": 1750 for index in range(4)}
    assert list(invalidation_batches(paths, folders, len(paths))) == [[f"/r/{index}/*" for index in range(4)]]
    # as many folders as paths: the exact paths (a wildcard would invalidate more for nothing)
    assert list(invalidation_batches(["/a/1.webp", "/b/2.webp"], {"/a/": 1, "/b/": 1}, 2)) == [
        ["/a/1.webp", "/b/2.webp"]
    ]


@pytest.fixture
def cloudfront(moto_endpoint: str) -> tuple[Any, str]:
    client = boto3.client("cloudfront", endpoint_url=moto_endpoint, region_name="us-east-1", **S3_CREDENTIALS)
    origin = {
        "Id": "media",
        "DomainName": "media.s3.amazonaws.com",
        "S3OriginConfig": {"OriginAccessIdentity": ""},
    }
    behaviour = {
        "TargetOriginId": "media",
        "ViewerProtocolPolicy": "allow-all",
        "MinTTL": 0,
        "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
        "TrustedSigners": {"Enabled": False, "Quantity": 0},
    }
    created = client.create_distribution(
        DistributionConfig={
            "CallerReference": f"batchthumb-tests-{uuid.uuid4().hex}",
            "Comment": "",
            "Enabled": True,
            "Origins": {"Quantity": 1, "Items": [origin]},
            "DefaultCacheBehavior": behaviour,
        }
    )
    return client, created["Distribution"]["Id"]


def invalidated(client: Any, distribution: str) -> list[list[str]]:
    """The paths of each invalidation the distribution received, oldest first."""
    listed = client.list_invalidations(DistributionId=distribution)["InvalidationList"].get("Items", [])
    batches = [
        client.get_invalidation(DistributionId=distribution, Id=item["Id"])["Invalidation"] for item in listed
    ]
    batches.sort(key=lambda invalidation: invalidation["CreateTime"])
    return [invalidation["InvalidationBatch"]["Paths"].get("Items", []) for invalidation in batches]


def expected_paths(object_keys: set[str]) -> list[str]:
    """The exact paths, or a wildcard per folder when there are fewer folders."""
    paths = {"/media/r/" + key for key in object_keys}
    folders = {path.rsplit("/", 1)[0] + "/*" for path in paths}
    return sorted(folders if len(folders) < len(paths) else paths)


def cdn_settings(moto_endpoint: str, distribution: str) -> dict[str, Any]:
    return {
        "cdn": {
            "public_base_url": BASE,
            "cloudfront_distribution_id": distribution,
            "cloudfront_path_prefix": "/media/r/",
            "endpoint_url": moto_endpoint,
            "access_key_id": S3_CREDENTIALS["aws_access_key_id"],
            "secret_access_key": S3_CREDENTIALS["aws_secret_access_key"],
        }
    }


async def test_changed_urls_and_their_invalidation(
    pg_dsn: str, tmp_path: Path, moto_endpoint: str, cloudfront: tuple[Any, str]
) -> None:
    client, distribution = cloudfront
    media = tmp_path / "media"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    extra = cdn_settings(moto_endpoint, distribution)
    config = make_config(pg_dsn, media, tmp_path / "out", renditions=RENDITIONS, extra=extra)
    changed = tmp_path / "changed.txt"

    # new objects at new URLs: nothing a CDN holds changed
    counters, _, _ = await generate(config, changed_urls=str(changed))
    assert counters.written == len(keys) * 5 and counters.changed_urls == 0 and counters.invalidations == 0
    assert changed.read_text() == "" and invalidated(client, distribution) == []

    # rebuilt in place (--force): each object once, though two variants share some of them
    objects = {row["object_key"] for row in (await registry_rows(pg_dsn)).values()}
    counters, _, _ = await generate(config, force=True, changed_urls=str(changed))
    assert counters.changed_urls == len(objects) and counters.invalidations == 1
    assert sorted(changed.read_text().splitlines()) == sorted(BASE + key for key in objects)
    assert sorted(invalidated(client, distribution)[-1]) == expected_paths(objects)
    assert len(expected_paths(objects)) == 3  # a folder per format of the width set, and thumb's

    # a spec changed: the new objects have new URLs; the old ones are gone, and told
    old_thumbs = {
        row["object_key"] for (_, name), row in (await registry_rows(pg_dsn)).items() if name == "thumb"
    }
    smaller = with_renditions(config, thumb={"width": 80, "height": 80})
    counters, _, _ = await generate(smaller, command="regenerate", changed_urls=str(changed))
    assert counters.written == len(keys) and counters.deleted == len(keys)
    assert sorted(changed.read_text().splitlines()) == sorted(BASE + key for key in old_thumbs)
    assert sorted(invalidated(client, distribution)[-1]) == expected_paths(old_thumbs)

    # a purge: what it deleted; a dry run tells nobody anything
    before = len(invalidated(client, distribution))
    counters, _, _ = await purge(
        smaller, kind="referenced", renditions=("hero",), dry_run=True, changed_urls=str(changed)
    )
    assert counters.changed_urls == 0 and len(invalidated(client, distribution)) == before
    heroes = {
        row["object_key"]
        for (_, name), row in (await registry_rows(pg_dsn)).items()
        if name.startswith("hero@")
    }
    counters, _, _ = await purge(smaller, kind="referenced", renditions=("hero",), changed_urls=str(changed))
    assert counters.deleted == len(heroes) and counters.changed_urls == len(heroes)
    assert sorted(changed.read_text().splitlines()) == sorted(BASE + key for key in heroes)


@pytest.mark.parametrize(("folders", "expected"), [(3500, [MAX_PATHS, 500]), (5, [5])])
async def test_a_large_purge_is_invalidated_in_batches(
    pg_dsn: str,
    tmp_path: Path,
    moto_endpoint: str,
    cloudfront: tuple[Any, str],
    folders: int,
    expected: list[int],
) -> None:
    client, distribution = cloudfront
    out = tmp_path / "out"
    for index in range(3500):
        folder = out / "photos" / f"f{index % folders}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{index}.webp").write_bytes(b"x")
    await create_photo_table(pg_dsn, [])
    extra = cdn_settings(moto_endpoint, distribution)
    config = make_config(pg_dsn, tmp_path / "media", out, renditions=RENDITIONS, extra=extra)
    counters, _, _ = await purge(config, kind="prefix")
    assert counters.deleted == 3500 and counters.changed_urls == 3500
    batches = invalidated(client, distribution)
    assert [len(batch) for batch in batches] == expected
    paths = {path for batch in batches for path in batch}
    if folders == 5:
        assert paths == {f"/media/r/photos/f{index}/*" for index in range(5)}
    else:
        assert paths == {f"/media/r/photos/f{index}/{index}.webp" for index in range(3500)}


async def test_a_refused_invalidation_fails_the_run_with_the_urls_kept(
    pg_dsn: str, tmp_path: Path, moto_endpoint: str
) -> None:
    media = tmp_path / "media"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    extra = cdn_settings(moto_endpoint, "NOSUCHDISTRIBUTION")
    config = make_config(pg_dsn, media, tmp_path / "out", renditions=RENDITIONS, extra=extra)
    await generate(config)
    changed = tmp_path / "changed.txt"
    with pytest.raises(
        StoreError, match="CloudFront NOSUCHDISTRIBUTION: invalidating .* paths failed: NoSuchDistribution"
    ):
        await generate(config, force=True, changed_urls=str(changed))
    # the objects were rebuilt and recorded; their URLs are in the file, to invalidate by hand
    assert len(changed.read_text().splitlines()) == len(
        {row["object_key"] for row in (await registry_rows(pg_dsn)).values()}
    )
    assert (await sql(pg_dsn, "SELECT outcome FROM batchthumb.runs ORDER BY id DESC LIMIT 1"))[0][
        0
    ] == "failed"
