"""``purge uploads``: orphaned originals, on a real Postgres and a local directory."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from batchthumb.config import Config
from batchthumb.errors import ConfigError, IdentifierError, PurgeRefused, UsageError
from batchthumb.purge import PurgeOptions
from batchthumb.registry import WorkTables
from batchthumb.runtime import open_runtime
from batchthumb.samples import sample_bytes
from batchthumb.stores import DeleteResult, LocalStore
from tests.helpers import (
    SOURCES,
    batchthumb,
    create_photo_table,
    files,
    generate,
    make_config,
    purge,
    quiet,
    registry_rows,
    source_files,
    sql,
    write_config,
    write_sources,
)

pytestmark = pytest.mark.anyio

OLD_S = 3 * 86400
UPLOADS = {"prefix": "images/", "references": [{"table": "gallery_attachment", "column": "file"}]}


def put(media: Path, key: str, data: bytes = b"an upload", age_s: float = OLD_S) -> None:
    path = media / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    then = time.time() - age_s
    os.utime(path, (then, then))


@pytest.fixture
async def site(pg_dsn: str, tmp_path: Path) -> tuple[Config, Path, Path]:
    """4 photos with renditions, an attachment table, and uploads nothing or something references."""
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    await sql(pg_dsn, "CREATE TABLE gallery_attachment (id serial PRIMARY KEY, file varchar(255))")
    await sql(pg_dsn, "INSERT INTO gallery_attachment (file) VALUES ('images/attached.pdf')")
    for key in keys:
        os.utime(media / key, (time.time() - OLD_S,) * 2)
    put(media, "images/orphan-old.jpg")
    put(media, "images/late.jpg")  # unreferenced when planned; a row will name it before the delete
    put(media, "images/attached.pdf")  # referenced only by the extra listed column
    put(media, "images/orphan-young.jpg", age_s=60)
    put(media, "elsewhere/old.jpg")  # outside the upload prefix
    config = make_config(pg_dsn, media, out, extra={"uploads": UPLOADS})
    counters, _, _ = await generate(config)
    assert counters.written == 12
    return config, media, out


async def test_nothing_is_deleted_without_the_section(
    site: tuple[Config, Path, Path], pg_dsn: str, tmp_path: Path
) -> None:
    config, media, out = site
    present = files(media)
    bare = make_config(pg_dsn, media, config.stores.target.url)
    with pytest.raises(ConfigError, match=r"needs an \[uploads\] section"):
        await purge(bare, kind="uploads")
    # as a user runs it: exit 2, one line, nothing deleted
    result = batchthumb(write_config(tmp_path / "bare.toml", pg_dsn, media, out), "purge", "uploads")
    assert result.returncode == 2
    assert result.stderr.startswith("error: purge uploads deletes originals: it needs an [uploads] section")
    assert files(media) == present


class InsertAfterPlanning:
    """Runs ``purge uploads`` and, once its plan is complete, inserts a row naming a planned file."""

    def __init__(self, dsn: str, statement: str) -> None:
        self.dsn, self.statement = dsn, statement

    async def run(self, config: Config, **options: Any) -> Any:
        from batchthumb.uploads import UploadPurge

        dsn, statement = self.dsn, self.statement

        class Inserting(UploadPurge):
            async def plan(self, plan: WorkTables) -> None:
                await super().plan(plan)
                await sql(dsn, statement)  # while the purge waits to delete

        async with open_runtime(config) as runtime:
            job = Inserting(runtime, PurgeOptions("uploads", **options), quiet())
            return await job.execute()


async def test_old_unreferenced_uploads_go_and_everything_referenced_or_young_stays(
    site: tuple[Config, Path, Path], pg_dsn: str
) -> None:
    config, media, out = site
    renditions = files(out)
    counters, lines, requests = await purge(config, kind="uploads", dry_run=True)
    would = sorted(line.split()[2] for line in lines if line.startswith("would delete"))
    assert would == [f"file://{media}/images/late.jpg", f"file://{media}/images/orphan-old.jpg"]
    assert (counters.listed, counters.referenced, counters.too_young) == (8, 5, 1)
    assert requests == {}  # the target is never touched

    inserting = InsertAfterPlanning(
        pg_dsn, "INSERT INTO gallery_attachment (file) VALUES ('images/late.jpg')"
    )
    counters = await inserting.run(config)
    assert (counters.planned, counters.deleted, counters.protected, counters.failed) == (2, 1, 1, 0)
    assert not (media / "images/orphan-old.jpg").exists()
    assert (media / "images/late.jpg").exists()  # a row inserted mid-run protected it
    assert (media / "images/attached.pdf").exists()  # referenced only by the extra listed column
    assert (media / "images/orphan-young.jpg").exists()
    assert (media / "elsewhere/old.jpg").exists()
    assert all((media / key).exists() for key, _ in SOURCES)
    assert files(out) == renditions

    counters, _, _ = await purge(config, kind="uploads", older_than_s=0)
    assert counters.deleted == 1  # the young one, with no grace
    assert not (media / "images/orphan-young.jpg").exists()


class OrderCheckingStore(LocalStore):
    """The target: when renditions are deleted, records whether each source's file and row are still there."""

    def __init__(self, location: Any, media: Path, dsn: str) -> None:
        super().__init__(location)
        self.media, self.dsn = media, dsn
        self.seen: list[tuple[str, bool, bool]] = []

    async def delete_many(self, keys: Any) -> DeleteResult:
        rows = await sql(
            self.dsn, "SELECT source_key FROM batchthumb.renditions WHERE object_key = ANY($1)", list(keys)
        )
        for source_key in {row[0] for row in rows}:
            row = await sql(
                self.dsn, "SELECT 1 FROM gallery_photo WHERE image = $1 AND item_id IS NULL", source_key
            )
            self.seen.append((source_key, (self.media / source_key).exists(), bool(row)))
        return await super().delete_many(keys)


async def test_delete_rows_takes_files_then_renditions_then_rows(pg_dsn: str, tmp_path: Path) -> None:
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    await sql(pg_dsn, "CREATE TABLE gallery_attachment (id serial PRIMARY KEY, file varchar(255))")
    await sql(pg_dsn, "ALTER TABLE gallery_photo ADD COLUMN item_id integer")
    await sql(pg_dsn, "UPDATE gallery_photo SET item_id = 1")
    incomplete = sample_bytes(width=300, height=200, fmt="jpeg", seed=9)
    for key in ("images/incomplete-old.jpg", "images/incomplete-young.jpg"):
        put(media, key, incomplete)
    await sql(
        pg_dsn,
        "INSERT INTO gallery_photo (image, item_id, updated_at) VALUES "
        "('images/incomplete-old.jpg', NULL, now() - interval '3 days'), "
        "('images/incomplete-young.jpg', NULL, now()), "
        "('images/landscape.jpg', NULL, now() - interval '3 days'), "  # shares a complete row's file
        "('', NULL, now() - interval '3 days')",  # no file at all
    )
    config = make_config(pg_dsn, media, out, extra={"uploads": UPLOADS})
    await generate(config)
    before = await registry_rows(pg_dsn)
    assert len(before) == 18  # 6 files, 3 renditions each
    where = {"where": "item_id IS NULL", "age_column": "updated_at", "delete_rows": True}

    counters, lines, _ = await purge(config, kind="uploads", dry_run=True, **where)
    assert counters.planned == 3
    assert sum(line.startswith("would delete photos row") for line in lines) == 3

    store = OrderCheckingStore(config.stores.target.location, media, pg_dsn)
    counters, _, _ = await purge(config, target_store=store, kind="uploads", **where)
    assert (counters.deleted, counters.renditions_deleted, counters.rows_deleted, counters.failed) == (
        1,
        3,
        3,
        0,
    )
    # each rendition delete came after its file was gone and before its row went
    assert store.seen == [("images/incomplete-old.jpg", False, True)]
    after = await registry_rows(pg_dsn)
    assert set(before) - set(after) == {
        ("images/incomplete-old.jpg", name) for name in ("thumb", "medium", "wide")
    }
    assert not (media / "images/incomplete-old.jpg").exists()
    assert (media / "images/incomplete-young.jpg").exists()
    assert (media / "images/landscape.jpg").exists()  # a complete row still names it
    remaining = await sql(pg_dsn, "SELECT image FROM gallery_photo WHERE item_id IS NULL")
    assert [row[0] for row in remaining] == ["images/incomplete-young.jpg"]
    assert len(await sql(pg_dsn, "SELECT 1 FROM gallery_photo WHERE item_id = 1")) == len(SOURCES)


async def test_refusals(site: tuple[Config, Path, Path], pg_dsn: str, tmp_path: Path) -> None:
    config, media, out = site
    present = files(media)
    with pytest.raises(UsageError, match="--where, --age-column and --delete-rows together"):
        await purge(config, kind="uploads", where="true")
    with pytest.raises(IdentifierError, match="unbalanced parentheses"):
        await purge(config, kind="uploads", where="true) OR (true", age_column="updated_at", delete_rows=True)
    with pytest.raises(UsageError, match="--where 'no_such_column = 1'"):
        await purge(
            config, kind="uploads", where="no_such_column = 1", age_column="updated_at", delete_rows=True
        )
    # a target inside the upload prefix
    inside = make_config(pg_dsn, media, media / "images/renditions", extra={"uploads": UPLOADS})
    with pytest.raises(ConfigError, match="overlaps the target"):
        await purge(inside, kind="uploads")
    # a prefix where batchthumb recorded renditions (an earlier config wrote there)
    await sql(
        pg_dsn,
        "INSERT INTO batchthumb.renditions (source_set, source_key, rendition, spec_hash, target,"
        " object_key, width, height, bytes) VALUES ('old', 'x.jpg', 'thumb', 'h', $1,"
        " 'images/orphan-old.jpg', 1, 1, 9)",
        config.stores.source.location.url,
    )
    with pytest.raises(PurgeRefused, match="holds renditions"):
        await purge(config, kind="uploads")
    assert files(media) == present
    assert files(out)
