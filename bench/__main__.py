"""``make bench``: batchthumb against the libvips limit and the Django way, in one run.

Everything is generated here (nothing downloaded): a corpus of photo-like
images, a Postgres table listing them (the embedded pgserver unless
``BATCHTHUMB_TEST_DSN`` names a server), three renditions per source. Each
contender renders the same corpus to a local directory; figures are medians
over repeats, and each is reported as a ratio to its baseline.

    python -m bench            # full corpus
    python -m bench --quick    # a small one, under two minutes
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
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.baselines import RENDITIONS, init_worker, pillow_one, pyvips_one

CORPUS = {
    # name: (count_full, count_quick, width, height, format)
    "jpeg-12mp": (16, 2, 4000, 3000, "jpeg"),
    "jpeg-2mp": (96, 16, 1600, 1200, "jpeg"),
    "png-4mp": (8, 2, 2400, 1600, "png"),
    "webp-2mp": (16, 4, 1600, 1200, "webp"),
}


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


# -- baselines ---------------------------------------------------------------------


def run_loop(
    function: Callable[[tuple[str, str]], int], sources: list[str], out: Path, processes: int
) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    jobs = [(source, str(out)) for source in sources]
    started = time.perf_counter()
    if processes == 1:
        for job in jobs:
            function(job)
    else:
        with multiprocessing.get_context("spawn").Pool(processes, initializer=init_worker) as pool:
            pool.map(function, jobs, chunksize=1)
    return time.perf_counter() - started


# -- batchthumb ---------------------------------------------------------------------


def batchthumb_config(dsn: str, media: Path, out: Path, workers: int | str = "auto") -> Any:
    from batchthumb.config import config_from_dict

    return config_from_dict(
        {
            "database": {"dsn": dsn},
            "stores": {"source": {"url": f"file://{media}"}, "target": {"url": f"file://{out}"}},
            "sources": [{"name": "bench", "table": "bench_photo", "path_column": "image"}],
            "renditions": RENDITIONS,
            "limits": {"render_workers": workers},
        },
        environ={},
    )


async def run_batchthumb(config: Any, force: bool) -> tuple[float, int]:
    from batchthumb.generate import GenerateOptions, run_generate
    from batchthumb.render import configure
    from batchthumb.report import Reporter
    from batchthumb.runtime import open_runtime

    configure()
    async with open_runtime(config) as runtime:
        started = time.perf_counter()
        counters = await run_generate(
            runtime, GenerateOptions(force=force), Reporter(progress=False, stderr=io.StringIO())
        )
        return time.perf_counter() - started, counters.written


async def prepare_database(dsn: str, keys: list[str], config: Any) -> None:
    import asyncpg

    from batchthumb.registry import Registry

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_photo; DROP SCHEMA IF EXISTS batchthumb CASCADE")
        await conn.execute("CREATE TABLE bench_photo (id serial PRIMARY KEY, image text NOT NULL)")
        await conn.executemany("INSERT INTO bench_photo (image) VALUES ($1)", [(k,) for k in keys])
    finally:
        await conn.close()
    registry = await Registry.connect(config.database)
    try:
        await registry.migrate()
    finally:
        await registry.close()


# -- the run ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    import aioboto3
    import anyio
    import asyncpg
    import pyvips

    cpu = platform.processor()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except OSError:
        memory_kb = 0
    return {
        "cores": cores(),
        "cpu": cpu,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        "pyvips": pyvips.__version__,
        "anyio": anyio.__version__ if hasattr(anyio, "__version__") else "?",
        "asyncpg": asyncpg.__version__,
        "aioboto3": aioboto3.__version__ if hasattr(aioboto3, "__version__") else "?",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small corpus, under two minutes")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    repeats = args.repeats or (2 if args.quick else 3)
    n = cores()

    work = Path(tempfile.mkdtemp(prefix="batchthumb-bench-"))
    media = work / "media"
    print(f"bench in {work} ({n} cores)")
    keys = make_corpus(media, args.quick)
    sources = [str(media / key) for key in keys]
    corpus_bytes = sum(Path(s).stat().st_size for s in sources)
    print(f"corpus: {len(keys)} sources, {corpus_bytes / 1e6:.1f} MB, 3 renditions each")

    server = None
    dsn = os.environ.get("BATCHTHUMB_TEST_DSN")
    if not dsn:
        import pgserver

        server = pgserver.get_server(str(work / "pgdata"), cleanup_mode="delete")
        dsn = server.get_uri()

    config = batchthumb_config(dsn, media, work / "out-batchthumb")
    asyncio.run(prepare_database(dsn, keys, config))

    timings: dict[str, list[float]] = {"pyvips-1": [], f"pyvips-{n}": [], "pillow-1": [], "batchthumb": []}
    for repeat in range(repeats):
        timings["pyvips-1"].append(run_loop(pyvips_one, sources, work / "out-vips1", 1))
        timings[f"pyvips-{n}"].append(run_loop(pyvips_one, sources, work / "out-vipsn", n))
        if repeat == 0 or not args.quick:
            timings["pillow-1"].append(run_loop(pillow_one, sources, work / "out-pillow", 1))
        elapsed, written = asyncio.run(run_batchthumb(config, force=repeat > 0))
        assert written == 3 * len(keys), written
        timings["batchthumb"].append(elapsed)
        print(
            f"  repeat {repeat + 1}/{repeats}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in timings.items())
        )

    rates = {name: len(keys) / statistics.median(values) for name, values in timings.items()}
    limit = rates[f"pyvips-{n}"]
    figures = [
        {"name": "render limit: plain pyvips loop, 1 process", "sources_per_s": rates["pyvips-1"]},
        {"name": f"render limit: plain pyvips loop, {n} processes", "sources_per_s": limit},
        {"name": "Django way: Pillow, 1 process, decode per rendition", "sources_per_s": rates["pillow-1"]},
        {"name": "batchthumb generate, local directory", "sources_per_s": rates["batchthumb"]},
    ]
    ratios = {
        "batchthumb / pyvips limit (target >= 0.9)": rates["batchthumb"] / limit,
        "batchthumb / Django way (target >= 5)": rates["batchthumb"] / rates["pillow-1"],
        "pyvips limit / pyvips 1 process": limit / rates["pyvips-1"],
    }
    print(f"\n{'figure':<58} {'sources/s':>10} {'renditions/s':>13}")
    for figure in figures:
        print(f"{figure['name']:<58} {figure['sources_per_s']:>10.2f} {3 * figure['sources_per_s']:>13.2f}")
    print()
    for name, value in ratios.items():
        print(f"{name:<58} {value:>10.2f}")

    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    report = {
        "when": stamp,
        "quick": args.quick,
        "machine": machine(),
        "corpus": {"sources": len(keys), "bytes": corpus_bytes, "kinds": CORPUS, "renditions": RENDITIONS},
        "repeats": repeats,
        "timings_s": timings,
        "figures": figures,
        "ratios": ratios,
    }
    path = results / f"{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps(report, indent=2))
    print(f"\nresults: {path}")
    if server is not None:
        server.cleanup()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
