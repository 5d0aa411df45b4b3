"""Secrets never leave: not in logs, errors, --verbose, --json, tracebacks or the registry."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import boto3

from batchthumb.samples import sample_bytes
from tests.helpers import (
    S3_CREDENTIALS,
    batchthumb,
    create_photo_table,
    s3_keys,
    s3_store_settings,
    sql,
    write_config,
)

DB_PASSWORD = "pw-Zq81-never-print-me"
S3_SECRET = "s3-secret-Kx02-never-print-me"
S3_TOKEN = "session-token-Vv55-never-print-me"


def with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def test_no_output_of_a_failing_run_contains_a_secret(
    pg_dsn: str, moto_endpoint: str, tmp_path: Path
) -> None:
    # moto: the secret and the session token are made up, and only a mock takes any
    s3_client = boto3.client("s3", endpoint_url=moto_endpoint, region_name="us-east-1", **S3_CREDENTIALS)
    bucket = f"bt-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket)
    s3_client.put_object(Bucket=bucket, Key="media/good.jpg", Body=sample_bytes(200, 100, "jpeg"))
    s3_client.put_object(Bucket=bucket, Key="media/corrupt.jpg", Body=b"\xff\xd8\xff broken")
    asyncio.run(create_photo_table(pg_dsn, ["good.jpg", "corrupt.jpg", "missing.jpg"]))
    dsn = with_password(pg_dsn, DB_PASSWORD)  # trust auth: the server ignores it, we must hide it
    store = {"endpoint_url": moto_endpoint, "region": "us-east-1", "addressing_style": "path"}
    store |= {"access_key_id": "testing", "secret_access_key": S3_SECRET, "session_token": S3_TOKEN}
    source, target = {**store, "url": f"s3://{bucket}/media/"}, {**store, "url": f"s3://{bucket}/renditions/"}
    renditions = {"thumb": {"width": 64}}
    config = write_config(
        tmp_path / "batchthumb.toml", dsn, source, target, renditions, {}, fingerprint_column=None
    )
    text = config.read_text()
    bad_key = tmp_path / "bad-key.toml"
    bad_key.write_text(text.replace("width = 64", "width = 64\nwidht = 1"))
    bad_db = tmp_path / "bad-db.toml"
    bad_db.write_text(text.replace(dsn, with_password("postgresql://app@127.0.0.1:1/app", DB_PASSWORD)))

    outputs: list[str] = []

    def run(path: Path, *args: str, env: dict[str, str] | None = None) -> int:
        result = batchthumb(path, *args, env=env)
        outputs.append(result.stdout + result.stderr)
        return result.returncode

    assert run(config, "init", "--verbose") == 0
    assert run(config, "generate", "--verbose", "--json") == 3  # corrupt and missing sources
    assert run(config, "generate", "--retry-failed", "--verbose") == 3
    assert run(config, "status", "--json") == 0
    assert run(config, "regenerate", "--dry-run", "--verbose", "--json") == 0
    assert run(config, "purge", "orphans", "--dry-run", "--verbose", "--json") == 0
    assert run(config, "purge", "referenced", "--max-delete", "0", "--verbose") == 1
    assert run(bad_key, "generate", "--verbose") == 2
    assert run(bad_db, "generate", "--verbose") == 1  # aborted, traceback shown with --verbose
    # secrets given through the environment are just as hidden
    env = {
        "BATCHTHUMB_STORES__TARGET__SECRET_ACCESS_KEY": S3_SECRET,
        "BATCHTHUMB_LIMITS__IO_CONCURRENCY": "x",
    }
    assert run(config, "generate", env=env) == 2

    everything = "\n".join(outputs)
    assert "error: cannot connect to postgresql://app:***@127.0.0.1:1/app" in everything
    assert "Traceback" in everything  # the verbose outputs were really checked
    for secret in (DB_PASSWORD, S3_SECRET, S3_TOKEN):
        assert secret not in everything
        for table in ("runs", "failures", "renditions"):
            dumped = asyncio.run(sql(pg_dsn, f"SELECT * FROM batchthumb.{table}"))
            assert secret not in repr([dict(row) for row in dumped]), table


def test_refused_credentials_stop_the_run_in_one_line(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    """The S3 server checks signatures: a wrong secret stops the run, not one failure per source."""
    for name in ("a.jpg", "b.jpg", "c.jpg"):
        s3_client.put_object(Bucket=bucket, Key=f"media/{name}", Body=sample_bytes(200, 100, "jpeg"))
    asyncio.run(create_photo_table(pg_dsn, ["a.jpg", "b.jpg", "c.jpg"]))
    source = s3_store_settings(s3_endpoint, f"s3://{bucket}/media/")
    target = s3_store_settings(s3_endpoint, f"s3://{bucket}/renditions/")
    renditions = {"thumb": {"width": 64}}
    for where, settings in (("target", target), ("source", source)):
        wrong = {**settings, "secret_access_key": S3_SECRET}
        stores = (source, wrong) if where == "target" else (wrong, target)
        path = tmp_path / f"wrong-{where}.toml"
        config = write_config(path, pg_dsn, *stores, renditions, {}, fingerprint_column=None)
        result = batchthumb(config, "generate")
        assert result.returncode == 1, result.stderr
        lines = result.stderr.strip().splitlines()
        assert lines[-1].startswith("error: "), lines
        assert "SignatureDoesNotMatch: the store refused the credentials" in lines[-1]
        assert f"s3://{bucket}/{'renditions' if where == 'target' else 'media'}/" in lines[-1]
        assert S3_SECRET not in result.stdout + result.stderr
        # no source is blamed for the store's refusal, and nothing was written
        assert asyncio.run(sql(pg_dsn, "SELECT * FROM batchthumb.failures")) == []
        assert s3_keys(s3_client, bucket, "renditions/") == {}
    config = write_config(
        tmp_path / "right.toml", pg_dsn, source, target, renditions, {}, fingerprint_column=None
    )
    assert batchthumb(config, "generate").returncode == 0
    assert len(s3_keys(s3_client, bucket, "renditions/")) == 3
