"""Throughput of 1, 2 and 4 shard processes on the bench corpus, local stores, as ratios.

    python -m bench.shards [--quick] [--processes 1,2,4]

Each count runs that many ``batchthumb generate --shard I/N`` processes at once (their
start-up included, as in a real sharded job) against one Postgres, into a fresh
registry schema and directory, and reports the median wall time over repeats.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.__main__ import cores, make_corpus
from bench.common import bench_database

CONFIG = """
[database]
dsn = "{dsn}"
registry_schema = "{schema}"
[stores.source]
url = "file://{media}"
[stores.target]
url = "file://{out}"
[[sources]]
name = "bench"
table = "bench_photo"
path_column = "image"
[renditions.large]
width = 1200
height = 1200
quality = 82
[renditions.medium]
width = 600
height = 600
format = "webp"
[renditions.small]
width = 300
height = 300
"""


def run_shards(work: Path, dsn: str, media: Path, processes: int, repeat: int) -> float:
    schema = f"bt_shards_{processes}_{repeat}"
    config = work / f"{schema}.toml"
    config.write_text(CONFIG.format(dsn=dsn, schema=schema, media=media, out=work / schema))
    base = [sys.executable, "-m", "batchthumb", "--config", str(config)]
    subprocess.run([*base, "init"], check=True, capture_output=True)
    started = time.perf_counter()
    running = [
        subprocess.Popen([*base, "generate", "--shard", f"{index}/{processes}"], stderr=subprocess.PIPE)
        for index in range(processes)
    ]
    for process in running:
        _, err = process.communicate()
        if process.returncode != 0:
            raise RuntimeError(err.decode())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    counts = [int(n) for n in args.processes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="batchthumb-shards-"))
    media = work / "media"
    keys = make_corpus(media, args.quick)
    with bench_database(work, keys) as dsn:
        timings: dict[int, list[float]] = {n: [] for n in counts}
        for repeat in range(args.repeats):
            for n in counts:
                timings[n].append(run_shards(work, dsn, media, n, repeat))
            print(
                f"  repeat {repeat + 1}: " + ", ".join(f"{n} proc {t[-1]:.2f}s" for n, t in timings.items())
            )
    rates = {n: len(keys) / statistics.median(values) for n, values in timings.items()}
    print(f"\n{len(keys)} sources, {cores()} cores")
    print(f"{'processes':>9} {'sources/s':>10} {'x 1 process':>12}")
    for n in counts:
        print(f"{n:>9} {rates[n]:>10.2f} {rates[n] / rates[counts[0]]:>12.2f}")
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"shards-{stamp}{'-quick' if args.quick else ''}.json"
    path.write_text(json.dumps({"when": stamp, "cores": cores(), "sources": len(keys), "timings_s": timings,
                                "sources_per_s": rates}, indent=2))  # fmt: skip
    print(f"results: {path}")


if __name__ == "__main__":
    main()
