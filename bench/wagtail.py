"""Wagtail bench: one ``{% picture %}`` set of 9 specs for every image, batchthumb against
Wagtail's own bulk path, in the same run on the same images.

    python -m bench.wagtail            # the bench corpus (12 MP and 2 MP JPEG, 4 MP PNG, 2 MP WebP)
    python -m bench.wagtail --quick    # a few images

Wagtail's side is what sites write today for a backfill (wagtail#4895): a loop of
``image.get_renditions(*specs)`` over the images (one read per image, Wagtail's render
threads), in a Wagtail site on the same Postgres and media directory (``tests/wagtail_site``).
batchthumb's side is ``batchthumb generate`` with the same specs as one Wagtail rendition.
Both run as subprocesses from an empty rendition table; wall time and CPU seconds (the
subprocess and everything it started) are medians of the repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import tomli_w

from bench.__main__ import make_corpus
from bench.common import bench_database

ROOT = Path(__file__).parent.parent
PICTURE = "format-{avif,webp,jpeg} width-{400,800,1200}"
"""``{% picture page.hero format-{avif,webp,jpeg} width-{400,800,1200} %}``: 9 renditions an image."""


def specs() -> list[str]:
    from batchthumb.django.wagtail_rules import expand_spec

    return expand_spec(PICTURE)


def site(dsn: str, media: Path, mode: str, request: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, "BT_DSN": dsn, "BT_MEDIA_ROOT": str(media), "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "tests.wagtail_site.probe", mode],
        input=json.dumps(request), capture_output=True, text=True, env=env, cwd=ROOT, check=True,
        timeout=3600,
    )  # fmt: skip
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def config_file(work: Path, dsn: str, media: Path, avif_effort: int | None = None) -> Path:
    path = work / "wagtail.toml"
    data = {
        "database": {"dsn": dsn},
        "stores": {"source": {"url": f"file://{media}"}},
        "sources": [
            {"name": "images", "table": "wagtailimages_image", "key_column": "id", "path_column": "file"}
        ],
        "renditions": {"hero": {"preset": "wagtail", "specs": PICTURE}},
    }
    if avif_effort is not None:
        data["django"] = {"wagtail": {"avif_effort": avif_effort}}
    path.write_text(tomli_w.dumps(data))
    return path


async def reset(dsn: str, media: Path) -> None:
    """An empty rendition table and no rendition file: each run starts where a new site is."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM wagtailimages_rendition; DROP SCHEMA IF EXISTS batchthumb CASCADE")
    finally:
        await conn.close()
    shutil.rmtree(media / "images", ignore_errors=True)


def measured(run: Any) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system of the subprocesses it waited for)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    run()
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@contextmanager
def fresh_database(dsn: str) -> Iterator[str]:
    """A database of its own on the bench's server: the Wagtail site's tables from nothing."""
    name = "bt_wagtail_bench"
    parts = urlsplit(dsn)

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(admin(f"DROP DATABASE IF EXISTS {name}"))
    asyncio.run(admin(f"CREATE DATABASE {name}"))
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        asyncio.run(admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--avif-effort", type=int, default=None, help="[django.wagtail] avif_effort")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="batchthumb-wagtail-bench-"))
    corpus, media = work / "corpus", work / "media"
    keys = make_corpus(corpus, args.quick)
    wanted = specs()
    timings: dict[str, dict[str, list[float]]] = {
        who: {"wall": [], "cpu": []} for who in ("wagtail", "batchthumb")
    }
    try:
        with bench_database(work, keys) as server, fresh_database(server) as dsn:
            uploads = [
                {"path": str(corpus / key), "name": key.replace("/", "-"), "focal": None} for key in keys
            ]
            site(dsn, media, "setup", {"images": uploads})
            config = config_file(work, dsn, media, args.avif_effort)
            batchthumb = [sys.executable, "-m", "batchthumb", "-c", str(config), "generate"]
            for repeat in range(args.repeats):
                for who in ("wagtail", "batchthumb"):
                    asyncio.run(reset(dsn, media))
                    if who == "batchthumb":
                        subprocess.run([*batchthumb[:-1], "init"], check=True, capture_output=True, cwd=ROOT)
                        wall, cpu = measured(lambda: subprocess.run(batchthumb, check=True, cwd=ROOT))
                    else:
                        wall, cpu = measured(lambda: site(dsn, media, "bulk", {"specs": wanted}))
                    timings[who]["wall"].append(wall)
                    timings[who]["cpu"].append(cpu)
                print(
                    f"  repeat {repeat + 1}: wagtail {timings['wagtail']['wall'][-1]:.1f}s, "
                    f"batchthumb {timings['batchthumb']['wall'][-1]:.1f}s",
                    flush=True,
                )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results: dict[str, Any] = {}
    for who, figures in timings.items():
        wall, cpu = statistics.median(figures["wall"]), statistics.median(figures["cpu"])
        results[who] = {"images_per_s": len(keys) / wall, "cpu_s_per_image": cpu / len(keys), "wall_s": wall}
    ratio = results["batchthumb"]["images_per_s"] / results["wagtail"]["images_per_s"]
    results["ratio"] = ratio
    print(f"\n{len(keys)} images x {len(wanted)} specs ({PICTURE}); medians of {args.repeats}")
    for who in ("wagtail", "batchthumb"):
        figures = results[who]
        rate, cpu = figures["images_per_s"], figures["cpu_s_per_image"]
        print(f"{who:<11} {rate:>7.2f} images/s  {cpu:>6.2f} CPU s/image")
    print(f"ratio (batchthumb / Wagtail's get_renditions loop): {ratio:.2f}")
    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}{'-quick' if args.quick else ''}"
    path = ROOT / "bench" / "results" / f"wagtail-{stamp}.json"
    path.write_text(json.dumps({"images": len(keys), "specs": wanted, "results": results}, indent=2))
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
