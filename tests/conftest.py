"""Fixtures: a real Postgres (a fresh database per test, cloned from a migrated template) and
an S3 server over HTTP (``s3servers.py``). What tests call is in ``helpers.py``.

Postgres is the embedded one from the ``pgserver`` wheel unless
``BATCHTHUMB_TEST_DSN`` names another server (``postgresql://postgres@127.0.0.1:5432/postgres``).
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import boto3
import pytest

from batchthumb.config import DatabaseConfig
from batchthumb.registry import Registry
from tests import redis_server, s3servers
from tests.helpers import S3_CREDENTIALS

SERVICE_FIXTURES = frozenset(
    {
        "pg_admin_dsn",
        "pg_template",
        "pg_dsn",
        "empty_pg_dsn",
        "s3_server",
        "s3_endpoint",
        "moto_endpoint",
        "s3_client",
        "bucket",
        "redis_url",
        "site_cache",
    }
)
"""The fixtures that start or reach a service: a test using none of them (directly or through
another fixture) is a unit test."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark the unit tier: ``make test-unit`` (``-m unit``) runs it alone in under a minute."""
    for item in items:
        if not SERVICE_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.unit)


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


def _admin(dsn: str, statement: str) -> None:
    async def execute() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(execute())


def _database(admin_dsn: str, template: str | None = None) -> Iterator[str]:
    name = f"bt_test_{uuid.uuid4().hex[:12]}"
    _admin(admin_dsn, f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    try:
        yield _with_database(admin_dsn, name)
    finally:
        _admin(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _migrate(dsn: str) -> None:
    registry = await Registry.connect(DatabaseConfig(dsn=dsn))  # type: ignore[arg-type]
    try:
        await registry.migrate()
    finally:
        await registry.close()


@pytest.fixture(scope="session")
def pg_template(pg_admin_dsn: str) -> Iterator[str]:
    """A database with the registry migrated, made once: each test's database is a copy."""
    for dsn in _database(pg_admin_dsn):
        asyncio.run(_migrate(dsn))
        yield urlsplit(dsn).path.lstrip("/")


@pytest.fixture
def pg_dsn(pg_admin_dsn: str, pg_template: str) -> Iterator[str]:
    """A DSN to a fresh database whose registry is migrated, dropped after the test."""
    yield from _database(pg_admin_dsn, template=pg_template)


@pytest.fixture
def other_pg_dsn(pg_admin_dsn: str, pg_template: str) -> Iterator[str]:
    """A second fresh database like ``pg_dsn``'s (two runs from the same start)."""
    yield from _database(pg_admin_dsn, template=pg_template)


@pytest.fixture
def empty_pg_dsn(pg_admin_dsn: str) -> Iterator[str]:
    """A DSN to a fresh, empty database (no registry: for the tests of ``init``)."""
    yield from _database(pg_admin_dsn)


# -- S3 (SeaweedFS by default, moto where a test needs a mock; over HTTP) ---------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[s3servers.S3Server]:
    """The suite's S3 server: SeaweedFS unless ``BATCHTHUMB_TEST_S3=moto``."""
    with s3servers.running(s3servers.default_kind(), **_credentials()) as server:
        yield server


@pytest.fixture(scope="session")
def s3_endpoint(s3_server: s3servers.S3Server) -> str:
    return s3_server.endpoint


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server, for the tests that need what only a mock gives."""
    with s3servers.running("moto", **_credentials()) as server:
        yield server.endpoint


def _credentials() -> dict[str, str]:
    return {
        "access_key_id": S3_CREDENTIALS["aws_access_key_id"],
        "secret_access_key": S3_CREDENTIALS["aws_secret_access_key"],
    }


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", **S3_CREDENTIALS)


@pytest.fixture
def bucket(s3_client: Any) -> str:
    name = f"bt-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=name)
    return name


# -- Redis (the site's shared cache) -----------------------------------------------------


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real Redis server for the session; each test that uses it gets it flushed."""
    with redis_server.running() as url:
        yield url


@pytest.fixture
def site_cache(redis_url: str) -> str:
    """The Redis URL, emptied for this test."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        client.flushall()
    finally:
        client.close()
    return redis_url
