"""Secrets never leave: not in logs, errors, --verbose, --json, tracebacks or the registry."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from batchthumb.samples import sample_bytes
from tests.helpers import batchthumb, create_photo_table, sql, write_config

DB_PASSWORD = "pw-Zq81-never-print-me"
S3_SECRET = "s3-secret-Kx02-never-print-me"
S3_TOKEN = "session-token-Vv55-never-print-me"


def with_password(dsn: str, password: str) -> str:
    parts = urlsplit(dsn)
    user = parts.username or "postgres"
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit(parts._replace(netloc=f"{user}:{password}@{host}"))


def test_no_output_of_a_failing_run_contains_a_secret(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    s3_client.put_object(Bucket=bucket, Key="media/good.jpg", Body=sample_bytes(200, 100, "jpeg"))
    s3_client.put_object(Bucket=bucket, Key="media/corrupt.jpg", Body=b"\xff\xd8\xff broken")
    asyncio.run(create_photo_table(pg_dsn, ["good.jpg", "corrupt.jpg", "missing.jpg"]))
    dsn = with_password(pg_dsn, DB_PASSWORD)  # trust auth: the server ignores it, we must hide it
    store = {"endpoint_url": s3_endpoint, "region": "us-east-1", "addressing_style": "path"}
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
