"""Crash and resume: real processes killed with SIGKILL, SIGTERM and SIGINT, real Postgres.

The kill points are drawn from a seed that the test prints; set
``BATCHTHUMB_KILL_SEED`` to replay a failing sequence.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from batchthumb.samples import sample_bytes
from batchthumb.stores.local import TEMP_MARKER
from tests.helpers import batchthumb, create_photo_table, sql, start, write_config, write_sources

SOURCES = 60
RENDITIONS = ("thumb", "medium", "wide")
LIMITS = {
    # small stages, so that what is in flight at a kill is small and bounded
    "render_workers": 1,
    "io_concurrency": 2,
    "record_batch": 3,
    "record_interval_s": 0.05,
}


def renditions(thumb: int) -> dict[str, Any]:
    return {
        "thumb": {"mode": "crop", "width": thumb, "height": thumb, "format": "webp"},
        "medium": {"width": 300},
        "wide": {"mode": "fill", "width": 320, "height": 180, "format": "png"},
    }


IN_FLIGHT_RENDITIONS = 3 * (2 + 2 + 1 + 1)
"""Renditions stored but not yet recorded at a kill, at most: 2 put workers, 2 outcomes
buffered before the record stage, a record batch of 3 rows (one source), one more in hand."""


def kill_seed() -> int:
    seed = int(os.environ.get("BATCHTHUMB_KILL_SEED", random.randrange(2**32)))
    print(f"\nkill seed: {seed} (replay with BATCHTHUMB_KILL_SEED={seed})")
    return seed


@pytest.fixture
def setup(pg_dsn: str, tmp_path: Path) -> tuple[Path, Path, str]:
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(
        media, [(f"p/{i:03d}.jpg", sample_bytes(640, 480, "jpeg", seed=i)) for i in range(SOURCES)]
    )
    asyncio.run(create_photo_table(pg_dsn, keys))
    config = write_config(tmp_path / "batchthumb.toml", pg_dsn, media, out, renditions(96), LIMITS)
    assert batchthumb(config, "init").returncode == 0
    return config, out, pg_dsn


def rows(dsn: str) -> list[Any]:
    return asyncio.run(sql(dsn, "SELECT * FROM batchthumb.renditions"))


def assert_consistent(dsn: str, out: Path) -> list[Any]:
    """Every trusted registry row points at an object that exists, with the recorded size.

    Rows a killed purge had marked before deleting their objects are not trusted (generate
    plans them as missing); they are returned too, but need not point at anything.
    """
    found = rows(dsn)
    for row in found:
        if row["deleting_since"] is not None:
            continue
        path = out / row["object_key"]
        assert path.exists(), f"row {row['source_key']}/{row['rendition']} points at nothing: {path}"
        assert path.stat().st_size == row["bytes"]
    return found


def run_and_kill(
    process: subprocess.Popen[str], after_lines: int, prefix: str, rng: random.Random
) -> list[str]:
    """Let ``process`` print ``after_lines`` lines starting with ``prefix``, then SIGKILL it.

    Returns the matching lines it printed (before the kill, or all of them if it ended first).
    """
    assert process.stderr is not None
    seen: list[str] = []
    for line in process.stderr:
        if line.startswith(prefix):
            seen.append(line)
            if len(seen) >= after_lines:
                time.sleep(rng.uniform(0, 0.02))
                process.kill()
                break
    # Read the rest through the same text wrapper: communicate() would read the raw pipe and
    # skip what the wrapper has already buffered.
    rest = process.stderr.read()
    process.stderr.close()
    process.wait(timeout=60)
    seen.extend(line for line in rest.splitlines() if line.startswith(prefix))
    return seen


def kill_repeatedly(
    config: Path, out: Path, dsn: str, args: tuple[str, ...], prefix: str, kills: int, rng: random.Random
) -> tuple[int, list[str]]:
    """SIGKILL the command ``kills`` times at random points, checking consistency after each."""
    done = 0
    lines: list[str] = []
    while done < kills:
        process = start(config, *args)
        lines.extend(run_and_kill(process, rng.randint(1, 5), prefix, rng))
        if process.returncode == 0:
            break  # it finished before the kill point: no work left to interrupt
        assert process.returncode == -signal.SIGKILL
        done += 1
        assert_consistent(dsn, out)
    return done, lines


@pytest.mark.timeout(600)
def test_generate_survives_sigkill_at_20_points(setup: tuple[Path, Path, str]) -> None:
    config, out, dsn = setup
    rng = random.Random(kill_seed())
    kills, wrote = kill_repeatedly(config, out, dsn, ("generate",), "wrote ", 20, rng)
    assert kills == 20, f"the job finished after {kills} kills: make the corpus larger"

    final = batchthumb(config, "generate", "--verbose")
    assert final.returncode == 0, final.stderr
    wrote += [line for line in final.stderr.splitlines() if line.startswith("wrote ")]

    # every source has exactly its configured renditions, each pointing at its object
    found = assert_consistent(dsn, out)
    per_source = Counter(row["source_key"] for row in found)
    assert len(per_source) == SOURCES
    assert set(per_source.values()) == {3}
    assert {row["rendition"] for row in found} == set(RENDITIONS)

    # nothing was rendered twice beyond what was in flight at each kill
    writes = Counter(line.split()[2] for line in wrote)
    rewritten = sum(writes.values()) - len(writes)
    print(f"{kills} kills, {sum(writes.values())} writes of {len(writes)} objects, {rewritten} rewritten")
    assert len(writes) == SOURCES * 3
    assert rewritten <= kills * IN_FLIGHT_RENDITIONS

    # what a kill left behind (half-written temporary files) is an orphan, swept only past the grace
    referenced = {row["object_key"] for row in found}
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    leftovers = on_disk - referenced
    assert all(TEMP_MARKER in Path(key).name for key in leftovers)
    young = batchthumb(config, "purge", "orphans", "--json")
    assert young.returncode == 0, young.stderr
    assert '"deleted": 0' in young.stdout
    swept = batchthumb(config, "purge", "orphans", "--older-than", "0s", "--json")
    assert swept.returncode == 0, swept.stderr
    assert f'"deleted": {len(leftovers)}' in swept.stdout
    assert {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()} == referenced


@pytest.mark.timeout(600)
def test_regenerate_and_purge_survive_sigkill(setup: tuple[Path, Path, str]) -> None:
    config, out, dsn = setup
    rng = random.Random(kill_seed())
    assert batchthumb(config, "generate").returncode == 0
    write_config(config, dsn, config.parent / "media", out, renditions(64), LIMITS)

    # regenerate: a superseded object is deleted only after its replacement is recorded,
    # so after every kill each row still points at an object that exists
    kills, _ = kill_repeatedly(config, out, dsn, ("regenerate",), "wrote ", 10, rng)
    assert kills == 10
    final = batchthumb(config, "regenerate")
    assert final.returncode == 0, final.stderr
    found = assert_consistent(dsn, out)
    thumbs = [row for row in found if row["rendition"] == "thumb"]
    assert len(thumbs) == SOURCES
    assert {(row["width"], row["height"]) for row in thumbs} == {(64, 64)}
    # the superseded 96 px thumbs are gone, or orphans that the sweep removes
    batchthumb(config, "purge", "orphans", "--older-than", "0s")
    on_disk = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert on_disk == {row["object_key"] for row in found}

    # purge: objects first, rows after, so no row is ever left pointing at a deleted object
    kills = 0
    while kills < 5:
        process = start(config, "purge", "referenced")
        time.sleep(rng.uniform(0.6, 1.2))  # after start-up, somewhere in the run
        process.kill()
        process.communicate(timeout=60)
        assert_consistent(dsn, out)
        kills += 1
        if process.returncode == 0:
            break
    final = batchthumb(config, "purge", "referenced")
    assert final.returncode == 0, final.stderr
    assert rows(dsn) == []

    # purge orphans and purge prefix, killed the same way, on a fresh set of renditions
    assert batchthumb(config, "generate").returncode == 0
    asyncio.run(sql(dsn, "DELETE FROM gallery_photo WHERE id % 2 = 0"))  # half the sources gone
    for kind in ("orphans", "prefix"):
        for _ in range(3):
            process = start(config, "purge", kind)
            time.sleep(rng.uniform(0.6, 1.2))
            process.kill()
            process.communicate(timeout=60)
            assert_consistent(dsn, out)
        final = batchthumb(config, "purge", kind)
        assert final.returncode == 0, final.stderr
        assert_consistent(dsn, out)
        if kind == "orphans":
            assert {row["source_key"] for row in rows(dsn)} == {
                f"p/{i:03d}.jpg" for i in range(0, SOURCES, 2)
            }
    assert rows(dsn) == []
    assert not [p for p in out.rglob("*") if p.is_file()]


def test_sigterm_stops_gracefully(setup: tuple[Path, Path, str]) -> None:
    config, out, dsn = setup
    process = start(config, "generate")
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("wrote "):
            process.send_signal(signal.SIGTERM)
            break
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert "SIGTERM: stopping; finishing the items in flight" in stderr
    assert "generate: interrupted" in stderr  # the summary is printed
    found = assert_consistent(dsn, out)
    assert 0 < len(found) < SOURCES * 3
    (run,) = asyncio.run(sql(dsn, "SELECT outcome FROM batchthumb.runs WHERE command = 'generate'"))
    assert run["outcome"] == "interrupted"
    again = batchthumb(config, "generate", "--json")
    assert again.returncode == 0, again.stderr
    assert len(assert_consistent(dsn, out)) == SOURCES * 3


def test_a_second_sigint_abandons_what_is_in_flight(setup: tuple[Path, Path, str]) -> None:
    config, out, dsn = setup
    process = start(config, "generate")
    assert process.stderr is not None
    for line in process.stderr:
        if line.startswith("wrote "):
            process.send_signal(signal.SIGINT)
            time.sleep(0.05)
            process.send_signal(signal.SIGINT)
            break
    stderr = process.communicate(timeout=60)[1]
    assert process.returncode == 128 + signal.SIGINT, stderr
    # one clear line (the traceback above it only because the test runs with --verbose)
    assert stderr.splitlines()[-1].startswith(
        "error: interrupted by SIGINT twice: items in flight were abandoned"
    )
    (run,) = asyncio.run(sql(dsn, "SELECT outcome FROM batchthumb.runs WHERE command = 'generate'"))
    assert run["outcome"] == "abandoned"
    assert_consistent(dsn, out)
    again = batchthumb(config, "generate")
    assert again.returncode == 0, again.stderr
    assert len(assert_consistent(dsn, out)) == SOURCES * 3
