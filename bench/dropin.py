"""Drop-in bench: a backfill through each preset against that library's own bulk path.

    python -m bench.dropin            # 24 sources (12 MP and 2 MP JPEG, 4 MP PNG)
    python -m bench.dropin --quick    # 8 sources

For each library, on the same sources in the same run: the library's own command on a copy
(django_advance_thumbnail's ``generate_thumbnails``, the versatileimagefield warmer,
django-imagekit's ``generateimages``, a ``get_thumbnail`` loop for sorl-thumbnail, in a
Django site on the same Postgres) and
``batchthumb generate`` with that library's preset renditions. Medians of the repeats;
the ratio is batchthumb's sources/s over the library's.
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
SORL = [[name, spec["geometry"], spec["options"]] for name, spec in RENDITIONS["sorl"].items()]
"""The same thumbnails, as the sorl loop asks ``get_thumbnail`` for them."""


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
        await conn.execute("DROP SCHEMA IF EXISTS batchthumb CASCADE")
    finally:
        await conn.close()


def library_run(dsn: str, media: Path, library: str) -> float:
    env = {**os.environ, "BT_DSN": dsn, "BT_MEDIA_ROOT": str(media), "PYTHONPATH": str(ROOT)}
    env["BT_SORL"] = json.dumps(SORL)
    result = subprocess.run(
        [sys.executable, "-m", "tests.django_site.probe", "bulk", library],
        capture_output=True, text=True, env=env, cwd=ROOT, check=True, timeout=1800,
    )  # fmt: skip
    return float(json.loads(result.stdout.strip().splitlines()[-1])["seconds"])


def batchthumb_run(dsn: str, media: Path, library: str) -> float:
    from batchthumb.generate import GenerateJob, GenerateOptions
    from batchthumb.jobs import configure_libvips
    from batchthumb.report import Reporter
    from batchthumb.runtime import open_runtime

    config = config_from_dict(
        {
            "database": {"dsn": dsn},
            "stores": {"source": {"url": f"file://{media}"}},
            "sources": [{"name": "photos", "table": "gallery_photo", "path_column": "image"}],
            "renditions": RENDITIONS[library],
            "django": {"versatileimagefield": {"jpeg_resize_quality": 85}},
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="batchthumb-dropin-bench-"))
    corpus = work / "corpus"
    keys = make_corpus(corpus, args.quick)
    results: dict[str, Any] = {}
    with bench_database(work, keys) as dsn:
        for library in RENDITIONS:
            timings: dict[str, list[float]] = {"library": [], "batchthumb": []}
            for repeat in range(args.repeats):
                for who in ("library", "batchthumb"):
                    media = work / f"media-{who}"
                    shutil.rmtree(media, ignore_errors=True)
                    shutil.copytree(corpus, media)
                    asyncio.run(photo_table(dsn, keys))
                    run = library_run if who == "library" else batchthumb_run
                    timings[who].append(run(dsn, media, library))
                print(f"  {library} repeat {repeat + 1}: library {timings['library'][-1]:.2f}s, "
                      f"batchthumb {timings['batchthumb'][-1]:.2f}s", flush=True)  # fmt: skip
            library_rate = len(keys) / statistics.median(timings["library"])
            ours = len(keys) / statistics.median(timings["batchthumb"])
            results[library] = {"library": library_rate, "batchthumb": ours, "ratio": ours / library_rate}
    shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(keys)} sources; sources/s, medians of {args.repeats}")
    print(f"{'library':<26} {'its own bulk path':>18} {'batchthumb':>11} {'ratio':>7}")
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
