"""Prometheus metrics of a run: served on ``--metrics-port`` while it lasts, pushed to a
Pushgateway with ``--metrics-push URL`` when it ends (the usual way for batch jobs).

The counts are read from the run's own counters when scraped or pushed, so they are the
numbers of the summary and ``--json``, never a second tally that could drift from them:
every counter of the command (``batchthumb_written_total``, ``batchthumb_skipped_total``,
``batchthumb_failed_total``, ``batchthumb_deleted_total``, ``batchthumb_bytes_written_total``
...), the store requests by store and operation, and the store errors by store and kind.
Histograms time the stages of generate: fetch, render and put, per source.

Every series carries ``command`` and ``shard``; a push is grouped by job name, command and
shard, so the shards of one backfill do not overwrite each other on the gateway.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Histogram, push_to_gateway, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from batchthumb.counters import RunCounters
from batchthumb.errors import UsageError

GAUGES = {"memory_budget": "bytes", "memory_reserved_peak": "bytes"}
"""Counter fields that are levels, not counts."""
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@dataclass
class _Live:
    """What the collector reads: the run's counters and its stores' request tallies."""

    command: str = ""
    shard: str = "all"
    counters: RunCounters | None = None
    stores: dict[str, Any] = field(default_factory=dict)
    started: float = field(default_factory=time.time)
    outcome: str = "running"
    duration_s: float = 0.0


class _RunCollector(Collector):
    def __init__(self, live: _Live) -> None:
        self.live = live

    def collect(self) -> Iterator[Metric]:
        live = self.live
        labels, values = ["command", "shard"], [live.command, live.shard]
        info = GaugeMetricFamily(
            "batchthumb_run_info", "The run: its outcome so far.", labels=[*labels, "outcome"]
        )
        info.add_metric([*values, live.outcome], 1)
        yield info
        started = GaugeMetricFamily(
            "batchthumb_run_started_seconds", "Unix time the run began.", labels=labels
        )
        started.add_metric(values, live.started)
        yield started
        if live.duration_s:
            took = GaugeMetricFamily(
                "batchthumb_run_duration_seconds", "How long the run took.", labels=labels
            )
            took.add_metric(values, live.duration_s)
            yield took
        if live.counters is not None:
            for name, value in live.counters.as_dict().items():
                if isinstance(value, bool) or not isinstance(value, int):
                    continue
                if name in GAUGES:
                    gauge = GaugeMetricFamily(
                        f"batchthumb_{name}_{GAUGES[name]}", f"{name} of the run.", labels=labels
                    )
                    gauge.add_metric(values, value)
                    yield gauge
                else:
                    counter = CounterMetricFamily(f"batchthumb_{name}", f"{name} in the run.", labels=labels)
                    counter.add_metric(values, value)
                    yield counter
        requests = CounterMetricFamily(
            "batchthumb_store_requests", "Requests sent to a store.", labels=[*labels, "store", "operation"]
        )
        errors = CounterMetricFamily(
            "batchthumb_store_errors",
            "Store requests that failed, by kind.",
            labels=[*labels, "store", "kind"],
        )
        for role, store in live.stores.items():
            for operation, count in sorted(_tally(store, "requests").items()):
                requests.add_metric([*values, role, operation], count)
            for kind, count in sorted(_tally(store, "errors").items()):
                errors.add_metric([*values, role, kind], count)
        yield requests
        yield errors


def _tally(store: Any, name: str) -> Mapping[str, int]:
    tally = getattr(store, name, None)
    return tally if isinstance(tally, Counter) else {}


class RunMetrics:
    """One run's metrics: bound to its job by the lifecycle, served and pushed from there."""

    def __init__(
        self, port: int | None = None, push_url: str | None = None, job_name: str = "batchthumb"
    ) -> None:
        self.port = port
        self.push_url = push_url
        self.job_name = job_name
        self.registry = CollectorRegistry(auto_describe=True)
        self.live = _Live()
        self.registry.register(_RunCollector(self.live))
        self.stage_seconds = Histogram(
            "batchthumb_stage_seconds",
            "Time per source in a stage of generate (fetch, render, put).",
            ["command", "shard", "stage"],
            buckets=STAGE_BUCKETS,
            registry=self.registry,
        )
        self._server: Any = None

    def bind(self, command: str, shard: str, counters: RunCounters, stores: dict[str, Any]) -> None:
        self.live.command, self.live.shard = command, shard
        self.live.counters, self.live.stores = counters, stores
        self.live.started = time.time()

    def observe(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(self.live.command, self.live.shard, stage).observe(seconds)

    def serve(self) -> None:
        """Expose ``/metrics`` on ``--metrics-port`` (all interfaces: a pod's port) until ``close``."""
        if self.port is not None and self._server is None:
            try:
                self._server, _ = start_http_server(self.port, registry=self.registry)
            except OSError as error:  # taken, or not ours to bind: before anything is done
                raise UsageError(f"--metrics-port {self.port}: {error.strerror or error}") from error

    def finish(self, outcome: str, duration_s: float) -> None:
        self.live.outcome, self.live.duration_s = outcome, duration_s

    def push(self) -> None:
        """PUT the final values to the Pushgateway (blocking: call it off the event loop)."""
        if self.push_url is not None:
            grouping = {"command": self.live.command, "shard": self.live.shard}
            push_to_gateway(
                self.push_url, job=self.job_name, registry=self.registry, grouping_key=grouping, timeout=30
            )

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
