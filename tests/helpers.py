"""What the tests share: a Django-like table, SQL, S3, one config builder, the jobs and the CLI.

Fixtures (a database per test, the S3 server) are in ``conftest.py``; everything a test
calls is here, so no test module imports another.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import tomli_w

from batchthumb.adopt import AdoptJob, AdoptOptions
from batchthumb.config import Config, config_from_dict
from batchthumb.counters import AdoptCounters, GenerateCounters, PurgeCounters, VerifyCounters
from batchthumb.errors import StoreError
from batchthumb.generate import GenerateJob, GenerateOptions, RenderFunction
from batchthumb.jobs import purge_job
from batchthumb.purge import PurgeOptions
from batchthumb.registry import Registry
from batchthumb.report import Reporter
from batchthumb.runtime import open_runtime
from batchthumb.samples import sample_bytes
from batchthumb.stores import LocalStore, ObjectInfo, Store
from batchthumb.verify import VerifyJob, VerifyOptions

S3_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing-secret-key"}

# -- sources ---------------------------------------------------------------------------

SOURCES = [
    ("images/landscape.jpg", dict(width=1200, height=800, fmt="jpeg", seed=1)),
    ("images/portrait.png", dict(width=600, height=900, fmt="png", seed=2)),
    ("images/square.webp", dict(width=700, height=700, fmt="webp", seed=3)),
    ("images/rotated.jpg", dict(width=800, height=400, fmt="jpeg", seed=4, orientation=6)),
]
UPRIGHT = {
    "images/landscape.jpg": (1200, 800),
    "images/portrait.png": (600, 900),
    "images/square.webp": (700, 700),
    "images/rotated.jpg": (400, 800),
}
"""The sources' sizes once EXIF orientation is applied."""


def source_files() -> list[tuple[str, bytes]]:
    return [(key, sample_bytes(**params)) for key, params in SOURCES]  # type: ignore[arg-type]


def write_sources(media: Path, specs: list[tuple[str, bytes]]) -> list[str]:
    keys = []
    for key, data in specs:
        path = media / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        keys.append(key)
    return keys


def files(root: Path) -> set[str]:
    """The files under ``root``, relative to it."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()


# -- Postgres --------------------------------------------------------------------------


async def sql(dsn: str, statement: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


async def create_photo_table(
    dsn: str, keys: list[str], table: str = "gallery_photo", fingerprint: bool = True
) -> None:
    """A Django-like model table: ``id``, ``image`` (the source key), ``updated_at``."""
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            f"CREATE TABLE {table} (id serial PRIMARY KEY, image varchar(255),"
            " updated_at timestamptz NOT NULL DEFAULT '2026-01-01T00:00:00Z')"
        )
        await conn.executemany(f"INSERT INTO {table} (image) VALUES ($1)", [(k,) for k in keys])
    finally:
        await conn.close()


async def init_registry(config: Config) -> tuple[int, int]:
    registry = await Registry.connect(config.database)
    try:
        return await registry.migrate()
    finally:
        await registry.close()


async def registry_rows(dsn: str, schema: str = "batchthumb") -> dict[tuple[str, str], Any]:
    """The renditions table, by (source key, rendition)."""
    rows = await sql(dsn, f"SELECT * FROM {schema}.renditions")
    return {(row["source_key"], row["rendition"]): row for row in rows}


async def runs(dsn: str) -> list[tuple[str, str]]:
    """(command, outcome) of every run, oldest first."""
    return [tuple(row) for row in await sql(dsn, "SELECT command, outcome FROM batchthumb.runs ORDER BY id")]


# -- S3 --------------------------------------------------------------------------------


def s3_store_settings(endpoint: str, url: str) -> dict[str, Any]:
    return {
        "url": url,
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "access_key_id": S3_CREDENTIALS["aws_access_key_id"],
        "secret_access_key": S3_CREDENTIALS["aws_secret_access_key"],
        "addressing_style": "path",
    }


def s3_keys(client: Any, bucket: str, prefix: str = "") -> dict[str, int]:
    keys: dict[str, int] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            keys[item["Key"]] = item["Size"]
    return keys


class FailingListing(LocalStore):
    """Lists one page, then fails (as a listing can, mid-way): a job must act on none of it."""

    async def list_pages(self, prefix: str = "") -> AsyncIterator[list[ObjectInfo]]:
        pages = 0
        async for page in super().list_pages(prefix):
            pages += 1
            if pages == 2:
                raise StoreError("LIST s3://bucket/renditions/: InternalError")
            yield page


# -- configs: one builder, as a Config or as a TOML file -------------------------------

RENDITIONS: dict[str, dict[str, Any]] = {
    "thumb": {"mode": "crop", "width": 120, "height": 120, "format": "webp", "quality": 75},
    "medium": {"mode": "fit", "width": 400, "height": 400, "format": "jpeg"},
    "wide": {"mode": "fill", "width": 320, "height": 180, "format": "png"},
}
LIMITS: dict[str, Any] = {"render_workers": 2, "io_concurrency": 8, "record_interval_s": 0.2}


def config_data(
    dsn: str,
    source: dict[str, Any] | str | Path,
    target: dict[str, Any] | str | Path | None,
    renditions: dict[str, Any] | None = None,
    limits: dict[str, Any] | None = None,
    schema: str | None = None,
    extra: dict[str, Any] | None = None,
    **source_set: Any,
) -> dict[str, Any]:
    """A config as a dict: one source set ``photos`` over ``gallery_photo``, three renditions.

    ``source`` and ``target`` are store settings, a URL, or a directory (``file://`` then);
    a ``target`` of ``None`` leaves it out (a drop-in config); ``source_set`` overrides the
    source set's keys; ``limits`` replaces the test limits; ``extra`` adds top-level tables.
    """

    def store(value: dict[str, Any] | str | Path) -> dict[str, Any]:
        if isinstance(value, dict):
            return value
        return {"url": f"file://{value}" if isinstance(value, Path) else value}

    database: dict[str, Any] = {"dsn": dsn}
    if schema:
        database["registry_schema"] = schema
    stores = {"source": store(source)} | ({} if target is None else {"target": store(target)})
    return {
        **(extra or {}),
        "database": database,
        "stores": stores,
        "sources": [
            {
                "name": "photos",
                "table": "gallery_photo",
                "key_column": "id",
                "path_column": "image",
                "fingerprint_column": "updated_at",
                **source_set,
            }
        ],
        "renditions": renditions or RENDITIONS,
        "limits": LIMITS if limits is None else limits,
    }


def make_config(*args: Any, **kwargs: Any) -> Config:
    """:func:`config_data`, validated (no environment overrides)."""
    return config_from_dict(config_data(*args, **kwargs), environ={})


def write_config(path: Path, *args: Any, **kwargs: Any) -> Path:
    """:func:`config_data`, as the TOML file a user would write."""
    data = config_data(*args, **kwargs)
    data["sources"] = [{k: v for k, v in s.items() if v is not None} for s in data["sources"]]
    path.write_text(tomli_w.dumps(data))
    return path


def with_renditions(config: Config, **changes: dict[str, Any]) -> Config:
    """The same config with some renditions' settings changed."""
    renditions = {name: spec.model_dump() for name, spec in config.renditions.items()}
    for name, change in changes.items():
        renditions[name] = {**renditions.get(name, {}), **change}
    data = config.model_dump(mode="python")
    data["database"]["dsn"] = config.database.dsn.get_secret_value()
    data["renditions"] = renditions
    return config_from_dict(data, environ={})


# -- the jobs, in process ----------------------------------------------------------------


def quiet() -> Reporter:
    return Reporter(progress=False, stderr=io.StringIO())


async def generate(
    config: Config,
    *,
    target_store: Store | None = None,
    render_function: RenderFunction | None = None,
    **options: Any,
) -> tuple[GenerateCounters, dict[str, int], dict[str, int]]:
    """Run generate (or ``command="regenerate"``); its counters and each store's request counts."""
    async with open_runtime(config, target_store=target_store) as runtime:
        job = GenerateJob(runtime, GenerateOptions(**options), quiet(), render_function=render_function)
        counters = await job.execute()
        return counters, dict(runtime.source_store.requests), dict(runtime.target_store.requests)


async def purge(
    config: Config, target_store: Store | None = None, **options: Any
) -> tuple[PurgeCounters, list[str], dict[str, int]]:
    """Run a purge; its counters, its stderr lines (verbose) and the target's request counts."""
    stderr = io.StringIO()
    async with open_runtime(config, target_store=target_store) as runtime:
        reporter = Reporter(progress=False, verbose=True, stderr=stderr)
        counters = await purge_job(runtime, PurgeOptions(**options), reporter).execute()
        requests = dict(runtime.target_store.requests)
    return counters, stderr.getvalue().splitlines(), requests


async def verify(
    config: Config, target_store: Store | None = None, **options: Any
) -> tuple[VerifyCounters, list[str], dict[str, int], dict[str, int]]:
    """Run ``verify``; its counters, its stderr lines (verbose) and each store's request counts."""
    stderr = io.StringIO()
    async with open_runtime(config, target_store=target_store) as runtime:
        reporter = Reporter(progress=False, verbose=True, stderr=stderr)
        counters = await VerifyJob(runtime, VerifyOptions(**options), reporter).execute()
        source, target = dict(runtime.source_store.requests), dict(runtime.target_store.requests)
    return counters, stderr.getvalue().splitlines(), source, target


async def adopt(config: Config, **options: Any) -> AdoptCounters:
    """Run ``adopt``; its counters."""
    async with open_runtime(config) as runtime:
        return await AdoptJob(runtime, AdoptOptions(**options), quiet()).execute()


# -- the command line, in a subprocess -----------------------------------------------------


def batchthumb(
    config: Path,
    *args: str,
    env: dict[str, str] | None = None,
    input: str | None = None,
    timeout: float = 180,
) -> subprocess.CompletedProcess[str]:
    """``python -m batchthumb --config CONFIG ARGS`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "batchthumb", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        input=input,
        check=False,
    )


def start(
    config: Path, *args: str, env: dict[str, str] | None = None, stdout: bool = False
) -> subprocess.Popen[str]:
    """The command started, ``--verbose``: its stderr to read line by line (and its stdout, if asked)."""
    return subprocess.Popen(
        [sys.executable, "-m", "batchthumb", "--config", str(config), *args, "--verbose"],
        stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
