"""Progress, per-object lines, summaries and the ``--json`` output.

On a terminal a rich progress bar shows counts, rate and ETA; off one (cron,
Kubernetes, CI), a plain log line goes to stderr every ``log_interval_s``.
The summary goes to stderr as text, or to stdout as one JSON object with
``--json``, so stdout stays machine-readable.

``--log-format json`` makes every stderr line one JSON object for log pipelines:
``time``, ``level``, ``command``, ``shard``, ``event``, ``source_key`` (where a line is
about one source or object) and ``message``.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from batchthumb.counters import (
    AdoptCounters,
    Finished,
    GenerateCounters,
    PurgeCounters,
    UploadCounters,
    VerifyCounters,
)

if TYPE_CHECKING:
    from batchthumb.metrics import RunMetrics

LogFormat = Literal["text", "json"]


class Reporter:
    """Everything a run tells a person or a machine."""

    def __init__(
        self,
        *,
        verbose: bool = False,
        json_output: bool = False,
        progress: bool | None = None,
        stderr: TextIO | None = None,
        stdout: TextIO | None = None,
        log_interval_s: float = 10.0,
        log_format: LogFormat = "text",
        metrics: RunMetrics | None = None,
    ) -> None:
        self.verbose = verbose
        self.json_output = json_output
        self.stderr = stderr or sys.stderr
        self.stdout = stdout or sys.stdout
        self.log_format = log_format
        self.metrics = metrics
        """Bound to the run by ``Job.execute``: served and pushed from there."""
        self.command = ""
        self.shard = "all"
        self.console = Console(file=self.stderr, highlight=False, soft_wrap=True)
        self.show_bar = self.console.is_terminal if progress is None else progress
        if log_format == "json":
            self.show_bar = False  # a log pipeline reads lines, not a redrawn bar
        self.log_interval_s = log_interval_s
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._label = ""
        self._done = 0
        self._total: int | None = None
        self._started = time.monotonic()
        self._last_log = self._started

    # -- lines -------------------------------------------------------------------

    def bind(self, command: str, shard: str) -> None:
        """The run the lines are about (the JSON lines carry it)."""
        self.command, self.shard = command, shard

    def info(self, message: str, *, event: str = "message", level: str = "info", **about: str) -> None:
        """A line a person should see (stderr); ``event`` and ``about`` (``source_key=``,
        ``object_key=``) name it for a machine."""
        if self.log_format == "json":
            print(self.json_line(message, event, level, **about), file=self.stderr, flush=True)
        elif self._progress is not None:
            self._progress.console.print(message, markup=False)
        else:
            print(message, file=self.stderr, flush=True)

    def detail(self, message: str, *, event: str = "message", **about: str) -> None:
        """A per-object line, shown with ``--verbose``."""
        if self.verbose:
            self.info(message, event=event, level="debug", **about)

    def json_line(self, message: str, event: str, level: str = "info", **fields: Any) -> str:
        line: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": level,
            "command": self.command or None,
            "shard": self.shard,
            "event": event,
        }
        return json.dumps(line | fields | {"message": message}, default=str)

    # -- progress ----------------------------------------------------------------

    def start(self, label: str, total: int | None = None) -> None:
        self._label = label
        self._done = 0
        self._total = total
        self._started = self._last_log = time.monotonic()
        if self.show_bar:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                TextColumn("eta"),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(label, total=total, rate="")

    def set_total(self, total: int) -> None:
        self._total = total
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, total=total)

    def advance(self, count: int = 1) -> None:
        self._done += count
        now = time.monotonic()
        rate = self._done / max(now - self._started, 1e-9)
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=count, rate=f"{rate:,.1f}/s")
        elif now - self._last_log >= self.log_interval_s:
            self._last_log = now
            total = f"/{self._total}" if self._total is not None else ""
            eta = ""
            if self._total and rate > 0:
                eta = f", eta {max(self._total - self._done, 0) / rate:,.0f}s"
            self.info(f"{self._label}: {self._done}{total} sources, {rate:,.1f}/s{eta}", event="progress")

    def stop(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
            self._task = None

    # -- summary -----------------------------------------------------------------

    def summary(self, finished: Finished) -> None:
        """The end of a run: a header, its counts and the first failures (or one JSON object)."""
        counters, dry_run, duration_s = finished.counters, finished.dry_run, finished.duration_s
        rows: list[tuple[str, Any]] = []
        if isinstance(counters, GenerateCounters):
            rows = self._generate_rows(counters, dry_run, duration_s)
        elif isinstance(counters, PurgeCounters):
            rows = self._purge_rows(counters, dry_run, duration_s)
        elif isinstance(counters, VerifyCounters):
            rows = self._verify_rows(counters, dry_run)
        elif isinstance(counters, AdoptCounters):
            rows = [
                ("objects listed", counters.listed),
                ("sources planned", counters.sources),
                ("renditions missing", counters.missing),
                ("would adopt" if dry_run else "adopted", counters.adopted),
            ]
        self._finish(finished, rows)

    @staticmethod
    def _generate_rows(counters: GenerateCounters, dry_run: bool, duration_s: float) -> list[tuple[str, Any]]:
        """generate / regenerate: planned, written, stale, up to date, superseded, failed."""
        rate = counters.written / duration_s if duration_s > 0 else 0.0
        written: Any = counters.written
        if not dry_run:
            written = f"{counters.written}  ({rate:,.1f}/s, {counters.bytes_written:,} bytes)"
        rows: list[tuple[str, Any]] = [
            ("sources planned", counters.sources),
            ("would write" if dry_run else "renditions written", written),
            ("  of which stale", counters.stale),
            ("up to date, left", counters.skipped),
        ]
        if not dry_run:
            rows.append(("superseded deleted", f"{counters.deleted} ({counters.bytes_deleted:,} bytes)"))
        rows.append(("failed sources", counters.failed))
        return rows

    @staticmethod
    def _verify_rows(counters: VerifyCounters, dry_run: bool) -> list[tuple[str, Any]]:
        """verify: what one listing cost, what the registry comparison found, what was done."""
        found = counters.missing + counters.wrong_size
        rows: list[tuple[str, Any]] = [
            (
                "objects listed",
                f"{counters.listed:,} ({counters.listing_requests:,} listing requests, no HEAD)",
            ),
            ("rows checked", f"{counters.checked:,}"),
            ("  object missing", counters.missing),
            ("  wrong size", counters.wrong_size),
            ("would mark" if dry_run else "marked for generate", found if dry_run else counters.marked),
        ]
        if counters.whole_again:
            rows.append(("whole again, trusted", counters.whole_again))
        rows.append(("not in the registry", f"{counters.unreferenced:,} (purge orphans' business)"))
        if counters.repaired or counters.failed:
            rows += [
                ("repaired", f"{counters.repaired} ({counters.bytes_written:,} bytes)"),
                ("failed sources", counters.failed),
            ]
        return rows

    @staticmethod
    def _purge_rows(counters: PurgeCounters, dry_run: bool, duration_s: float) -> list[tuple[str, Any]]:
        """The seed cleanup command's summary: found, referenced, orphaned, deleted, freed."""
        rows: list[tuple[str, Any]] = []
        if counters.listed:
            rows += [
                ("objects listed", counters.listed),
                ("  referenced, kept", counters.referenced),
                ("  younger, kept", counters.too_young),
            ]
        if counters.sources_listed:
            rows += [
                ("sources listed", counters.sources_listed),
                ("  gone, row still there", counters.sources_missing),
            ]
        rows.append(("to delete", f"{counters.planned} ({counters.planned_bytes:,} bytes)"))
        if not dry_run:
            rate = counters.deleted / duration_s if duration_s > 0 else 0.0
            rows += [
                ("deleted", f"{counters.deleted} ({counters.bytes_deleted:,} bytes freed, {rate:,.0f}/s)"),
                ("registry rows gone", counters.rows_removed),
                ("failures", counters.failed),
            ]
            if counters.protected:
                rows.append(("kept at last check", counters.protected))
            if counters.columns_cleared:
                rows.append(("columns emptied", counters.columns_cleared))
            if isinstance(counters, UploadCounters) and (counters.rows_deleted or counters.rows_kept):
                rows += [
                    ("renditions deleted", counters.renditions_deleted),
                    ("rows deleted", counters.rows_deleted),
                    ("rows kept", counters.rows_kept),
                ]
        return rows

    def _finish(self, finished: Finished, rows: list[tuple[str, Any]]) -> None:
        """One JSON object on stdout with --json; else a header, the rows and the first failures."""
        counters, command, outcome = finished.counters, finished.command, finished.outcome
        if self.json_output:
            data: dict[str, Any] = {
                "command": command,
                "outcome": outcome,
                "dry_run": finished.dry_run,
                **counters.as_dict(),
                "duration_s": round(finished.duration_s, 3),
            }
            if counters.failures:
                data["failure_examples"] = counters.failures
            print(json.dumps(data), file=self.stdout, flush=True)
            return
        header = (
            f"{command}{' (dry run)' if finished.dry_run else ''}: {outcome} in {finished.duration_s:.1f}s"
        )
        if self.log_format == "json":
            counts = {**counters.as_dict(), "duration_s": round(finished.duration_s, 3)}
            line = self.json_line(header, "summary", outcome=outcome, dry_run=finished.dry_run, counts=counts)
            print(line, file=self.stderr, flush=True)
            return
        lines = [header]
        lines.extend(f"  {label:<20} {value}" for label, value in rows)
        lines.extend(f"    - {line}" for line in counters.failures)
        if counters.failed > len(counters.failures):
            lines.append(f"    ... and {counters.failed - len(counters.failures)} more (failures table)")
        self.info("\n".join(lines))
