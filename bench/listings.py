"""Listing benchmark: ``verify`` and ``purge uploads`` against the per-object way, in one run.

    python -m bench.listings            # verify over 100,000 objects, purge uploads over 20,000 files
    python -m bench.listings --quick    # 10,000 and 4,000

- **verify** on the bench's S3 server (SeaweedFS): N objects recorded in the registry, 50 of them deleted by
  hand and 20 overwritten with another size. batchthumb lists the prefix (one request per
  1000 objects) and anti-joins it with the registry in SQL; the per-object way HEADs every
  recorded object (64 in flight, one long-lived client) and compares its size.
- **purge uploads** on a local directory: M old files under ``uploads/``, half of them named by
  a table's rows. batchthumb lists the prefix, checks each page of names in one query and
  deletes in batches; the per-object way stats each file, asks the database about it
  (one query per file, as a Django command's ``.filter(image=name).exists()`` does) and
  unlinks it.

Each figure runs in a fresh process (its peak RSS is its own), both ways find and delete the
same things, and the ratio is taken in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aioboto3
import anyio
import asyncpg
from botocore.exceptions import ClientError

from bench.common import bench_database, migrate
from bench.purge import BUCKET, CREDENTIALS, PREFIX, put_objects, s3_server_version, start_s3

SCHEMA = "batchthumb_listing_bench"
DELETED, TRUNCATED = 50, 20
OLD_S = 3 * 86400


def config_for(dsn: str, endpoint: str | None, work: Path) -> Any:
    from batchthumb.config import config_from_dict

    target: dict[str, Any] = {"url": f"file://{work}/out"}
    if endpoint is not None:
        target = {"url": f"s3://{BUCKET}/{PREFIX}", "endpoint_url": endpoint, "region": "us-east-1"}
        target |= {"addressing_style": "path", "access_key_id": CREDENTIALS["aws_access_key_id"]}
        target |= {"secret_access_key": CREDENTIALS["aws_secret_access_key"]}
    return config_from_dict(
        {
            "database": {"dsn": dsn, "registry_schema": SCHEMA},
            "stores": {"source": {"url": f"file://{work}/media"}, "target": target},
            "sources": [{"name": "bench", "table": "bench_photo", "path_column": "image"}],
            "renditions": {"thumb": {"width": 100}},
            "uploads": {"prefix": "uploads/"},
        },
        environ={},
    )


def peak_rss_mb() -> float:
    """This process's own peak RSS (``VmHWM``: ``ru_maxrss`` would carry the parent's across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the measured phases, each in a process of its own -------------------------------------


async def verify_phase(config: Any) -> dict[str, Any]:
    from batchthumb.report import Reporter
    from batchthumb.runtime import open_runtime
    from batchthumb.verify import VerifyJob, VerifyOptions

    async with open_runtime(config) as runtime:
        started = time.perf_counter()
        reporter = Reporter(progress=False, stderr=io.StringIO())
        counters = await VerifyJob(runtime, VerifyOptions(), reporter).execute()
        seconds = time.perf_counter() - started
        requests = dict(runtime.target_store.requests)
    return {"seconds": seconds, "requests": requests, "found": counters.missing + counters.wrong_size}


async def heads_phase(config: Any, endpoint: str) -> dict[str, Any]:
    """The per-object way: a HEAD per recorded object, then one UPDATE marking what differs."""
    dsn = config.database.dsn.get_secret_value()
    conn = await asyncpg.connect(dsn)
    session = aioboto3.Session(region_name="us-east-1", **CREDENTIALS)
    found: list[str] = []
    requests = 0
    limiter = anyio.CapacityLimiter(64)
    started = time.perf_counter()
    async with session.client("s3", endpoint_url=endpoint) as client:

        async def check(key: str, recorded: int) -> None:
            nonlocal requests
            async with limiter:
                requests += 1
                try:
                    head = await client.head_object(Bucket=BUCKET, Key=PREFIX + key)
                except ClientError:
                    found.append(key)
                    return
                if head["ContentLength"] != recorded:
                    found.append(key)

        async with conn.transaction(), anyio.create_task_group() as tg:
            async for row in conn.cursor(f"SELECT object_key, bytes FROM {SCHEMA}.renditions", prefetch=1000):
                tg.start_soon(check, row["object_key"], row["bytes"])
    await conn.execute(
        f"UPDATE {SCHEMA}.renditions SET damaged = 'missing' WHERE object_key = ANY($1::text[])", found
    )
    await conn.close()
    return {
        "seconds": time.perf_counter() - started,
        "requests": {"HeadObject": requests},
        "found": len(found),
    }


async def uploads_phase(config: Any) -> dict[str, Any]:
    from batchthumb.jobs import purge_job
    from batchthumb.purge import PurgeOptions
    from batchthumb.report import Reporter
    from batchthumb.runtime import open_runtime

    async with open_runtime(config) as runtime:
        started = time.perf_counter()
        reporter = Reporter(progress=False, stderr=io.StringIO())
        counters = await purge_job(runtime, PurgeOptions("uploads"), reporter).execute()
        return {"seconds": time.perf_counter() - started, "deleted": counters.deleted}


async def stat_phase(config: Any, work: Path) -> dict[str, Any]:
    """The per-object way: walk, stat each file, ask the database about it, unlink it."""
    dsn = config.database.dsn.get_secret_value()
    conn = await asyncpg.connect(dsn)
    media = work / "media"
    cutoff = time.time() - 24 * 3600
    deleted = 0
    started = time.perf_counter()
    for directory, _, names in os.walk(media / "uploads"):
        for name in names:
            path = Path(directory) / name
            key = str(path.relative_to(media))
            if path.stat().st_mtime >= cutoff:
                continue
            if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM bench_photo WHERE image = $1)", key):
                continue
            path.unlink()
            deleted += 1
    await conn.close()
    return {"seconds": time.perf_counter() - started, "deleted": deleted}


def phase(args: argparse.Namespace) -> None:
    """``--phase NAME``: one measured figure, as JSON on stdout."""
    from batchthumb.jobs import configure_libvips

    work = Path(args.work)
    config = config_for(args.dsn, args.endpoint, work)
    configure_libvips(config)
    run = {
        "verify": lambda: verify_phase(config),
        "heads": lambda: heads_phase(config, args.endpoint),
        "uploads": lambda: uploads_phase(config),
        "stat": lambda: stat_phase(config, work),
    }[args.phase]
    result = asyncio.run(run())
    print(json.dumps({**result, "peak_rss_mb": round(peak_rss_mb(), 1)}))


SERVER: dict[str, Any] = {}
"""The running S3 server (``main`` sets it): its CPU seconds are counted beside ours."""


def measured(name: str, dsn: str, work: Path, endpoint: str | None = None) -> dict[str, Any]:
    """One figure in a fresh process: its result, its CPU seconds and the S3 server's."""
    import psutil

    command = [sys.executable, "-m", "bench.listings", "--phase", name, "--dsn", dsn, "--work", str(work)]
    if endpoint:
        command += ["--endpoint", endpoint]
    server = psutil.Process(SERVER["pid"]) if endpoint and SERVER else None
    server_before = server.cpu_times() if server else None
    ours_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    ours_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    result["cpu_s"] = round(
        ours_after.ru_utime + ours_after.ru_stime - ours_before.ru_utime - ours_before.ru_stime, 2
    )
    if server is not None and server_before is not None:
        after = server.cpu_times()
        result["server_cpu_s"] = round(
            after.user + after.system - server_before.user - server_before.system, 2
        )
    return result


# -- set-up -------------------------------------------------------------------------------


async def record(config: Any, keys: list[str], size: int) -> None:
    from batchthumb.registry import RecordRow, Registry

    registry = await Registry.connect(config.database)
    try:
        target = config.stores.target.location.url
        rows = [RecordRow("bench", f"src/{k}", "thumb", "h", None, target, k, 1, 1, size) for k in keys]
        for start in range(0, len(rows), 5000):
            await registry.record(rows[start : start + 5000])
    finally:
        await registry.close()


async def damage(endpoint: str, keys: list[str]) -> None:
    session = aioboto3.Session(region_name="us-east-1", **CREDENTIALS)
    async with session.client("s3", endpoint_url=endpoint) as client:
        for key in keys[:DELETED]:
            await client.delete_object(Bucket=BUCKET, Key=PREFIX + key)
        for key in keys[DELETED : DELETED + TRUNCATED]:
            await client.put_object(Bucket=BUCKET, Key=PREFIX + key, Body=b"cut")


async def reset_marks(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"UPDATE {SCHEMA}.renditions SET damaged = NULL")
    finally:
        await conn.close()


def verify_figures(dsn: str, endpoint: str, work: Path, count: int) -> dict[str, Any]:
    import boto3

    config = config_for(dsn, endpoint, work)
    asyncio.run(migrate(config))
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS).create_bucket(
        Bucket=BUCKET
    )
    keys = [f"photos/thumb/h/img/{index:07d}.jpg.webp" for index in range(count)]
    started = time.perf_counter()
    asyncio.run(put_objects(endpoint, keys))
    asyncio.run(record(config, keys, len(b"rendition-bytes")))
    asyncio.run(damage(endpoint, keys[:: max(1, count // (DELETED + TRUNCATED))]))
    print(f"  {count:,} objects stored and recorded in {time.perf_counter() - started:.0f}s")
    heads = measured("heads", dsn, work, endpoint)
    asyncio.run(reset_marks(dsn))
    verify = measured("verify", dsn, work, endpoint)
    assert heads["found"] == verify["found"] == DELETED + TRUNCATED, (heads, verify)
    return {"objects": count, "verify": verify, "per_object": heads}


def make_uploads(work: Path, count: int) -> list[str]:
    media = work / "media"
    old = time.time() - OLD_S
    keys = []
    for index in range(count):
        key = f"uploads/{index % 100:02d}/{index:06d}.jpg"
        path = media / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"an upload")
        os.utime(path, (old, old))
        keys.append(key)
    return keys


async def list_in_table(dsn: str, keys: list[str]) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("TRUNCATE bench_photo")
        await conn.copy_records_to_table("bench_photo", records=[(k,) for k in keys], columns=["image"])
    finally:
        await conn.close()


def uploads_figures(dsn: str, work: Path, count: int) -> dict[str, Any]:
    keys = make_uploads(work, count)
    asyncio.run(list_in_table(dsn, keys[::2]))
    stat = measured("stat", dsn, work)
    make_uploads(work, count)
    uploads = measured("uploads", dsn, work)
    assert stat["deleted"] == uploads["deleted"] == count - len(keys[::2]), (stat, uploads)
    return {"files": count, "purge_uploads": uploads, "per_object": stat}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--objects", type=int, help="Recorded objects for verify (default 100,000).")
    parser.add_argument("--files", type=int, help="Upload files for purge uploads (default 20,000).")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--work", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase(args)
        return
    objects = args.objects or (10_000 if args.quick else 100_000)
    files = args.files or (4_000 if args.quick else 20_000)
    work = Path(tempfile.mkdtemp(prefix="batchthumb-listing-bench-"))
    server, endpoint = start_s3()
    SERVER.update(pid=server.process.pid, kind=server.kind)
    try:
        with bench_database(work, []) as dsn:
            print(f"listing bench: verify over {objects:,} objects, purge uploads over {files:,} files")
            verify = verify_figures(dsn, endpoint, work, objects)
            uploads = uploads_figures(dsn, work, files)
    finally:
        server.stop()
    print(f"\nS3 server: {s3_server_version(server.kind)}")
    print(
        f"{'figure':<44} {'seconds':>8} {'ratio':>6} {'requests':>22} {'peak RSS MB':>12} "
        f"{'our CPU s':>10} {'S3 CPU s':>9}"
    )
    for label, result, base in (
        ("verify: HEAD per object (64 in flight)", verify["per_object"], verify["per_object"]),
        ("verify: batchthumb (listing + SQL)", verify["verify"], verify["per_object"]),
        ("purge uploads: stat + query per file", uploads["per_object"], uploads["per_object"]),
        ("purge uploads: batchthumb", uploads["purge_uploads"], uploads["per_object"]),
    ):
        requests = ", ".join(f"{k} {v:,}" for k, v in result.get("requests", {}).items()) or "-"
        ratio = base["seconds"] / result["seconds"]
        seconds, rss = result["seconds"], result["peak_rss_mb"]
        server_cpu = f"{result['server_cpu_s']:>9.1f}" if "server_cpu_s" in result else f"{'-':>9}"
        print(
            f"{label:<44} {seconds:>8.1f} {ratio:>6.1f} {requests:>22} {rss:>12.0f} "
            f"{result['cpu_s']:>10.1f} {server_cpu}"
        )
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"listings-{stamp}{'-quick' if args.quick else ''}.json"
    s3 = s3_server_version(server.kind)
    path.write_text(
        json.dumps({"when": stamp, "s3_server": s3, "verify": verify, "uploads": uploads}, indent=2)
    )
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
