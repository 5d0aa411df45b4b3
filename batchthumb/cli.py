"""The command line: arguments -> config -> the job layer (``jobs.py``) -> what it prints.

Exit statuses are ``errors.ExitStatus``; ``main``'s help lists them, as does the docs' reference.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from collections.abc import Awaitable, Callable
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import anyio
import click

from batchthumb import jobs
from batchthumb.adopt import AdoptOptions
from batchthumb.config import Config, load_config
from batchthumb.counters import Finished
from batchthumb.demo import run_demo, stop_demo
from batchthumb.errors import BatchthumbError, ExitStatus, UsageError
from batchthumb.generate import GenerateOptions
from batchthumb.manifest import ManifestFormat
from batchthumb.metrics import RunMetrics
from batchthumb.purge import PurgeKind, PurgeOptions, parse_duration
from batchthumb.report import LogFormat, Reporter
from batchthumb.shards import Shard
from batchthumb.verify import VerifyOptions

DEFAULT_CONFIG = "batchthumb.toml"

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")


class Context:
    def __init__(
        self,
        config_path: str | None,
        log_format: LogFormat = "text",
        metrics_port: int | None = None,
        metrics_push: str | None = None,
        metrics_job: str = "batchthumb",
        derived: Callable[[], Config] | None = None,
    ) -> None:
        self.config_path = config_path
        self.derived = derived
        """Where the config comes from without --config (``manage.py batchthumb``: the site)."""
        self.log_format: LogFormat = log_format
        self.metrics_port = metrics_port
        self.metrics_push = metrics_push
        self.metrics_job = metrics_job

    def config(self) -> Config:
        if self.config_path is None and self.derived is not None:
            return self.derived()
        path = self.config_path or os.environ.get("BATCHTHUMB_CONFIG") or DEFAULT_CONFIG
        return load_config(Path(path))

    def reporter(self, verbose: bool, json_output: bool) -> Reporter:
        """The run's reporter: its log format, and its metrics when asked for."""
        metrics = None
        if self.metrics_port is not None or self.metrics_push is not None:
            metrics = RunMetrics(self.metrics_port, self.metrics_push, self.metrics_job)
        return Reporter(verbose=verbose, json_output=json_output, log_format=self.log_format, metrics=metrics)


def say_error(message: str) -> None:
    """An error line on stderr: ``error: ...``, or a JSON object with --log-format json."""
    context = click.get_current_context(silent=True)
    obj = context.find_object(Context) if context is not None else None
    for line in message.splitlines():
        if obj is not None and obj.log_format == "json":
            click.echo(Reporter(log_format="json").json_line(line, "error", "error"), err=True)
        else:
            click.echo(f"error: {line}", err=True)


def run_options(function: F) -> F:
    """--dry-run, --verbose and --json, shared by every command that runs a job."""
    function = click.option("--json", "json_output", is_flag=True, help="Print a JSON summary on stdout.")(
        function
    )
    function = click.option(
        "--verbose", "-v", is_flag=True, help="One line per object; tracebacks on errors."
    )(function)
    function = click.option("--dry-run", is_flag=True, help="Plan and print; change nothing.")(function)
    return function


def scale_options(function: F) -> F:
    """--shard and --wait, shared by generate, regenerate and the purges."""
    function = click.option(
        "--wait", is_flag=True, help="Queue behind another run holding the lock, instead of exiting 4."
    )(function)
    function = click.option(
        "--shard",
        envvar="BATCHTHUMB_SHARD",
        help="Do shard I of N (I/N): the sources whose key hashes to I. Also $BATCHTHUMB_SHARD.",
    )(function)
    return function


def guarded(function: Callable[..., int | None]) -> Callable[..., None]:
    """Turn our exceptions into one line and an exit status."""

    @wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        verbose = bool(kwargs.get("verbose"))
        try:
            status = function(*args, **kwargs) or 0
        except BatchthumbError as exc:
            if verbose:
                traceback.print_exc()
            say_error(exc.message)
            sys.exit(exc.exit_status)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(ExitStatus.SIGNALLED + 2)
        except Exception as exc:  # a bug or an unforeseen failure: still one line
            if verbose:
                traceback.print_exc()
            say_error(f"unexpected {type(exc).__name__}: {exc}")
            sys.exit(ExitStatus.ABORTED)
        sys.exit(status)

    return wrapper


def run_async(job: Callable[[], Awaitable[T]]) -> T:
    return anyio.run(job)


def print_summary(finished: Finished, reporter: Reporter) -> int:
    """The summary of a job that ran to its end; its exit status."""
    reporter.summary(finished)
    return finished.exit_status


@click.group()
@click.option(
    "--config",
    "-c",
    "config_path",
    type=click.Path(dir_okay=False),
    help=f"TOML config file (default: $BATCHTHUMB_CONFIG or ./{DEFAULT_CONFIG}).",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    envvar="BATCHTHUMB_LOG_FORMAT",
    show_default=True,
    help="json: every stderr line one object (time, level, command, shard, event, source_key, message).",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(min=1, max=65535),
    envvar="BATCHTHUMB_METRICS_PORT",
    help="Serve Prometheus metrics on this port while a run lasts.",
)
@click.option(
    "--metrics-push",
    metavar="URL",
    envvar="BATCHTHUMB_METRICS_PUSH",
    help="Push the run's metrics to this Prometheus Pushgateway when it ends.",
)
@click.option(
    "--metrics-job",
    default="batchthumb",
    show_default=True,
    envvar="BATCHTHUMB_METRICS_JOB",
    help="The job name the push is grouped under (with the command and the shard).",
)
@click.version_option(package_name="batchthumb")
@click.pass_context
def main(
    ctx: click.Context,
    config_path: str | None,
    log_format: LogFormat,
    metrics_port: int | None,
    metrics_push: str | None,
    metrics_job: str,
) -> None:
    """Backfill, regenerate and purge image renditions in bulk.

    \b
    Exit status:
      0      success
      1      the run aborted (one clear line; the traceback only with --verbose)
      2      a usage or configuration error: nothing was done
      3      the run finished, but some items failed (summary, failures table)
      4      another run holds this job's lock: nothing was done
      128+N  stopped by signal N (130 SIGINT, 143 SIGTERM)
    """
    derived = ctx.obj if callable(ctx.obj) else None  # manage.py batchthumb: the site's config
    ctx.obj = Context(config_path, log_format, metrics_port, metrics_push, metrics_job, derived)


@main.command()
@click.option("--verbose", "-v", is_flag=True, help="Tracebacks on errors.")
@click.pass_obj
@guarded
def init(obj: Context, verbose: bool) -> int:
    """Create or migrate the registry schema (safe to run twice, or at once)."""
    config = obj.config()
    before, after = run_async(lambda: jobs.init(config))
    where = f"registry {config.database.registry_schema!r} at {config.database.redacted_dsn()}"
    if before == after:
        click.echo(f"{where} is up to date (version {after})", err=True)
    else:
        click.echo(f"{where} migrated from version {before} to {after}", err=True)
    return 0


def generate_command(name: str, help_text: str) -> click.Command:
    @click.option("--source", "source_sets", multiple=True, help="Only this source set (repeatable).")
    @click.option("--rendition", "renditions", multiple=True, help="Only this rendition (repeatable).")
    @click.option("--force", is_flag=True, help="Rebuild every selected rendition, done or not.")
    @click.option("--limit", type=click.IntRange(min=1), help="Stop after this many sources.")
    @click.option("--retry-failed", is_flag=True, help="Retry sources that failed permanently before.")
    @click.option(
        "--changed-urls",
        type=click.Path(dir_okay=False, writable=True),
        help="Write the URLs of the objects overwritten or deleted to this file, one per line.",
    )
    @scale_options
    @run_options
    @click.pass_obj
    @guarded
    def command(
        obj: Context,
        source_sets: tuple[str, ...],
        renditions: tuple[str, ...],
        force: bool,
        limit: int | None,
        retry_failed: bool,
        changed_urls: str | None,
        shard: str | None,
        wait: bool,
        dry_run: bool,
        verbose: bool,
        json_output: bool,
    ) -> int:
        config = obj.config()
        options = GenerateOptions(
            command=name,  # type: ignore[arg-type]
            source_sets=source_sets,
            renditions=renditions,
            force=force,
            limit=limit,
            dry_run=dry_run,
            retry_failed=retry_failed,
            shard=Shard.parse(shard),
            wait=wait,
            changed_urls=changed_urls,
        )
        reporter = obj.reporter(verbose, json_output)
        return print_summary(run_async(lambda: jobs.generate(config, options, reporter)), reporter)

    command.__doc__ = help_text
    return main.command(name=name)(command)


generate_command("generate", "Create the missing renditions of every source.")
generate_command(
    "regenerate", "Rebuild stale renditions (spec or source changed); delete what they superseded."
)


@main.group()
def purge() -> None:
    """Delete renditions (referenced ones, orphans, a whole prefix) or orphaned uploads."""


def purge_options(function: F) -> F:
    function = scale_options(function)
    function = click.option(
        "--changed-urls",
        type=click.Path(dir_okay=False, writable=True),
        help="Write the URLs of the objects overwritten or deleted to this file, one per line.",
    )(function)
    function = click.option(
        "--max-delete",
        type=click.IntRange(min=0),
        help="Stop before deleting anything if the plan is larger.",
    )(function)
    return run_options(function)


@purge.command("referenced")
@click.option("--source", "source_sets", multiple=True, help="Only this source set (repeatable).")
@click.option("--rendition", "renditions", multiple=True, help="Only this rendition (repeatable).")
@click.option(
    "--keys",
    "keys_file",
    type=click.File("r"),
    help="Only the renditions of the source keys in this file, one per line ('-' for stdin).",
)
@click.option("--unconfigured", is_flag=True, help="Only renditions no longer in the config.")
@purge_options
@click.pass_obj
@guarded
def purge_referenced(
    obj: Context,
    source_sets: tuple[str, ...],
    renditions: tuple[str, ...],
    keys_file: Any,
    unconfigured: bool,
    max_delete: int | None,
    changed_urls: str | None,
    shard: str | None,
    wait: bool,
    dry_run: bool,
    verbose: bool,
    json_output: bool,
) -> int:
    """Delete the renditions the registry references, then their rows."""
    keys = None
    if keys_file is not None:
        keys = tuple(line.strip() for line in keys_file if line.strip())
    chosen: dict[str, Any] = {"source_sets": source_sets, "renditions": renditions}
    chosen |= {"source_keys": keys, "unconfigured": unconfigured}
    return _purge(
        obj, "referenced", chosen, max_delete, changed_urls, shard, wait, dry_run, verbose, json_output
    )


@purge.command("orphans")
@click.option("--source", "source_sets", multiple=True, help="Only this source set's rows (repeatable).")
@click.option("--older-than", default="24h", show_default=True, help="Grace for unreferenced objects.")
@click.option(
    "--missing-sources",
    is_flag=True,
    help="Also the renditions of sources whose row is there but whose file is gone (one listing "
    "of each source set's listing_prefix, no HEAD per source).",
)
@purge_options
@click.pass_obj
@guarded
def purge_orphans(
    obj: Context,
    source_sets: tuple[str, ...],
    older_than: str,
    missing_sources: bool,
    max_delete: int | None,
    changed_urls: str | None,
    shard: str | None,
    wait: bool,
    dry_run: bool,
    verbose: bool,
    json_output: bool,
) -> int:
    """Delete rows whose source row is gone (with their objects), and unreferenced old objects."""
    chosen = {"source_sets": source_sets, "older_than_s": parse_duration(older_than)}
    chosen["missing_sources"] = missing_sources
    return _purge(
        obj, "orphans", chosen, max_delete, changed_urls, shard, wait, dry_run, verbose, json_output
    )


@purge.command("uploads")
@click.option("--older-than", default="24h", show_default=True, help="Grace: younger files (or rows) stay.")
@click.option(
    "--where", help="--delete-rows: a SQL condition over the source set's table selecting the rows."
)
@click.option("--age-column", help="--delete-rows: the column dating a row (e.g. uploaded_at).")
@click.option(
    "--delete-rows",
    is_flag=True,
    help="Delete the rows --where selects: their files, then their renditions, then the rows.",
)
@click.option(
    "--source", "source_sets", multiple=True, help="--delete-rows: the source set whose table it is."
)
@purge_options
@click.pass_obj
@guarded
def purge_uploads(
    obj: Context,
    older_than: str,
    where: str | None,
    age_column: str | None,
    delete_rows: bool,
    source_sets: tuple[str, ...],
    max_delete: int | None,
    changed_urls: str | None,
    shard: str | None,
    wait: bool,
    dry_run: bool,
    verbose: bool,
    json_output: bool,
) -> int:
    """Delete originals under [uploads] prefix that no listed column references, older than a grace."""
    chosen: dict[str, Any] = {"older_than_s": parse_duration(older_than), "source_sets": source_sets}
    chosen |= {"where": where, "age_column": age_column, "delete_rows": delete_rows}
    return _purge(
        obj, "uploads", chosen, max_delete, changed_urls, shard, wait, dry_run, verbose, json_output
    )


@purge.command("prefix")
@purge_options
@click.pass_obj
@guarded
def purge_prefix(
    obj: Context,
    max_delete: int | None,
    changed_urls: str | None,
    shard: str | None,
    wait: bool,
    dry_run: bool,
    verbose: bool,
    json_output: bool,
) -> int:
    """Delete every object under the target prefix, then the registry rows for that store."""
    return _purge(obj, "prefix", {}, max_delete, changed_urls, shard, wait, dry_run, verbose, json_output)


def _purge(
    obj: Context,
    kind: PurgeKind,
    chosen: dict[str, Any],
    max_delete: int | None,
    changed_urls: str | None,
    shard: str | None,
    wait: bool,
    dry_run: bool,
    verbose: bool,
    json_output: bool,
) -> int:
    """Every purge command: its own selection (``chosen``) plus the options they all share."""
    options = PurgeOptions(
        kind,
        **chosen,
        dry_run=dry_run,
        max_delete=max_delete,
        shard=Shard.parse(shard),
        wait=wait,
        changed_urls=changed_urls,
    )
    config = obj.config()
    reporter = obj.reporter(verbose, json_output)
    return print_summary(run_async(lambda: jobs.purge(config, options, reporter)), reporter)


@main.command()
@click.option("--source", "source_sets", multiple=True, help="Only this source set (repeatable).")
@click.option("--rendition", "renditions", multiple=True, help="Only this rendition (repeatable).")
@scale_options
@run_options
@click.pass_obj
@guarded
def adopt(
    obj: Context,
    source_sets: tuple[str, ...],
    renditions: tuple[str, ...],
    shard: str | None,
    wait: bool,
    dry_run: bool,
    verbose: bool,
    json_output: bool,
) -> int:
    """Record the renditions a Django library already made (drop-in presets), so generate skips them."""
    options = AdoptOptions(source_sets, renditions, dry_run, Shard.parse(shard), wait)
    config = obj.config()
    reporter = obj.reporter(verbose, json_output)
    finished = run_async(lambda: jobs.adopt(config, options, reporter))
    return print_summary(finished, reporter)


@main.command()
@click.option("--source", "source_sets", multiple=True, help="Only this source set's rows (repeatable).")
@click.option("--rendition", "renditions", multiple=True, help="Only this rendition's rows (repeatable).")
@click.option("--repair", is_flag=True, help="Rebuild what was found missing or of the wrong size, now.")
@scale_options
@run_options
@click.pass_obj
@guarded
def verify(
    obj: Context,
    source_sets: tuple[str, ...],
    renditions: tuple[str, ...],
    repair: bool,
    shard: str | None,
    wait: bool,
    dry_run: bool,
    verbose: bool,
    json_output: bool,
) -> int:
    """The registry against one listing of the target: objects gone or of the wrong size are
    marked, so the next generate rebuilds exactly those (--repair: now). No HEAD per object."""
    options = VerifyOptions(source_sets, renditions, repair, dry_run, Shard.parse(shard), wait)
    config = obj.config()
    reporter = obj.reporter(verbose, json_output)
    return print_summary(run_async(lambda: jobs.verify(config, options, reporter)), reporter)


@main.command()
@click.option("--source", "source_sets", multiple=True, help="Only this source set (repeatable).")
@click.option("--rendition", "renditions", multiple=True, help="Only this rendition (repeatable).")
@click.option(
    "--library-rows",
    is_flag=True,
    help="Drop-in: also delete the Django library's rows of them (sorl's key value rows, "
    "easy-thumbnails' rows); the site makes them again on its next request.",
)
@run_options
@click.pass_obj
@guarded
def clear(
    obj: Context,
    source_sets: tuple[str, ...],
    renditions: tuple[str, ...],
    library_rows: bool,
    dry_run: bool,
    verbose: bool,
    json_output: bool,
) -> int:
    """Forget registry rows (all, or a source set / rendition); objects are not touched."""
    config = obj.config()
    started = time.monotonic()
    count = run_async(lambda: jobs.clear(config, source_sets, renditions, dry_run, library_rows))
    if json_output:
        data = {
            "command": "clear",
            "outcome": "completed",
            "dry_run": dry_run,
            "rows_removed": count,
            "duration_s": round(time.monotonic() - started, 3),
        }
        click.echo(json.dumps(data))
    else:
        verb = "would forget" if dry_run else "forgot"
        click.echo(f"clear: {verb} {count} registry rows; objects untouched", err=True)
    return 0


@main.command()
@click.option("--source", "source_sets", multiple=True, help="Only this source set (repeatable).")
@click.option("--key", "source_keys", multiple=True, help="Only this source key (repeatable).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "csv"]),
    default="jsonl",
    show_default=True,
    help="jsonl: one JSON line per source; csv: one row per variant.",
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, writable=True), help="Write here, not to stdout."
)
@click.pass_obj
@guarded
def manifest(
    obj: Context,
    source_sets: tuple[str, ...],
    source_keys: tuple[str, ...],
    fmt: ManifestFormat,
    output: str | None,
) -> int:
    """Every source's variants (URL, width, height, format, bytes) and placeholders: JSON lines,
    one source each, or CSV, one variant each. For srcset and <picture>."""
    config = obj.config()
    keys = list(source_keys) or None
    if output is None:
        count = run_async(lambda: jobs.manifest(config, sys.stdout, fmt, source_sets, keys))
    else:
        with open(output, "w", encoding="utf-8", newline="") as out:
            count = run_async(lambda: jobs.manifest(config, out, fmt, source_sets, keys))
    click.echo(f"manifest: {count:,} sources", err=True)
    return 0


@main.command()
@click.option("--source", "source_sets", multiple=True, help="Only this source set (repeatable).")
@click.option(
    "--runs",
    "runs",
    type=click.IntRange(min=1),
    is_flag=False,
    flag_value=20,
    help="List the latest runs instead (default 20): command, shard, host, outcome.",
)
@click.option(
    "--failures",
    "failures",
    type=click.IntRange(min=1),
    is_flag=False,
    flag_value=20,
    help="List the failing sources instead (default 20): key, error, permanent or not, attempts.",
)
@click.option("--json", "json_output", is_flag=True, help="Print JSON on stdout.")
@click.option("--verbose", "-v", is_flag=True, help="Tracebacks on errors.")
@click.pass_obj
@guarded
def status(
    obj: Context,
    source_sets: tuple[str, ...],
    runs: int | None,
    failures: int | None,
    json_output: bool,
    verbose: bool,
) -> int:
    """Per source set and rendition: done, missing, damaged, stale, failed, bytes (or --runs,
    --failures)."""
    config = obj.config()
    if runs is not None and failures is not None:
        raise UsageError("--runs and --failures: one list at a time")
    if failures is not None:
        count = failures
        print_failures(run_async(lambda: jobs.failures(config, source_sets, count)), json_output)
        return 0
    if runs is not None:
        limit = runs
        print_runs(run_async(lambda: jobs.runs(config, limit)), json_output)
        return 0
    rows = run_async(lambda: jobs.status(config, source_sets))
    if json_output:
        click.echo(json.dumps({"command": "status", "renditions": rows}))
        return 0
    click.echo(
        f"{'source set':<16} {'rendition':<14} {'done':>9} {'missing':>9} {'damaged':>8} "
        f"{'stale':>9} {'failed':>8} {'bytes':>14}"
    )
    for row in rows:
        click.echo(
            f"{row['source_set']:<16} {row['rendition']:<14} {row['done']:>9} {row['missing']:>9} "
            f"{row['damaged']:>8} {row['stale']:>9} {row['failed']:>8} {row['bytes']:>14,}"
        )
    return 0


def print_failures(failures: list[dict[str, Any]], json_output: bool) -> None:
    """``status --failures``: one block per failing source, most recently seen first."""
    if json_output:
        click.echo(json.dumps({"command": "status", "failures": failures}, default=str))
        return
    if not failures:
        click.echo("no failing sources")
        return
    for failure in failures:
        kind = "permanent (skipped until the source changes)" if failure["permanent"] else "retried each run"
        click.echo(
            f"{failure['source_set']}: {failure['source_key']}\n"
            f"  {failure['error_class']}: {failure['message']}\n"
            f"  {kind}; {failure['attempts']} attempt{'s' if failure['attempts'] != 1 else ''}, "
            f"last seen {failure['last_seen']:%Y-%m-%d %H:%M:%S %Z} (run {failure['run_id']})"
        )


def print_runs(runs: list[dict[str, Any]], json_output: bool) -> None:
    """``status --runs``: one line per run, newest first."""
    if json_output:
        click.echo(json.dumps({"command": "status", "runs": runs}, default=str))
        return
    click.echo(f"{'run':>6}  {'command':<18} {'shard':<6} {'host':<16} {'started':<19} {'took':>8}  state")
    for run in runs:
        took = ""
        if run["finished_at"] is not None:
            took = f"{(run['finished_at'] - run['started_at']).total_seconds():.1f}s"
        counts = json.loads(run["counts"]) if isinstance(run["counts"], str) else run["counts"]
        shown = ("written", "deleted", "failed")
        done = ", ".join(f"{key} {value}" for key, value in counts.items() if key in shown and value)
        click.echo(
            f"{run['id']:>6}  {run['command']:<18} {run['shard'] or '-':<6} {(run['host'] or '')[:16]:<16} "
            f"{run['started_at']:%Y-%m-%d %H:%M:%S} {took:>8}  {run['state']}"
            + (f"  ({done})" if done else "")
        )


@main.command()
@click.option(
    "--workdir",
    type=click.Path(file_okay=False),
    help="Keep the demo's files here (default: a temp dir).",
)
@click.option(
    "--images",
    type=click.IntRange(min=1, max=1000),
    default=36,
    show_default=True,
    help="Sample images to generate.",
)
@click.option(
    "--keep-running",
    is_flag=True,
    help="Leave the demo's Postgres running, to try commands on its config (then --stop).",
)
@click.option("--stop", is_flag=True, help="Stop the Postgres a --keep-running demo left in --workdir.")
@click.option("--verbose", "-v", is_flag=True, help="Every object written or deleted; tracebacks on errors.")
@guarded
def demo(workdir: str | None, images: int, keep_running: bool, stop: bool, verbose: bool) -> int:
    """The embedded quickstart: a throwaway Postgres, sample images, a full cycle."""
    if stop:
        if workdir is None:
            raise UsageError("--stop needs the --workdir of the demo to stop")
        return stop_demo(Path(workdir))
    return run_demo(Path(workdir) if workdir else None, images, verbose=verbose, keep_running=keep_running)
