"""Scale-out: shards across processes, run locks, run history, the Kubernetes manifests."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchthumb.errors import UsageError
from batchthumb.samples import sample_bytes
from batchthumb.shards import Shard
from tests import helpers
from tests.faults import FaultProxy
from tests.helpers import S3_CREDENTIALS, create_photo_table, s3_keys, sql, write_config

SOURCES = 24
CONFIGS = Path(__file__).parent.parent / "configs"

RENDITIONS = {
    "thumb": {"mode": "crop", "width": 64, "height": 64, "format": "webp"},
    "medium": {"width": 200},
    "wide": {"mode": "fill", "width": 160, "height": 90, "format": "png"},
}
ENV = {
    "AWS_ACCESS_KEY_ID": S3_CREDENTIALS["aws_access_key_id"],
    "AWS_SECRET_ACCESS_KEY": S3_CREDENTIALS["aws_secret_access_key"],
}
"""The S3 credentials come from the environment here, as in a pod."""


def s3_config(path: Path, dsn: str, schema: str, bucket: str, endpoint: str, prefix: str) -> Path:
    def store(url: str) -> dict[str, Any]:
        return {"url": url, "endpoint_url": endpoint, "region": "us-east-1", "addressing_style": "path"}

    source, target = store(f"s3://{bucket}/media/"), store(f"s3://{bucket}/{prefix}/")
    limits = {"render_workers": 1}
    return write_config(path, dsn, source, target, RENDITIONS, limits, schema, fingerprint_column=None)


def batchthumb(
    config: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return helpers.batchthumb(config, *args, env={**ENV, **(env or {})})


def start(config: Path, *args: str) -> subprocess.Popen[str]:
    return helpers.start(config, *args, env=ENV, stdout=True)


@pytest.fixture
def corpus(pg_dsn: str, s3_client: Any, bucket: str) -> list[str]:
    keys = [f"p/{index:03d}.jpg" for index in range(SOURCES)]
    for index, key in enumerate(keys):
        s3_client.put_object(
            Bucket=bucket, Key=f"media/{key}", Body=sample_bytes(240, 180, "jpeg", seed=index)
        )
    asyncio.run(create_photo_table(pg_dsn, keys, fingerprint=False))
    return keys


@pytest.mark.timeout(300)
def test_four_shards_at_once_do_exactly_the_work_of_one(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, corpus: list[str], tmp_path: Path
) -> None:
    sharded = s3_config(tmp_path / "sharded.toml", pg_dsn, "bt_sharded", bucket, s3_endpoint, "sharded")
    single = s3_config(tmp_path / "single.toml", pg_dsn, "bt_single", bucket, s3_endpoint, "single")
    assert batchthumb(sharded, "init").returncode == 0
    assert batchthumb(single, "init").returncode == 0

    # shard 3 starts first, shard 0 last: the order does not matter
    processes = [
        start(sharded, "generate", "--shard", f"{index}/4", "--json", "--verbose") for index in (3, 1, 2, 0)
    ]
    outputs = [process.communicate(timeout=240) for process in processes]
    assert all(process.returncode == 0 for process in processes), [err for _, err in outputs]
    written = [json.loads(out)["written"] for out, _ in outputs]
    assert sum(written) == SOURCES * 3
    assert all(count > 0 for count in written)  # the hash spreads 24 sources over 4 shards
    writes = Counter(
        line.split()[2] for _, err in outputs for line in err.splitlines() if line.startswith("wrote ")
    )
    assert len(writes) == SOURCES * 3
    assert set(writes.values()) == {1}  # no object written by two shards

    result = batchthumb(single, "generate", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["written"] == SOURCES * 3

    def work(schema: str) -> Counter[tuple[str, str]]:
        rows = asyncio.run(sql(pg_dsn, f"SELECT source_key, rendition FROM {schema}.renditions"))
        return Counter((row["source_key"], row["rendition"]) for row in rows)

    assert work("bt_sharded") == work("bt_single")  # the union equals one unsharded run, exactly
    assert set(work("bt_sharded").values()) == {1}
    assert len(s3_keys(s3_client, bucket, "sharded/")) == SOURCES * 3

    runs = json.loads(batchthumb(sharded, "status", "--runs", "--json").stdout)["runs"]
    assert sorted(run["shard"] for run in runs if run["command"] == "generate") == [
        "0/4",
        "1/4",
        "2/4",
        "3/4",
    ]
    assert {run["state"] for run in runs} == {"completed"}
    # the shard also comes from the environment, as in the Indexed Job
    env_run = batchthumb(sharded, "generate", "--json", env={"BATCHTHUMB_SHARD": "2/4"})
    assert env_run.returncode == 0, env_run.stderr
    latest = json.loads(batchthumb(sharded, "status", "--runs", "1", "--json").stdout)["runs"][0]
    assert latest["shard"] == "2/4"


@pytest.mark.timeout(300)
def test_purges_never_overlap_and_a_dead_holder_releases_the_lock(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, corpus: list[str], tmp_path: Path
) -> None:
    stalling = [True]

    def stall_listings(n: int, method: str, path: str) -> str | None:
        # a listing (GET on the bucket itself) hangs while `stalling`: the first purge holds its lock
        return "timeout" if stalling[0] and method == "GET" and path.rstrip("/") == f"/{bucket}" else None

    with FaultProxy(s3_endpoint, stall_listings, stall_s=15) as proxy:
        config = s3_config(tmp_path / "b.toml", pg_dsn, "batchthumb", bucket, proxy.endpoint, "renditions")
        assert batchthumb(config, "init").returncode == 0
        assert batchthumb(config, "generate").returncode == 0

        first = start(config, "purge", "prefix")
        deadline = time.monotonic() + 60
        while not asyncio.run(sql(pg_dsn, "SELECT 1 FROM batchthumb.runs WHERE command = 'purge prefix'")):
            assert time.monotonic() < deadline, "the first purge never started"
            time.sleep(0.1)

        second = batchthumb(config, "purge", "orphans")
        assert second.returncode == 4, second.stderr
        assert "another run holds the lock for purge s3://" in second.stderr
        assert second.stderr.strip().startswith("error: ")
        dry = batchthumb(config, "purge", "referenced", "--dry-run")  # changes nothing: takes no lock
        assert dry.returncode == 0, dry.stderr

        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
        deadline = time.monotonic() + 20
        while True:
            runs = json.loads(batchthumb(config, "status", "--runs", "--json").stdout)["runs"]
            killed = next(run for run in runs if run["command"] == "purge prefix")
            if killed["state"] == "died":
                break
            assert time.monotonic() < deadline, killed
            time.sleep(0.2)
        assert killed["finished_at"] is None

        stalling[0] = False
        third = batchthumb(config, "purge", "prefix", "--json")
        assert third.returncode == 0, third.stderr
        assert json.loads(third.stdout)["deleted"] == SOURCES * 3
        text = batchthumb(config, "status", "--runs").stdout
        assert " died" in text
        assert " completed" in text


def test_shard_values() -> None:
    assert Shard.parse("2/4") == Shard(2, 4)
    assert Shard.parse(None) == Shard(0, 1)
    assert str(Shard.parse(" 0 / 8 ")) == "0/8"
    for bad in ("4/4", "-1/4", "1/0", "a/b", "3"):
        with pytest.raises(UsageError, match="--shard"):
            Shard.parse(bad)


def test_indexed_job_manifest() -> None:
    job = yaml.safe_load((CONFIGS / "job-sharded-backfill.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("batch/v1", "Job")
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] == 8
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert "generate" in container["args"]
    env = {item["name"]: item for item in container["env"]}
    index = env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert index == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    # the shard count in BATCHTHUMB_SHARD is the completions count, and the variable parses
    shard_value = env["BATCHTHUMB_SHARD"]["value"]
    assert shard_value == f"$(JOB_COMPLETION_INDEX)/{spec['completions']}"
    assert Shard.parse(shard_value.replace("$(JOB_COMPLETION_INDEX)", "7")) == Shard(7, 8)
    assert "secretKeyRef" in env["BATCHTHUMB_DATABASE__DSN"]["valueFrom"]
    assert pod["volumes"][0]["configMap"]["name"] == "batchthumb"
