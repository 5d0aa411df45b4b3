"""Fixtures: a real Postgres (a fresh database per test) and moto's S3 server over HTTP.

Postgres is the embedded one from the ``pgserver`` wheel unless
``BATCHTHUMB_TEST_DSN`` names another server (``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import boto3
import pytest

from batchthumb.config import Config, config_from_dict
from batchthumb.registry import Registry

S3_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing-secret-key"}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- Postgres ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_admin_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    dsn = os.environ.get("BATCHTHUMB_TEST_DSN")
    if dsn:
        yield dsn
        return
    import pgserver

    pgdata = tmp_path_factory.mktemp("pgdata")
    server = pgserver.get_server(str(pgdata), cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def _with_database(dsn: str, database: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


async def _admin(dsn: str, statement: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def pg_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A DSN to a fresh, empty database, dropped after the test."""
    import asyncio

    name = f"bt_test_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(pg_admin_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(pg_admin_dsn, name)
    finally:
        asyncio.run(_admin(pg_admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def create_photo_table(
    dsn: str,
    keys: list[str],
    table: str = "gallery_photo",
    fingerprint: bool = True,
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


async def sql(dsn: str, statement: str, *args: Any) -> list[Any]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(statement, *args))
    finally:
        await conn.close()


async def init_registry(config: Config) -> None:
    registry = await Registry.connect(config.database)
    try:
        await registry.migrate()
    finally:
        await registry.close()


# -- S3 (moto's server, over HTTP) -----------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto server did not start") from None
            time.sleep(0.1)
    try:
        yield endpoint
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **S3_CREDENTIALS)


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"bt-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


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


# -- configs ---------------------------------------------------------------------------

RENDITIONS = {
    "thumb": {"mode": "crop", "width": 120, "height": 120, "format": "webp", "quality": 75},
    "medium": {"mode": "fit", "width": 400, "height": 400, "format": "jpeg"},
    "wide": {"mode": "fill", "width": 320, "height": 180, "format": "png"},
}


def make_config(
    dsn: str,
    source: dict[str, Any] | str,
    target: dict[str, Any] | str,
    renditions: dict[str, Any] | None = None,
    **source_set: Any,
) -> Config:
    data: dict[str, Any] = {
        "database": {"dsn": dsn},
        "stores": {
            "source": source if isinstance(source, dict) else {"url": source},
            "target": target if isinstance(target, dict) else {"url": target},
        },
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
        "limits": {"render_workers": 2, "io_concurrency": 8, "record_interval_s": 0.2},
    }
    return config_from_dict(data, environ={})


def write_sources(media: Path, specs: list[tuple[str, bytes]]) -> list[str]:
    keys = []
    for key, data in specs:
        path = media / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        keys.append(key)
    return keys
