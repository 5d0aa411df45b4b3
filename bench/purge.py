"""Purge benchmark: batchthumb's batched deletes against one key at a time, on an S3 server (SeaweedFS;
BATCHTHUMB_BENCH_S3=moto for moto's).

    python -m bench.purge            # 20,000 objects
    python -m bench.purge --quick    # 2,000 objects

The baseline is what the peers do on S3: one ``DeleteObject`` request per key,
one after another. Both run in the same process against the same server.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import resource
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aioboto3
import anyio

from bench.common import bench_database, migrate
from tests import s3servers
from tests.s3servers import S3Server

CREDENTIALS = {"aws_access_key_id": "bench", "aws_secret_access_key": "bench-secret"}
BUCKET = "bench"
PREFIX = "renditions/"


def start_s3() -> tuple[S3Server, str]:
    """The bench's S3 server: SeaweedFS unless ``BATCHTHUMB_BENCH_S3=moto``; its endpoint."""
    server = s3servers.start(os.environ.get("BATCHTHUMB_BENCH_S3", "seaweedfs"), *CREDENTIALS.values())
    return server, server.endpoint


def s3_server_version(kind: str) -> str:
    if kind == "moto":
        from importlib.metadata import version

        return f"moto {version('moto')}"
    out = subprocess.run([s3servers.weed_binary(), "version"], capture_output=True, text=True, check=False)
    return f"seaweedfs {out.stdout.split()[2] if len(out.stdout.split()) > 2 else '?'}"


async def put_objects(endpoint: str, keys: list[str]) -> None:
    session = aioboto3.Session(region_name="us-east-1", **CREDENTIALS)
    limiter = anyio.CapacityLimiter(32)
    async with session.client("s3", endpoint_url=endpoint) as client:

        async def put(key: str) -> None:
            async with limiter:
                await client.put_object(Bucket=BUCKET, Key=PREFIX + key, Body=b"rendition-bytes")

        async with anyio.create_task_group() as tg:
            for key in keys:
                tg.start_soon(put, key)


async def per_key_deletes(endpoint: str, keys: list[str]) -> float:
    session = aioboto3.Session(region_name="us-east-1", **CREDENTIALS)
    async with session.client("s3", endpoint_url=endpoint) as client:
        started = time.perf_counter()
        for key in keys:
            await client.delete_object(Bucket=BUCKET, Key=PREFIX + key)
        return time.perf_counter() - started


async def record_rows(config: Any, keys: list[str]) -> None:
    from batchthumb.registry import RecordRow, Registry

    registry = await Registry.connect(config.database)
    try:
        target = config.stores.target.location.url
        rows = [RecordRow("bench", f"src/{key}", "thumb", "h", None, target, key, 1, 1, 15) for key in keys]
        for start in range(0, len(rows), 5000):
            await registry.record(rows[start : start + 5000])
    finally:
        await registry.close()


async def batchthumb_purge(config: Any, kind: str) -> tuple[float, dict[str, int], int]:
    from batchthumb.jobs import purge_job
    from batchthumb.purge import PurgeOptions
    from batchthumb.report import Reporter
    from batchthumb.runtime import open_runtime

    async with open_runtime(config) as runtime:
        started = time.perf_counter()
        reporter = Reporter(progress=False, stderr=io.StringIO())
        counters = await purge_job(runtime, PurgeOptions(kind), reporter).execute()
        return time.perf_counter() - started, dict(runtime.target_store.requests), counters.deleted


class CpuClock:
    """CPU seconds of this process and of the S3 server (``server_pid``) since ``start``."""

    def __init__(self, server_pid: int | None) -> None:
        import psutil

        self.server = psutil.Process(server_pid) if server_pid else None

    def _now(self) -> tuple[float, float]:
        ours = resource.getrusage(resource.RUSAGE_SELF)
        theirs = self.server.cpu_times() if self.server else None
        return ours.ru_utime + ours.ru_stime, (theirs.user + theirs.system) if theirs else 0.0

    def start(self) -> None:
        self.began = self._now()

    def lap(self) -> dict[str, float]:
        ours, theirs = self._now()
        return {"ours": round(ours - self.began[0], 2), "s3_server": round(theirs - self.began[1], 2)}


async def measure(
    endpoint: str, dsn: str, count: int, work: Path, server_pid: int | None = None
) -> dict[str, Any]:
    """Per-key deletes, then batchthumb's prefix and referenced purges, of ``count`` objects;
    each phase's CPU seconds, ours and the S3 server's."""
    import boto3

    from batchthumb.config import config_from_dict

    keys = [f"photos/thumb/h/img/{index:06d}.jpg.webp" for index in range(count)]
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS).create_bucket(
        Bucket=BUCKET
    )
    store = {"endpoint_url": endpoint, "region": "us-east-1", "addressing_style": "path"}
    store |= {"access_key_id": CREDENTIALS["aws_access_key_id"]}
    store |= {"secret_access_key": CREDENTIALS["aws_secret_access_key"]}
    config = config_from_dict(
        {
            "database": {"dsn": dsn, "registry_schema": "batchthumb_purge_bench"},
            "stores": {
                "source": {"url": f"file://{work}/media"},
                "target": {"url": f"s3://{BUCKET}/{PREFIX}", **store},
            },
            "sources": [{"name": "bench", "table": "bench_photo", "path_column": "image"}],
            "renditions": {"thumb": {"width": 100}},
        },
        environ={},
    )
    await migrate(config)
    clock, cpu_s = CpuClock(server_pid), {}
    await put_objects(endpoint, keys)
    clock.start()
    per_key_s = await per_key_deletes(endpoint, keys)
    cpu_s["per_key"] = clock.lap()
    await put_objects(endpoint, keys)
    clock.start()
    prefix_s, prefix_requests, deleted = await batchthumb_purge(config, "prefix")
    cpu_s["prefix"] = clock.lap()
    assert deleted == count, deleted
    await put_objects(endpoint, keys)
    await record_rows(config, keys)
    clock.start()
    referenced_s, referenced_requests, deleted = await batchthumb_purge(config, "referenced")
    cpu_s["referenced"] = clock.lap()
    assert deleted == count, deleted
    return {
        "objects": count,
        "seconds": {"per_key": per_key_s, "prefix": prefix_s, "referenced": referenced_s},
        "cpu_s": cpu_s,
        "requests": {"prefix": prefix_requests, "referenced": referenced_requests},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--objects", type=int)
    args = parser.parse_args()
    count = args.objects or (2000 if args.quick else 20_000)
    work = Path(tempfile.mkdtemp(prefix="batchthumb-purge-bench-"))
    server, endpoint = start_s3()
    try:
        with bench_database(work, []) as dsn:
            print(f"purge bench: {count:,} objects on {server.kind} at {endpoint}")
            result = asyncio.run(measure(endpoint, dsn, count, work, server.process.pid))
    finally:
        server.stop()
    seconds, requests = result["seconds"], result["requests"]
    per_key = count / seconds["per_key"]
    cpu = result["cpu_s"]
    print(f"\nS3 server: {s3_server_version(server.kind)}")
    print(
        f"{'figure':<30} {'objects/s':>10} {'ratio':>8} {'DeleteObjects':>14} "
        f"{'our CPU s':>10} {'S3 CPU s':>9}"
    )
    print(
        f"{'one key at a time':<30} {per_key:>10,.0f} {1.0:>8.1f} {'-':>14} "
        f"{cpu['per_key']['ours']:>10.1f} {cpu['per_key']['s3_server']:>9.1f}"
    )
    for kind in ("prefix", "referenced"):
        rate = count / seconds[kind]
        calls = requests[kind].get("DeleteObjects", 0)
        print(
            f"{'batchthumb purge ' + kind:<30} {rate:>10,.0f} {rate / per_key:>8.1f} {calls:>14} "
            f"{cpu[kind]['ours']:>10.1f} {cpu[kind]['s3_server']:>9.1f}"
        )
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"purge-{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(
        json.dumps({"when": stamp, "s3_server": s3_server_version(server.kind), **result}, indent=2)
    )
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
