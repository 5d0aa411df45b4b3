"""Peak RSS of one ``generate`` run, measured in its own process.

    python -m bench.memory --dsn DSN --rows 100000 --stub     # tiny stub renderer, discarding store
    python -m bench.memory --dsn DSN --media DIR --table T    # the real renderer over a corpus

Prints one JSON line: rows, seconds, peak RSS in MB (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import resource
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from batchthumb.config import config_from_dict
from batchthumb.generate import GenerateJob, GenerateOptions
from batchthumb.jobs import configure_libvips
from batchthumb.render import Rendered
from batchthumb.report import Reporter
from batchthumb.runtime import open_runtime
from batchthumb.specs import RenditionSpec
from batchthumb.stores import MemoryStore
from batchthumb.stores.base import Admit, SourceBytes, Version
from bench.baselines import RENDITIONS
from bench.common import migrate


class AnySource(MemoryStore):
    async def get_versioned(
        self, key: str, max_bytes: int | None = None, admit: Admit | None = None
    ) -> tuple[SourceBytes, Version]:
        return b"stub-source", Version("stub")

    async def version(self, key: str) -> Version | None:
        return Version("stub")


class Discard(MemoryStore):
    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.requests["put"] += 1


def stub_render(data: bytes, specs: Sequence[RenditionSpec], max_pixels: int) -> list[Rendered]:
    return [Rendered(spec.name, b"x" * 64, 10, 10) for spec in specs]


async def prepare_stub_table(dsn: str, table: str, rows: int) -> None:
    import asyncpg

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {table}")
        await conn.execute(f"CREATE TABLE {table} (id serial PRIMARY KEY, image text NOT NULL)")
        await conn.execute(
            f"INSERT INTO {table} (image) SELECT 'img/' || g || '.jpg' FROM generate_series(1, $1) g", rows
        )
    finally:
        await conn.close()


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    media = args.media or tempfile.mkdtemp()
    out = args.out or tempfile.mkdtemp()
    config = config_from_dict(
        {
            "database": {"dsn": args.dsn, "registry_schema": args.schema},
            "stores": {"source": {"url": f"file://{media}"}, "target": {"url": f"file://{out}"}},
            "sources": [{"name": "bench", "table": args.table, "path_column": "image"}],
            "renditions": RENDITIONS,
        },
        environ={},
    )
    if args.stub:
        await prepare_stub_table(args.dsn, args.table, args.rows)
    await migrate(config)
    configure_libvips(config)
    stores: dict[str, Any] = {"source_store": AnySource(), "target_store": Discard()} if args.stub else {}
    extra: dict[str, Any] = {"render_function": stub_render} if args.stub else {}
    async with open_runtime(config, **stores) as runtime:
        started = time.perf_counter()
        reporter = Reporter(progress=False, stderr=io.StringIO())
        counters = await GenerateJob(runtime, GenerateOptions(force=True), reporter, **extra).execute()
        elapsed = time.perf_counter() - started
    peak_mb = peak_rss_mb()
    return {
        "sources": counters.sources,
        "written": counters.written,
        "seconds": elapsed,
        "peak_rss_mb": peak_mb,
    }


def peak_rss_mb() -> float:
    """This process's peak RSS. ``VmHWM`` starts afresh at exec; ``ru_maxrss`` would carry the
    parent's peak across fork and exec, and report the bench driver's memory, not ours."""
    try:
        for line in open("/proc/self/status").read().splitlines():  # noqa: SIM115
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--stub", action="store_true")
    parser.add_argument("--media")
    parser.add_argument("--out")
    parser.add_argument("--table", default="bench_memory")
    parser.add_argument("--schema", default="batchthumb_memory")
    print(json.dumps(asyncio.run(main_async(parser.parse_args()))))


if __name__ == "__main__":
    main()
