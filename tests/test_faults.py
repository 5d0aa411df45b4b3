"""Faults in the services: S3 errors, resets and timeouts are retried; an outage stops the run;
dropped Postgres connections are survived."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
import pyvips

from batchthumb.config import Config
from batchthumb.counters import GenerateCounters
from batchthumb.errors import StoreError
from batchthumb.samples import sample_bytes
from tests import helpers
from tests.faults import CuttableTcpProxy, FaultProxy
from tests.helpers import (
    create_photo_table,
    make_config,
    s3_keys,
    s3_store_settings,
    sql,
    write_sources,
)

pytestmark = pytest.mark.anyio

KINDS = ("503", "500", "reset", "timeout")


def s3_config(dsn: str, endpoint: str, bucket: str, **limits: Any) -> Config:
    def store(prefix: str) -> dict[str, Any]:
        return {**s3_store_settings(endpoint, f"s3://{bucket}/{prefix}"), "timeout_s": 1.0, "max_attempts": 5}

    config = make_config(dsn, store("media/"), store("renditions/"))
    if limits:
        config = config.model_copy(update={"limits": config.limits.model_copy(update=limits)})
    return config


async def generate(config: Config) -> tuple[GenerateCounters, dict[str, int]]:
    """Generate; the counters and every request (the target's marked ``target``)."""
    counters, source_requests, target_requests = await helpers.generate(config)
    return counters, source_requests | {f"target {k}": v for k, v in target_requests.items()}


@pytest.fixture
async def sources(pg_dsn: str, s3_client: Any, bucket: str) -> list[str]:
    keys = [f"p/{index}.jpg" for index in range(6)]
    for index, key in enumerate(keys):
        s3_client.put_object(
            Bucket=bucket, Key=f"media/{key}", Body=sample_bytes(320, 240, "jpeg", seed=index)
        )
    await create_photo_table(pg_dsn, keys)
    return keys


@pytest.mark.timeout(180)
async def test_errors_resets_and_timeouts_are_retried(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, sources: list[str]
) -> None:
    # every third request fails once, cycling through the kinds; its retry goes through
    def every_third(n: int, method: str, path: str) -> str | None:
        return KINDS[(n // 3) % len(KINDS)] if n % 3 == 0 else None

    with FaultProxy(s3_endpoint, every_third, stall_s=2.5) as proxy:
        config = s3_config(pg_dsn, proxy.endpoint, bucket)
        counters, requests = await generate(config)
    print(f"\nfaults injected: {dict(proxy.injected)}; requests sent: {requests}")
    assert (counters.written, counters.failed) == (18, 0)
    assert all(proxy.injected[kind] >= 1 for kind in KINDS), proxy.injected
    # each fault cost exactly one more request, and nothing else was sent twice: 6 GETs, 18 PUTs,
    # and a HEAD per source once its renditions are recorded (still the version read?)
    assert proxy.requests == 6 + 18 + 6 + sum(proxy.injected.values())
    # botocore's own retries (the resets are re-sent below it, by aiohttp's connection pool)
    sent = requests["GetObject"] + requests.get("HeadObject", 0) + requests["target PutObject"]
    assert sent >= 30 + sum(proxy.injected[kind] for kind in ("503", "500", "timeout"))
    stored = s3_keys(s3_client, bucket, "renditions/")
    assert len(stored) == 18
    for key in stored:
        data = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert pyvips.Image.new_from_buffer(data, "").width > 0  # whole objects, not partial ones


@pytest.mark.timeout(180)
async def test_a_sustained_outage_stops_the_run_with_a_clear_error(
    pg_dsn: str, s3_endpoint: str, bucket: str, sources: list[str]
) -> None:
    def outage(n: int, method: str, path: str) -> str | None:
        return "503"

    with FaultProxy(s3_endpoint, outage) as proxy:
        config = s3_config(pg_dsn, proxy.endpoint, bucket, max_consecutive_store_errors=3)
        with pytest.raises(StoreError) as error:
            await generate(config)
    message = error.value.message
    assert message.startswith("3 store requests failed in a row after their retries, so the run stops")
    assert "SlowDown" in message
    assert proxy.injected["503"] >= 3 * 5  # every request was tried max_attempts times
    assert await sql(pg_dsn, "SELECT * FROM batchthumb.renditions") == []
    (run,) = await sql(pg_dsn, "SELECT outcome FROM batchthumb.runs")
    assert run["outcome"] == "failed"
    # what failed before the stop is recorded as retryable, never as a lasting failure
    failures = await sql(pg_dsn, "SELECT permanent FROM batchthumb.failures")
    assert all(not row["permanent"] for row in failures)


def postgres_upstream(dsn: str) -> tuple[tuple[str, int] | str, str]:
    """Where a DSN's server listens (a TCP address or a Unix socket), and its database."""
    parts = urlsplit(dsn)
    query = parse_qs(parts.query)
    host = query.get("host", [parts.hostname or "127.0.0.1"])[0]
    port = int(query.get("port", [parts.port or 5432])[0])
    database = parts.path.lstrip("/")
    if host.startswith("/"):
        return f"{host}/.s.PGSQL.{port}", database
    return (host, port), database


@pytest.mark.timeout(180)
async def test_dropped_registry_connections_are_survived(pg_dsn: str, tmp_path: Path) -> None:
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(
        media, [(f"p/{i:03d}.jpg", sample_bytes(320, 240, "jpeg", seed=i)) for i in range(40)]
    )
    await create_photo_table(pg_dsn, keys)
    upstream, database = postgres_upstream(pg_dsn)
    with CuttableTcpProxy(upstream) as proxy:
        dsn = f"postgresql://postgres@127.0.0.1:{proxy.port}/{database}"
        config = make_config(dsn, media, out)
        config = config.model_copy(
            update={"limits": config.limits.model_copy(update={"record_batch": 6, "page_size": 10})}
        )

        cuts = 0

        async def cut_while_running() -> None:
            # three times, once rows are being recorded, drop every connection mid-statement
            nonlocal cuts
            while cuts < 3:
                await anyio.sleep(0.05)
                rows = await sql(pg_dsn, "SELECT count(*) FROM batchthumb.renditions")
                if rows[0][0] >= 15 * (cuts + 1):
                    proxy.cut()
                    cuts += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(cut_while_running)
            counters, _ = await generate(config)
            tg.cancel_scope.cancel()
    print(f"\n{proxy.connections_cut} statements lost with their connections; {counters.written} written")
    assert cuts == 3
    assert proxy.connections_cut >= 3
    assert (counters.written, counters.failed) == (120, 0)
    rows = await sql(pg_dsn, "SELECT source_key, rendition, object_key, bytes FROM batchthumb.renditions")
    assert len(rows) == 120  # each recorded once: the retried upserts overwrote, never duplicated
    assert all((out / row["object_key"]).stat().st_size == row["bytes"] for row in rows)
    (run,) = await sql(pg_dsn, "SELECT outcome FROM batchthumb.runs")
    assert run["outcome"] == "completed"
