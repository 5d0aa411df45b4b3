"""Listings of a live store: a file deleted between the directory read and its ``stat()`` is
skipped (and counted), on every path that lists; never an error of the run.

A live site deletes files all the time (easy-thumbnails removes a thumbnail before saving it
again, uploads are renamed): a listing that aborts on one was an outage of every purge.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from batchthumb.config import Config
from batchthumb.errors import StoreError
from batchthumb.stores import LocalStore, StoreLocation
from batchthumb.stores.base import ObjectInfo
from tests.helpers import (
    create_photo_table,
    files,
    generate,
    make_config,
    purge,
    source_files,
    write_sources,
)

pytestmark = pytest.mark.anyio


class VanishingStore(LocalStore):
    """A local directory where, once ``trigger`` is listed, the files ``doomed`` names vanish,
    as a site deletes them while the walk is inside their directory (one object a page)."""

    def __init__(self, location: StoreLocation, trigger: str, doomed: list[Path]) -> None:
        super().__init__(location, page_size=1)
        self.trigger = trigger
        self.doomed = doomed

    async def list_pages(self, prefix: str = "") -> AsyncIterator[list[ObjectInfo]]:
        async for page in super().list_pages(prefix):
            yield page
            if any(info.key == self.trigger for info in page):
                for path in self.doomed:
                    path.unlink(missing_ok=True)


async def test_a_file_deleted_during_a_listing_is_skipped_and_counted(tmp_path: Path) -> None:
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg"):
        (tmp_path / name).write_bytes(b"x" * 10)
    # the walk reads the directory once, in reverse name order: d is listed first, then c ...
    store = VanishingStore(StoreLocation.parse(f"file://{tmp_path}/"), "d.jpg", [tmp_path / "c.jpg"])
    listed = [info.key async for page in store.list_pages() for info in page]
    assert listed == ["d.jpg", "b.jpg", "a.jpg"]
    assert store.vanished == 1


async def test_a_directory_that_cannot_be_read_is_a_store_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another OSError of the walk is the store's error (one line naming the path), never a
    bare OSError that surfaces as the registry's. (The tests run as root, whom a mode of 000
    does not stop: the refusal is the kernel's answer, raised where ``scandir`` is called.)"""
    (tmp_path / "inner").mkdir()
    (tmp_path / "inner" / "a.jpg").write_bytes(b"x")
    store = LocalStore(StoreLocation.parse(f"file://{tmp_path}/"))
    scandir = os.scandir

    def refusing(path: str) -> Any:
        if str(path).endswith("inner"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    with pytest.raises(StoreError, match=r"listing .*/inner: Permission denied"):
        _ = [page async for page in store.list_pages()]


async def test_purge_orphans_survives_a_file_vanishing_under_its_listing(pg_dsn: str, tmp_path: Path) -> None:
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    config: Config = make_config(pg_dsn, media, out)
    await generate(config)
    # two old orphans in one directory: the site deletes one of them while we list
    orphans = [out / "photos" / "stray" / name for name in ("a.jpg", "b.jpg", "c.jpg")]
    for path in orphans:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"orphan")
        os.utime(path, (0, 0))
    store = VanishingStore(StoreLocation.parse(f"file://{out}/"), "photos/stray/c.jpg", [orphans[1]])
    counters, lines, _ = await purge(config, target_store=store, kind="orphans")
    assert counters.failed == 0, lines
    assert counters.deleted == 2, lines  # c and a; b was gone already
    assert not any(path.exists() for path in orphans)
    assert store.vanished == 1
    assert any("vanished" in line for line in lines), lines  # counted, with --verbose
    assert len([key for key in files(out) if key.startswith("photos/stray")]) == 0
