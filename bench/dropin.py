"""Drop-in bench: a backfill through each preset against that library's own bulk path.

    python -m bench.dropin            # the bench corpus (12 MP and 2 MP JPEG, 4 MP PNG, 2 MP WebP)
    python -m bench.dropin --quick    # a few sources
    python -m bench.dropin --only sorl-s3 easy_thumbnails-s3

For each library, on the same sources in the same run: the library's own command on a copy
(django_advance_thumbnail's ``generate_thumbnails``, the versatileimagefield warmer,
django-imagekit's ``generateimages``, a ``get_thumbnail`` loop for sorl-thumbnail, an alias
loop for easy-thumbnails, in a Django site on the same Postgres) and ``batchthumb generate``
with that library's preset renditions; sorl-thumbnail and easy-thumbnails also on S3 (SeaweedFS's
server, django-storages' ``S3Storage`` against batchthumb's S3 store). Medians of the
repeats; the ratio is batchthumb's sources/s over the library's.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from batchthumb.config import config_from_dict
from bench.__main__ import make_corpus
from bench.common import bench_database, migrate
from bench.purge import BUCKET, CREDENTIALS
from tests.s3servers import S3Server

ROOT = Path(__file__).parent.parent
RENDITIONS: dict[str, dict[str, Any]] = {
    "django_advance_thumbnail": {
        "thumbnail": {"preset": "django_advance_thumbnail", "upload_to": "thumbnails/", "column": "thumbnail"}
    },
    "versatileimagefield": {
        "vthumb": {"preset": "versatileimagefield", "sizer": "thumbnail", "size": "300x300"},
        "vcrop": {"preset": "versatileimagefield", "sizer": "crop", "size": "300x300"},
    },
    "imagekit": {
        name: {
            "preset": "imagekit",
            "processors": [{"processor": processor, "width": 300, "height": 300}],
            "format": "JPEG",
            "options": {"quality": 85},
        }
        for name, processor in (("fit", "ResizeToFit"), ("fill", "ResizeToFill"))
    },
    "sorl": {
        "fit": {"preset": "sorl", "geometry": "300x300", "options": {"quality": 85}},
        "crop": {"preset": "sorl", "geometry": "300x300", "options": {"crop": "center", "quality": 85}},
    },
}
RENDITIONS["easy_thumbnails"] = {
    "fit": {"preset": "easy_thumbnails", "size": [300, 300], "quality": 85},
    "crop": {"preset": "easy_thumbnails", "size": [300, 300], "crop": True, "quality": 85},
}
SORL = [[name, spec["geometry"], spec["options"]] for name, spec in RENDITIONS["sorl"].items()]
"""The same thumbnails, as the sorl loop asks ``get_thumbnail`` for them."""
EASY = [
    [name, {key: value for key, value in spec.items() if key != "preset"}]
    for name, spec in RENDITIONS["easy_thumbnails"].items()
]
"""The same thumbnails, as the site's ``THUMBNAIL_ALIASES``."""
RUNS: dict[str, tuple[str, str]] = {
    "django_advance_thumbnail": ("django_advance_thumbnail", "local"),
    "versatileimagefield": ("versatileimagefield", "local"),
    "imagekit": ("imagekit", "local"),
    "sorl": ("sorl", "local"),
    "sorl-s3": ("sorl", "s3"),
    "easy_thumbnails": ("easy_thumbnails", "local"),
    "easy_thumbnails-s3": ("easy_thumbnails", "s3"),
}
"""Each comparison: the library, and where the sources and thumbnails live."""
STORAGE_CLASSES = {
    "local": "django.core.files.storage.filesystem.FileSystemStorage",
    "s3": "storages.backends.s3.S3Storage",
}
EASY_TABLES = """
DROP TABLE IF EXISTS easy_thumbnails_thumbnaildimensions, easy_thumbnails_thumbnail, easy_thumbnails_source;
CREATE TABLE easy_thumbnails_source (id serial PRIMARY KEY, storage_hash varchar(40) NOT NULL,
    name varchar(255) NOT NULL, modified timestamptz NOT NULL, UNIQUE (storage_hash, name));
CREATE TABLE easy_thumbnails_thumbnail (id serial PRIMARY KEY, storage_hash varchar(40) NOT NULL,
    name varchar(255) NOT NULL, modified timestamptz NOT NULL,
    source_id integer NOT NULL REFERENCES easy_thumbnails_source (id) DEFERRABLE INITIALLY DEFERRED,
    UNIQUE (storage_hash, name, source_id));
CREATE TABLE easy_thumbnails_thumbnaildimensions (id serial PRIMARY KEY,
    thumbnail_id integer NOT NULL UNIQUE
        REFERENCES easy_thumbnails_thumbnail (id) DEFERRABLE INITIALLY DEFERRED,
    width integer NULL CHECK (width >= 0), height integer NULL CHECK (height >= 0));
"""
"""easy-thumbnails' tables, as its migrations make them, empty for each run."""


async def photo_table(dsn: str, keys: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS gallery_photo; CREATE TABLE gallery_photo (id serial PRIMARY KEY,"
            " image varchar(255) NOT NULL, image_ppoi varchar(20) NOT NULL DEFAULT '0.5x0.5',"
            " thumbnail varchar(100) NULL)"
        )
        await conn.executemany("INSERT INTO gallery_photo (image) VALUES ($1)", [(key,) for key in keys])
        # sorl-thumbnail's key value store, as its migration makes it, empty for each run
        await conn.execute(
            "DROP TABLE IF EXISTS thumbnail_kvstore;"
            " CREATE TABLE thumbnail_kvstore (key varchar(200) PRIMARY KEY, value text NOT NULL)"
        )
        await conn.execute(EASY_TABLES)
        await conn.execute("DROP SCHEMA IF EXISTS batchthumb CASCADE")
    finally:
        await conn.close()


def library_run(dsn: str, media: Path, library: str, s3: dict[str, Any] | None) -> float:
    env = {**os.environ, "BT_DSN": dsn, "BT_MEDIA_ROOT": str(media), "PYTHONPATH": str(ROOT)}
    env.update({"BT_SORL": json.dumps(SORL), "BT_EASY": json.dumps(EASY), "BT_EASY_DIMENSIONS": "1"})
    if s3 is not None:
        env.update(
            {
                "BT_S3_ENDPOINT": s3["endpoint_url"],
                "BT_S3_BUCKET": s3["bucket"],
                "BT_S3_LOCATION": s3["location"],
                "BT_S3_ACCESS_KEY": CREDENTIALS["aws_access_key_id"],
                "BT_S3_SECRET_KEY": CREDENTIALS["aws_secret_access_key"],
            }
        )
    result = subprocess.run(
        [sys.executable, "-m", "tests.django_site.probe", "bulk", library],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True, timeout=1800,
    )  # fmt: skip
    return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])


def batchthumb_run(dsn: str, media: Path, library: str, s3: dict[str, Any] | None) -> float:
    from batchthumb.generate import GenerateJob, GenerateOptions
    from batchthumb.jobs import configure_libvips
    from batchthumb.report import Reporter
    from batchthumb.runtime import open_runtime

    source: dict[str, Any] = {"url": f"file://{media}"}
    if s3 is not None:
        source = {
            "url": f"s3://{s3['bucket']}/{s3['location']}/",
            "endpoint_url": s3["endpoint_url"],
            "region": "us-east-1",
            "addressing_style": "path",
            "access_key_id": CREDENTIALS["aws_access_key_id"],
            "secret_access_key": CREDENTIALS["aws_secret_access_key"],
        }
    storage = STORAGE_CLASSES["local" if s3 is None else "s3"]
    config = config_from_dict(
        {
            "database": {"dsn": dsn},
            "stores": {"source": source},
            "sources": [{"name": "photos", "table": "gallery_photo", "path_column": "image"}],
            "renditions": RENDITIONS[library],
            "django": {
                "versatileimagefield": {"jpeg_resize_quality": 85},
                "sorl": {"storage": storage},
                "easy_thumbnails": {"storage": storage, "cache_dimensions": True},
            },
        },
        environ={},
    )

    async def run() -> float:
        await migrate(config)
        configure_libvips(config)
        async with open_runtime(config) as runtime:
            started = time.perf_counter()
            reporter = Reporter(progress=False, stderr=io.StringIO())
            counters = await GenerateJob(runtime, GenerateOptions(), reporter).execute()
            assert counters.failed == 0, counters.failures
            return time.perf_counter() - started

    return asyncio.run(run())


def start_s3() -> tuple[S3Server, str]:
    """The bench's S3 server (SeaweedFS), with the bench bucket."""
    import boto3

    from bench.purge import start_s3 as start_server

    process, endpoint = start_server()
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS).create_bucket(
        Bucket=BUCKET
    )
    return process, endpoint


def upload(endpoint: str, corpus: Path, keys: list[str], location: str) -> dict[str, Any]:
    """The sources under ``location/`` in the bench bucket (django-storages' ``AWS_LOCATION``)."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    for key in keys:
        client.upload_file(str(corpus / key), BUCKET, f"{location}/{key}")
    return {"endpoint_url": endpoint, "bucket": BUCKET, "location": location}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--only", nargs="*", choices=list(RUNS), help="only these comparisons")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="batchthumb-dropin-bench-"))
    corpus = work / "corpus"
    keys = make_corpus(corpus, args.quick)
    results: dict[str, Any] = {}
    runs = {name: RUNS[name] for name in args.only} if args.only else RUNS
    server = None
    try:
        with bench_database(work, keys) as dsn:
            for label, (library, where) in runs.items():
                if where == "s3" and server is None:
                    server = start_s3()
                timings: dict[str, list[float]] = {"library": [], "batchthumb": []}
                for repeat in range(args.repeats):
                    for who in ("library", "batchthumb"):
                        media = work / f"media-{who}"
                        shutil.rmtree(media, ignore_errors=True)
                        shutil.copytree(corpus, media)
                        s3 = None
                        if server is not None and where == "s3":
                            s3 = upload(server[1], corpus, keys, f"{label}-{who}-{repeat}")
                        asyncio.run(photo_table(dsn, keys))
                        run = library_run if who == "library" else batchthumb_run
                        timings[who].append(run(dsn, media, library, s3))
                    print(f"  {label} repeat {repeat + 1}: library {timings['library'][-1]:.2f}s, "
                          f"batchthumb {timings['batchthumb'][-1]:.2f}s", flush=True)  # fmt: skip
                library_rate = len(keys) / statistics.median(timings["library"])
                ours = len(keys) / statistics.median(timings["batchthumb"])
                results[label] = {"library": library_rate, "batchthumb": ours, "ratio": ours / library_rate}
    finally:
        if server is not None:
            server[0].stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(keys)} sources; sources/s, medians of {args.repeats}")
    print(f"{'library':<26} {'its own bulk path':>18} {'batchthumb':>11} {'ratio':>7}")  # sources/s
    for library, figures in results.items():
        rates = f"{figures['library']:>18.2f} {figures['batchthumb']:>11.2f}"
        print(f"{library:<26} {rates} {figures['ratio']:>7.2f}")
    path = (
        ROOT
        / "bench"
        / "results"
        / f"dropin-{datetime.now(UTC):%Y%m%dT%H%M%SZ}{'-quick' if args.quick else ''}.json"
    )
    path.write_text(json.dumps({"sources": len(keys), "results": results}, indent=2))
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
