"""Profile one batchthumb ``generate`` over the bench corpus with pyinstrument.

    python -m bench.profile [--store local|s3] [--quick]

Writes the profile as text under ``bench/results/`` and prints its top. The
render threads appear as time in ``to_thread.run_sync`` waits on the event loop
thread; pyinstrument samples the loop's thread, so what it shows is everything
the loop does besides waiting: the pipeline's own overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pyinstrument import Profiler

from bench.__main__ import batchthumb_config, make_corpus, run_batchthumb
from bench.common import bench_database, migrate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="batchthumb-profile-"))
    media = work / "media"
    keys = make_corpus(media, args.quick)
    with bench_database(work, keys) as dsn:
        config = batchthumb_config(
            dsn, {"url": f"file://{media}"}, {"url": f"file://{work}/out"}, "bt_profile"
        )
        asyncio.run(migrate(config))
        asyncio.run(run_batchthumb(config, force=True))  # warm: imports, connections
        profiler = Profiler(interval=0.001, async_mode="enabled")
        with profiler:
            elapsed, written, _ = asyncio.run(run_batchthumb(config, force=True))
    text = profiler.output_text(unicode=False, color=False, show_all=False)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = results / f"profile-{stamp}.txt"
    path.write_text(f"{len(keys)} sources, {written} renditions in {elapsed:.2f}s\n\n{text}")
    print("\n".join(text.splitlines()[:60]))
    print(f"\nprofile: {path}")


if __name__ == "__main__":
    main()
