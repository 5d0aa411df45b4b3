"""``make bench``: batchthumb against the libvips limit and the Django way, in one run.

Everything is generated here (nothing downloaded): a corpus of photo-like images
(12 MP and 2 MP JPEGs, large PNGs that have no shrink-on-load, WebPs), a Postgres
table listing them (the embedded pgserver unless ``BATCHTHUMB_TEST_DSN`` names a
server), three renditions per source; an S3 server (SeaweedFS, or moto with
BATCHTHUMB_BENCH_S3=moto), alone and behind a proxy
that adds a fixed delay to every request. Each figure is a median over repeats
and is reported as a ratio to its baseline from the same run.

    python -m bench            # the full run (well under 15 minutes on 2 cores)
    python -m bench --quick    # a small one (under 2 minutes)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.baselines import RENDITIONS, init_worker, pillow_one, pyvips_one
from bench.common import bench_database, migrate, sql
from bench.purge import s3_server_version

CORPUS = {
    # name: (count in the full run, count in --quick, width, height, format)
    "jpeg-12mp": (12, 2, 4000, 3000, "jpeg"),
    "jpeg-2mp": (72, 12, 1600, 1200, "jpeg"),
    "png-4mp": (8, 2, 2400, 1600, "png"),
    "webp-2mp": (12, 4, 1600, 1200, "webp"),
}
PROXY_DELAY_S = 0.030


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def make_corpus(media: Path, quick: bool) -> list[str]:
    from batchthumb.samples import sample_bytes

    keys = []
    for name, (full, small, width, height, fmt) in CORPUS.items():
        for index in range(small if quick else full):
            key = f"{name}/{index:04d}.{'jpg' if fmt == 'jpeg' else fmt}"
            path = media / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(sample_bytes(width, height, fmt, seed=index))
            keys.append(key)
    return keys


def run_loop(
    function: Callable[[tuple[str, str]], int], sources: list[str], out: Path, processes: int
) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    jobs = [(source, str(out)) for source in sources]
    if processes == 1:
        started = time.perf_counter()
        for job in jobs:
            function(job)
        return time.perf_counter() - started
    with multiprocessing.get_context("spawn").Pool(processes, initializer=init_worker) as pool:
        pool.map(abs, range(processes))  # start the workers before the clock
        started = time.perf_counter()
        pool.map(function, jobs, chunksize=1)
        return time.perf_counter() - started


# -- batchthumb ---------------------------------------------------------------------


def batchthumb_config(dsn: str, source: dict[str, Any], target: dict[str, Any], schema: str) -> Any:
    from batchthumb.config import config_from_dict

    return config_from_dict(
        {
            "database": {"dsn": dsn, "registry_schema": schema},
            "stores": {"source": source, "target": target},
            "sources": [{"name": "bench", "table": "bench_photo", "path_column": "image"}],
            "renditions": RENDITIONS,
        },
        environ={},
    )


async def run_batchthumb(config: Any, force: bool) -> tuple[float, int, dict[str, int]]:
    """One generate run: its seconds, renditions written and requests (a failure stops the bench)."""
    from batchthumb.generate import GenerateJob, GenerateOptions
    from batchthumb.jobs import configure_libvips
    from batchthumb.report import Reporter
    from batchthumb.runtime import open_runtime

    configure_libvips(config)
    async with open_runtime(config) as runtime:
        started = time.perf_counter()
        reporter = Reporter(progress=False, stderr=io.StringIO())
        counters = await GenerateJob(runtime, GenerateOptions(force=force), reporter).execute()
        if counters.failed:
            raise RuntimeError(f"{counters.failed} sources failed: {counters.failures[:3]}")
        requests = dict(runtime.source_store.requests) | dict(runtime.target_store.requests)
        return time.perf_counter() - started, counters.written, requests


# -- sections -----------------------------------------------------------------------


def render_section(work: Path, dsn: str, keys: list[str], repeats: int, quick: bool) -> dict[str, Any]:
    """Render limit, the Django way, batchthumb to a local directory and to S3 (+ latency)."""
    from bench import latency_proxy
    from bench.purge import BUCKET, CREDENTIALS, start_s3

    media = work / "media"
    sources = [str(media / key) for key in keys]
    n = cores()
    local = batchthumb_config(
        dsn, {"url": f"file://{media}"}, {"url": f"file://{work}/out-local"}, "bt_bench_local"
    )
    asyncio.run(migrate(local))

    moto, endpoint = start_s3()
    port = int(endpoint.rsplit(":", 1)[1])
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", **CREDENTIALS)
    client.create_bucket(Bucket=BUCKET)
    for key in keys:
        client.upload_file(str(media / key), BUCKET, f"media/{key}")
    timings: dict[str, list[float]] = {
        "pyvips-1": [], f"pyvips-{n}": [], "pillow-1": [], "batchthumb-local": [],
        "batchthumb-s3": [], "batchthumb-s3-latency": [],
    }  # fmt: skip
    requests: dict[str, dict[str, int]] = {}
    server_cpu_s: dict[str, list[float]] = {name: [] for name in timings if name.startswith("batchthumb")}
    import psutil

    moto_process = psutil.Process(moto.process.pid)
    proxy_cpu_s: dict[str, list[float]] = {name: [] for name in server_cpu_s}
    proxy_process, proxy_endpoint = latency_proxy.start(port, PROXY_DELAY_S)
    proxy = psutil.Process(proxy_process.pid)
    try:

        def s3(endpoint_url: str, prefix: str) -> dict[str, Any]:
            return {
                "url": f"s3://{BUCKET}/{prefix}",
                "endpoint_url": endpoint_url,
                "region": "us-east-1",
                "addressing_style": "path",
                "access_key_id": CREDENTIALS["aws_access_key_id"],
                "secret_access_key": CREDENTIALS["aws_secret_access_key"],
            }

        direct = batchthumb_config(dsn, s3(endpoint, "media/"), s3(endpoint, "out-direct/"), "bt_bench_s3")
        delayed = batchthumb_config(
            dsn, s3(proxy_endpoint, "media/"), s3(proxy_endpoint, "out-latency/"), "bt_bench_s3_latency"
        )
        asyncio.run(migrate(direct))
        asyncio.run(migrate(delayed))
        contenders = (
            ("batchthumb-local", local),
            ("batchthumb-s3", direct),
            ("batchthumb-s3-latency", delayed),
        )
        for repeat in range(repeats):
            timings["pyvips-1"].append(run_loop(pyvips_one, sources, work / "out-vips1", 1))
            timings[f"pyvips-{n}"].append(run_loop(pyvips_one, sources, work / "out-vipsn", n))
            if repeat == 0 or not quick:
                timings["pillow-1"].append(run_loop(pillow_one, sources, work / "out-pillow", 1))
            for name, config in contenders:
                moto_cpu, proxy_cpu = moto_process.cpu_times(), proxy.cpu_times()
                elapsed, written, used = asyncio.run(run_batchthumb(config, force=repeat > 0))
                after, proxy_after = moto_process.cpu_times(), proxy.cpu_times()
                assert written == 3 * len(keys), (name, written)
                timings[name].append(elapsed)
                requests[name] = used
                # CPU the S3 server spent serving this run: on 2 cores it is taken from rendering
                server_cpu_s[name].append(after.user + after.system - moto_cpu.user - moto_cpu.system)
                proxy_cpu_s[name].append(
                    proxy_after.user + proxy_after.system - proxy_cpu.user - proxy_cpu.system
                )
            print(
                f"  render repeat {repeat + 1}/{repeats}: "
                + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in timings.items())
            )
    finally:
        proxy_process.terminate()
        moto.stop()
    rates = {name: len(keys) / statistics.median(values) for name, values in timings.items()}
    return {
        "timings_s": timings,
        "sources_per_s": rates,
        "requests": requests,
        "proxy": {"delay_s": PROXY_DELAY_S},
        "s3_server_cpu_s": {name: statistics.median(values) for name, values in server_cpu_s.items()},
        "proxy_cpu_s": {name: statistics.median(values) for name, values in proxy_cpu_s.items()},
        "limit": rates[f"pyvips-{n}"],
    }


def skip_section(dsn: str, rows: int, repeats: int) -> dict[str, Any]:
    """A re-run over a registry of finished sources: planning and skipping only."""
    from batchthumb.specs import specs_for

    config = batchthumb_config(
        dsn, {"url": "file:///nonexistent/media"}, {"url": "file:///nonexistent/out"}, "bt_bench_skip"
    )
    target = config.stores.target.location.url
    statements = [
        "DROP TABLE IF EXISTS bench_photo_skip",
        "DROP SCHEMA IF EXISTS bt_bench_skip CASCADE",
    ]
    asyncio.run(sql(dsn, *statements))
    asyncio.run(migrate(config))
    inserts = [
        "CREATE TABLE bench_photo_skip (id serial PRIMARY KEY, image text NOT NULL)",
        "INSERT INTO bench_photo_skip (image)"
        f" SELECT 'img/' || g || '.jpg' FROM generate_series(1, {rows}) g",
    ]
    inserts.extend(
        "INSERT INTO bt_bench_skip.renditions SELECT 'bench', image, "
        f"'{spec.name}', '{spec.spec_hash}', NULL, '{target}', 'x/' || image, 1, 1, 10 FROM bench_photo_skip"
        for spec in specs_for(config.renditions)
    )
    inserts.append("ANALYZE")
    asyncio.run(sql(dsn, *inserts))
    config = config.model_copy(
        update={"sources": (config.sources[0].model_copy(update={"table": "bench_photo_skip"}),)}
    )
    timings = []
    for _ in range(repeats):
        elapsed, written, requests = asyncio.run(run_batchthumb(config, force=False))
        assert written == 0, written
        assert requests == {}, requests
        timings.append(elapsed)
    return {
        "rows": rows,
        "timings_s": timings,
        "sources_per_s": rows / statistics.median(timings),
        "requests": 0,
    }


def memory_section(dsn: str, work: Path, keys: list[str], quick: bool) -> dict[str, Any]:
    """Peak RSS of separate processes: stub renderer over 10k and 100k rows; real renderer on the corpus."""
    small, large = (2_000, 20_000) if quick else (10_000, 100_000)

    def probe(*args: str) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-m", "bench.memory", "--dsn", dsn, *args],
            capture_output=True, text=True, check=True, timeout=900,
        )  # fmt: skip
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))

    stub_small = probe("--stub", "--rows", str(small), "--table", "bm_small", "--schema", "bm_small")
    stub_large = probe("--stub", "--rows", str(large), "--table", "bm_large", "--schema", "bm_large")
    corpus = probe("--media", str(work / "media"), "--table", "bench_photo", "--schema", "bm_corpus",
                   "--out", str(work / "out-memory"))  # fmt: skip
    return {
        "stub": {str(small): stub_small, str(large): stub_large},
        "difference_mb": stub_large["peak_rss_mb"] - stub_small["peak_rss_mb"],
        "corpus": corpus,
    }


def machine() -> dict[str, Any]:
    import aioboto3
    import asyncpg
    import pyvips

    cpu, memory_kb = platform.processor(), 0
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        pass
    from importlib.metadata import version

    return {
        "cores": cores(),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        "pyvips": version("pyvips"),
        "pillow": version("pillow"),
        "anyio": version("anyio"),
        "asyncpg": asyncpg.__version__,
        "aioboto3": version("aioboto3") if aioboto3 else "?",
        "s3_server": s3_server_version(os.environ.get("BATCHTHUMB_BENCH_S3", "seaweedfs")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small corpus, under two minutes")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 3)
    started = time.monotonic()
    n = cores()

    work = Path(tempfile.mkdtemp(prefix="batchthumb-bench-"))
    media = work / "media"
    print(f"bench in {work} ({n} cores)")
    keys = make_corpus(media, args.quick)
    corpus_bytes = sum((media / key).stat().st_size for key in keys)
    print(f"corpus: {len(keys)} sources, {corpus_bytes / 1e6:.1f} MB, 3 renditions each")

    with bench_database(work, keys) as dsn:
        render = render_section(work, dsn, keys, repeats, args.quick)
        print("  render done")
        skip = skip_section(dsn, 20_000 if args.quick else 100_000, repeats)
        print(f"  skip done: {skip['sources_per_s']:,.0f} sources/s")
        from bench.purge import measure, start_s3

        server, endpoint = start_s3()
        try:
            count = 2_000 if args.quick else 20_000
            purge = asyncio.run(measure(endpoint, dsn, count, work, server.process.pid))
        finally:
            server.stop()
        print("  purge done")
        memory = memory_section(dsn, work, keys, args.quick)
        print("  memory done")

    rates = render["sources_per_s"]
    limit = render["limit"]
    per_key = purge["objects"] / purge["seconds"]["per_key"]
    purge_rates = {kind: purge["objects"] / purge["seconds"][kind] for kind in ("prefix", "referenced")}
    stub = memory["stub"]
    small, large = sorted(stub, key=int)
    local, latency = rates["batchthumb-local"], rates["batchthumb-s3-latency"]
    purge_text = f"{purge['objects']:,} objects vs one key at a time"
    figures = [
        ("1 render limit", "batchthumb local / pyvips loop in N processes", local, limit, ">= 0.9"),
        ("2 Django way", "batchthumb local / Pillow, 1 process, decode per rendition", local,
         rates["pillow-1"], ">= 5"),
        ("3 latency hidden", f"batchthumb S3 +{PROXY_DELAY_S * 1000:.0f} ms / batchthumb local", latency,
         local, ">= 0.8"),
        ("3 latency hidden", f"batchthumb S3 +{PROXY_DELAY_S * 1000:.0f} ms / batchthumb S3 direct", latency,
         rates["batchthumb-s3"], "(the S3 server's own CPU cost removed)"),
        ("4 skip speed", f"re-run over {skip['rows']:,} finished sources, sources/s", skip["sources_per_s"],
         50_000, ">= 1 (50,000/s)"),
        ("5 purge referenced", purge_text, purge_rates["referenced"], per_key, ">= 20"),
        ("5 purge prefix", purge_text, purge_rates["prefix"], per_key, ">= 20"),
    ]  # fmt: skip
    table = []
    print(f"\n{'figure':<20} {'measure':<58} {'value':>10} {'baseline':>10} {'ratio':>7}  target")
    for key, text, value, baseline, target in figures:
        table.append({"figure": key, "measure": text, "value": value, "baseline": baseline,
                      "ratio": value / baseline, "target": target})  # fmt: skip
        print(f"{key:<20} {text:<58} {value:>10,.1f} {baseline:>10,.1f} {value / baseline:>7.2f}  {target}")
    print(
        f"{'6 memory':<20} {'peak RSS, stub renderer, ' + small + ' vs ' + large + ' sources (MB)':<58} "
        f"{stub[large]['peak_rss_mb']:>10,.1f} {stub[small]['peak_rss_mb']:>10,.1f} "
        f"{memory['difference_mb']:>+7.1f}  < 30 MB apart"
    )
    print(
        f"{'6 memory':<20} {'peak RSS, real renderer on the corpus (MB)':<58} "
        f"{memory['corpus']['peak_rss_mb']:>10,.1f}"
    )
    print("\nsources/s: " + ", ".join(f"{name} {rate:.2f}" for name, rate in rates.items()))
    cpu, proxy_cpu = render["s3_server_cpu_s"], render["proxy_cpu_s"]
    print(
        "CPU seconds per run taken by the S3 server + the latency proxy (of the cores' time): "
        + ", ".join(
            f"{name} {cpu[name]:.2f}s + {proxy_cpu[name]:.2f}s of "
            f"{n * statistics.median(render['timings_s'][name]):.2f}s"
            for name in cpu
        )
    )
    print(
        f"DeleteObjects calls: prefix {purge['requests']['prefix'].get('DeleteObjects')}, "
        f"referenced {purge['requests']['referenced'].get('DeleteObjects')}"
    )

    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "when": stamp,
        "quick": args.quick,
        "duration_s": round(time.monotonic() - started, 1),
        "machine": machine(),
        "corpus": {"sources": len(keys), "bytes": corpus_bytes, "kinds": CORPUS, "renditions": RENDITIONS},
        "repeats": repeats,
        "table": table,
        "render": render,
        "skip": skip,
        "purge": purge,
        "memory": memory,
    }
    path = results / f"{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nresults: {path} ({report['duration_s']:.0f}s)")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
