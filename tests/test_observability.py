"""Observable runs: Prometheus metrics scraped from ``--metrics-port`` while a run lasts and
pushed to a (stub) Pushgateway when it ends, equal to the JSON summary; ``--log-format json``."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from batchthumb.samples import sample_bytes
from tests.faults import FaultProxy
from tests.helpers import create_photo_table, runs, s3_store_settings, write_config
from tests.s3servers import free_ports


class Pushgateway:
    """Takes what a Pushgateway takes (PUT / POST of the text format) and keeps it."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, str]] = []
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                received.append((self.command, self.path, body))
                self.send_response(200)
                self.end_headers()

            do_POST = do_PUT

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Pushgateway:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """(name, sorted labels) -> value of every sample in a text exposition."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def value(found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    matches = [v for (n, ls), v in found.items() if n == name and set(labels.items()) <= set(ls)]
    assert len(matches) == 1, (name, labels, matches)
    return matches[0]


def scrape(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text: str = response.read().decode()
            return text
    except (urllib.error.URLError, ConnectionError):
        return None


def test_metrics_during_the_run_and_pushed_at_its_end_equal_the_summary(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    keys = [f"p/{n}.jpg" for n in range(6)]
    for n, key in enumerate(keys):
        s3_client.put_object(Bucket=bucket, Key=f"media/{key}", Body=sample_bytes(320, 240, "jpeg", seed=n))
    s3_client.put_object(Bucket=bucket, Key="media/p/broken.jpg", Body=b"\xff\xd8\xff not a jpeg")
    asyncio.run(create_photo_table(pg_dsn, [*keys, "p/broken.jpg", "p/gone.jpg"]))
    gate = threading.Event()  # the sources' store answers only once the test has scraped
    (port,) = free_ports(1)
    with FaultProxy(s3_endpoint, lambda n, method, path: None, gate=gate) as proxy, Pushgateway() as gateway:
        source = s3_store_settings(proxy.endpoint, f"s3://{bucket}/media/")
        target = s3_store_settings(s3_endpoint, f"s3://{bucket}/renditions/")
        config = write_config(tmp_path / "batchthumb.toml", pg_dsn, source, target)
        command = [sys.executable, "-m", "batchthumb", "--log-format", "json", "--metrics-port", str(port)]
        command += ["--metrics-push", gateway.url, "--metrics-job", "backfill", "--config", str(config)]
        process = subprocess.Popen(
            [*command, "generate", "--json", "--verbose"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 120
            during = None
            while during is None and process.poll() is None and time.monotonic() < deadline:
                during = scrape(port)
                time.sleep(0.05)
            assert during is not None, "no metrics while the run lasted"
            live = samples(during)
            assert value(live, "batchthumb_run_info", command="generate", shard="all", outcome="running") == 1
            assert value(live, "batchthumb_written_total") == 0  # held at its first GET
        finally:
            gate.set()
            stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 3, stderr  # finished, with two failed sources
    summary = json.loads(stdout)
    assert (summary["written"], summary["failed"]) == (18, 2)
    assert scrape(port) is None  # served while the run lasts, not after

    ((method, path, body),) = gateway.received
    assert method == "PUT"
    assert path.startswith("/metrics/job/backfill/command/generate/shard/all")
    pushed = samples(body)
    assert value(pushed, "batchthumb_run_info", outcome="completed_with_failures") == 1
    for name in ("sources", "written", "stale", "skipped", "failed", "deleted", "bytes_written"):
        assert value(pushed, f"batchthumb_{name}_total", command="generate", shard="all") == summary[name], (
            name
        )
    assert value(pushed, "batchthumb_memory_budget_bytes") == summary["memory_budget"]
    assert value(pushed, "batchthumb_run_duration_seconds") > 0
    # store requests and errors by kind: 8 GETs (one missing), 18 PUTs
    assert value(pushed, "batchthumb_store_requests_total", store="source", operation="GetObject") == 8
    assert value(pushed, "batchthumb_store_requests_total", store="target", operation="PutObject") == 18
    assert value(pushed, "batchthumb_store_errors_total", store="source", kind="NoSuchKey") == 1
    # the stages, per source: 7 fetched (one missing), 6 rendered (one broken), 6 stored
    for stage, count in (("fetch", 7), ("render", 6), ("put", 6)):
        assert value(pushed, "batchthumb_stage_seconds_count", stage=stage) == count, stage

    # --log-format json: every stderr line an object, the failures named by source key
    lines = [json.loads(line) for line in stderr.splitlines()]
    assert all({"time", "level", "command", "shard", "event", "message"} <= set(line) for line in lines)
    assert {line["command"] for line in lines} == {"generate"}
    failed = {line["source_key"]: line for line in lines if line["event"] == "source_failed"}
    assert set(failed) == {"p/broken.jpg", "p/gone.jpg"}
    assert failed["p/gone.jpg"]["level"] == "error"
    assert "ObjectNotFound" in failed["p/gone.jpg"]["message"]
    written = [line for line in lines if line["event"] == "rendition_written"]
    assert len(written) == 18
    assert {line["source_key"] for line in written} == set(keys)


def test_a_failed_push_is_a_warning_and_errors_are_json_too(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    (media / "a.jpg").parent.mkdir(parents=True)
    (media / "a.jpg").write_bytes(sample_bytes(200, 100, "jpeg"))
    asyncio.run(create_photo_table(pg_dsn, ["a.jpg"]))
    config = write_config(tmp_path / "batchthumb.toml", pg_dsn, media, tmp_path / "out")
    (closed,) = free_ports(1)
    base = [sys.executable, "-m", "batchthumb", "--log-format", "json", "--config", str(config)]
    result = subprocess.run(
        [*base, "--metrics-push", f"http://127.0.0.1:{closed}", "generate"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr  # the renditions were written and recorded
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    (warning,) = [line for line in lines if line["event"] == "metrics_push_failed"]
    assert warning["level"] == "warning"
    (summary,) = [line for line in lines if line["event"] == "summary"]
    assert (summary["outcome"], summary["counts"]["written"]) == ("completed", 3)

    with socket.socket() as taken:  # a port in use: refused before anything is done
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        busy = subprocess.run(
            [*base, "--metrics-port", port, "generate", "--force"], capture_output=True, text=True
        )
    assert busy.returncode == 2, busy.stderr
    (refused,) = [json.loads(line) for line in busy.stderr.splitlines()]
    assert refused["message"].startswith(f"--metrics-port {port}: ")
    assert asyncio.run(runs(pg_dsn)) == [("generate", "completed")]  # no run was recorded for it

    bad = subprocess.run([*base, "generate", "--shard", "9/2"], capture_output=True, text=True, check=False)
    assert bad.returncode == 2
    (error,) = [json.loads(line) for line in bad.stderr.splitlines()]
    assert (error["level"], error["event"]) == ("error", "error")
    assert "--shard '9/2'" in error["message"]
