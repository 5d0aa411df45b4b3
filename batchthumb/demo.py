"""``batchthumb demo``: the whole tool on an embedded default, with nothing to set up.

A throwaway Postgres from the ``pgserver`` wheel, a few dozen generated sample
images in a local source directory, a local target directory; then ``init``,
``generate``, a re-run that has nothing to do, a size change and ``regenerate``,
replaced sources, then purges: orphans (rows deleted from the table) and one
rendition dropped.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import asyncpg

from batchthumb import jobs
from batchthumb.config import Config, load_config
from batchthumb.counters import Finished
from batchthumb.errors import UsageError
from batchthumb.generate import GenerateOptions
from batchthumb.purge import PurgeOptions
from batchthumb.report import Reporter
from batchthumb.samples import sample_bytes

SIZES = [(2400, 1600), (1600, 1200), (1200, 1800), (800, 600), (3000, 2000), (640, 640)]
FORMATS = ["jpeg", "jpeg", "png", "webp"]
EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp"}

CONFIG_TEMPLATE = """\
# Written by `batchthumb demo`. A real config looks the same, with your DSN and bucket.
[database]
dsn = "{dsn}"

[stores.source]
url = "file://{media}/"

[stores.target]
url = "file://{renditions}/"

[[sources]]
name = "photos"
table = "gallery_photo"
key_column = "id"
path_column = "image"
fingerprint_column = "updated_at"

[renditions.thumb]
mode = "crop"
width = {thumb}
height = {thumb}
gravity = "attention"
format = "webp"
quality = 80

[renditions.medium]
mode = "fit"
width = 800
height = 800
format = "jpeg"
quality = 82

[renditions.gray]
mode = "fill"
width = 320
height = 240
format = "png"
filters = ["grayscale"]
"""


def _pgserver() -> Any:
    # platformdirs (under pgserver) warns when XDG_RUNTIME_DIR is unset: containers, CI, cron
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    try:
        import pgserver  # only the demo needs the embedded server
    except ImportError:
        raise UsageError(
            "the demo needs the embedded Postgres of the pgserver wheel, which a production "
            "install leaves out: pip install 'batchthumb[demo]' (or make demo)"
        ) from None
    return pgserver


def stop_demo(workdir: Path) -> int:
    """Stop the Postgres a ``--keep-running`` demo left running in ``workdir``."""
    pgdata = workdir.resolve() / "pgdata"
    if not (pgdata / "PG_VERSION").exists():
        raise UsageError(f"no demo in {workdir}: {pgdata} holds no Postgres")
    _pgserver().get_server(str(pgdata), cleanup_mode="stop").cleanup()
    print(f"stopped the demo's Postgres in {pgdata}")
    return 0


def _command(*args: str) -> str:
    """A command line that runs this batchthumb from the current directory."""
    beside = Path(sys.executable).parent / "batchthumb"
    program = str(beside) if beside.exists() else (shutil.which("batchthumb") or "batchthumb")
    relative = os.path.relpath(program)
    program = relative if not relative.startswith("..") else program
    return shlex.join([program, *args])


def run_demo(
    workdir: Path | None, image_count: int, verbose: bool = False, keep_running: bool = False
) -> int:
    pgserver = _pgserver()
    root = Path(workdir or tempfile.mkdtemp(prefix="batchthumb-demo-")).resolve()
    media, renditions, pgdata = root / "media", root / "renditions", root / "pgdata"
    if (pgdata / "PG_VERSION").exists():
        # an earlier demo here: start again from nothing (its Postgres may still run)
        pgserver.get_server(str(pgdata), cleanup_mode="delete").cleanup()
    for folder in (renditions, pgdata):
        shutil.rmtree(folder, ignore_errors=True)
    for folder in (media, renditions, pgdata):
        folder.mkdir(parents=True, exist_ok=True)
    say = print
    say(f"batchthumb demo in {root}")
    started = time.monotonic()
    server = pgserver.get_server(str(pgdata), cleanup_mode=None if keep_running else "stop")
    dsn = server.get_uri()
    say(f"  embedded Postgres: {dsn}")

    keys = _write_samples(media, image_count)
    say(f"  {len(keys)} sample images in {media}")
    asyncio.run(_create_table(dsn, keys))
    say("  table gallery_photo(id, image, updated_at) lists them")

    config_path = root / "batchthumb.toml"

    def write_config(thumb: int) -> Config:
        config_path.write_text(
            CONFIG_TEMPLATE.format(dsn=dsn, media=media, renditions=renditions, thumb=thumb)
        )
        return load_config(config_path)

    config = write_config(thumb=200)
    say(f"  config: {config_path}\n")

    def show(title: str, job: Callable[[Reporter], Awaitable[Finished]]) -> int:
        say(f"== {title}")
        reporter = Reporter(verbose=verbose)
        finished = anyio.run(job, reporter)
        reporter.summary(finished)
        return finished.exit_status

    def step(title: str, options: GenerateOptions, config: Config) -> int:
        return show(title, partial(jobs.generate, config, options))

    def purge_step(title: str, options: PurgeOptions, config: Config) -> int:
        return show(title, partial(jobs.purge, config, options))

    say("== batchthumb init")
    before, after = anyio.run(jobs.init, config)
    say(f"registry migrated from version {before} to {after}")
    status = step(
        "batchthumb generate   (backfill: every source, 3 renditions)",
        GenerateOptions(command="generate"),
        config,
    )
    step(
        "batchthumb generate   (again: nothing to do, no store request)",
        GenerateOptions(command="generate"),
        config,
    )
    config = write_config(thumb=256)
    say("\n(config changed: renditions.thumb width/height 200 -> 256)\n")
    step(
        "batchthumb regenerate --dry-run",
        GenerateOptions(command="regenerate", dry_run=True),
        config,
    )
    step(
        "batchthumb regenerate (rebuilds exactly the thumb rendition, deletes the old objects)",
        GenerateOptions(command="regenerate"),
        config,
    )
    asyncio.run(_touch_sources(dsn, keys[:3]))
    say("\n(3 sources replaced: their updated_at moved on)\n")
    step(
        "batchthumb regenerate (rebuilds those 3 sources' renditions)",
        GenerateOptions(command="regenerate"),
        config,
    )

    asyncio.run(_delete_rows(dsn, keys[-4:]))
    say("\n(4 rows deleted from gallery_photo: their renditions are now orphans)\n")
    purge_step("batchthumb purge orphans --dry-run", PurgeOptions("orphans", dry_run=True), config)
    purge_step("batchthumb purge orphans --max-delete 100", PurgeOptions("orphans", max_delete=100), config)
    purge_step(
        "batchthumb purge referenced --rendition gray",
        PurgeOptions("referenced", renditions=("gray",)),
        config,
    )

    files = sorted(path for path in renditions.rglob("*") if path.is_file())
    say(f"\nrenditions: {len(files)} files under {renditions}, e.g.")
    for path in files[:3]:
        say(f"  {path}")
    say(f"\ndemo finished in {time.monotonic() - started:.1f}s")
    config_arg = os.path.relpath(config_path) if Path.cwd() in config_path.parents else str(config_path)
    if keep_running:
        say("its Postgres keeps running; try any command on the demo's config:")
        say(f"  {_command('--config', config_arg, 'status', '--failures')}")
        say(f"  {_command('--config', config_arg, 'regenerate', '--dry-run')}")
        say("and stop it with:")
        say(f"  {_command('demo', '--workdir', os.path.relpath(root), '--stop')}")
    else:
        server.cleanup()
        say("its Postgres is stopped; the renditions stay:")
        say(f"  ls {shlex.quote(str(renditions))}")
        say("to try commands on the demo's config, keep its Postgres running:")
        say(f"  {_command('demo', '--keep-running')}")
    return status


def _write_samples(media: Path, count: int) -> list[str]:
    keys = []
    for index in range(count):
        width, height = SIZES[index % len(SIZES)]
        fmt = FORMATS[index % len(FORMATS)]
        orientation = 6 if index % 9 == 4 and fmt == "jpeg" else None
        key = f"photos/{index // 12:02d}/img{index:04d}.{EXTENSIONS[fmt]}"
        path = media / key
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_bytes(sample_bytes(width, height, fmt, seed=index, orientation=orientation))
        keys.append(key)
    return keys


async def _create_table(dsn: str, keys: list[str]) -> None:
    conn: Any = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "DROP TABLE IF EXISTS gallery_photo;"
            "CREATE TABLE gallery_photo (id serial PRIMARY KEY, image varchar(255) NOT NULL,"
            " updated_at timestamptz NOT NULL DEFAULT now())"
        )
        await conn.executemany("INSERT INTO gallery_photo (image) VALUES ($1)", [(k,) for k in keys])
    finally:
        await conn.close()


async def _touch_sources(dsn: str, keys: list[str]) -> None:
    conn: Any = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            "UPDATE gallery_photo SET updated_at = now() + interval '1 second' WHERE image = ANY($1)",
            keys,
        )
    finally:
        await conn.close()


async def _delete_rows(dsn: str, keys: list[str]) -> None:
    conn: Any = await asyncpg.connect(dsn)
    try:
        await conn.execute("DELETE FROM gallery_photo WHERE image = ANY($1)", keys)
    finally:
        await conn.close()
