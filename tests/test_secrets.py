"""Secrets never leave: not in logs, errors, --verbose, --json, tracebacks or the registry."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from batchthumb.samples import sample_bytes
from tests.conftest import create_photo_table, sql

DB_PASSWORD = "pw-Zq81-never-print-me"
S3_SECRET = "s3-secret-Kx02-never-print-me"
S3_TOKEN = "session-token-Vv55-never-print-me"

CONFIG = """
[database]
dsn = "{dsn}"
[stores.source]
url = "s3://{bucket}/media/"
endpoint_url = "{endpoint}"
region = "us-east-1"
addressing_style = "path"
access_key_id = "testing"
secret_access_key = "{secret}"
session_token = "{token}"
[stores.target]
url = "s3://{bucket}/renditions/"
endpoint_url = "{endpoint}"
region = "us-east-1"
addressing_style = "path"
access_key_id = "testing"
secret_access_key = "{secret}"
session_token = "{token}"
[[sources]]
name = "photos"
table = "gallery_photo"
path_column = "image"
[renditions.thumb]
width = 64
"""


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
    config = tmp_path / "batchthumb.toml"
    text = CONFIG.format(dsn=dsn, bucket=bucket, endpoint=s3_endpoint, secret=S3_SECRET, token=S3_TOKEN)
    config.write_text(text)
    bad_key = tmp_path / "bad-key.toml"
    bad_key.write_text(text.replace("width = 64", "width = 64\nwidht = 1"))
    bad_db = tmp_path / "bad-db.toml"
    bad_db.write_text(text.replace(dsn, with_password("postgresql://app@127.0.0.1:1/app", DB_PASSWORD)))

    outputs: list[str] = []

    def run(path: Path, *args: str, env: dict[str, str] | None = None) -> int:
        result = subprocess.run(
            [sys.executable, "-m", "batchthumb", "--config", str(path), *args],
            capture_output=True, text=True, timeout=120, check=False, env={**os.environ, **(env or {})},
        )  # fmt: skip
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
