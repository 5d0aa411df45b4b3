from __future__ import annotations

from pathlib import Path

import pytest

from batchthumb.errors import ObjectNotFound, UnsafeKeyError
from batchthumb.stores import LocalStore, MemoryStore, StoreLocation
from batchthumb.stores.local import TEMP_MARKER

pytestmark = pytest.mark.anyio


def store(tmp_path: Path) -> LocalStore:
    return LocalStore(StoreLocation.parse(f"file://{tmp_path}/"), page_size=3)


@pytest.mark.parametrize(
    "key", ["../escape.jpg", "a/../../b", "/etc/passwd", "a\\b", "a\x00b", "", "a//b", "./a"]
)
async def test_unsafe_keys_are_refused(tmp_path: Path, key: str) -> None:
    local = store(tmp_path / "root")
    with pytest.raises(UnsafeKeyError):
        await local.put(key, b"x", "image/jpeg")
    with pytest.raises(UnsafeKeyError):
        await local.get(key)
    with pytest.raises(UnsafeKeyError):
        await local.delete_many([key])
    assert not (tmp_path / "escape.jpg").exists()


async def test_put_is_atomic_and_round_trips(tmp_path: Path) -> None:
    local = store(tmp_path)
    await local.put("a/b/c.jpg", b"hello", "image/jpeg")
    await local.put("a/b/c.jpg", b"hello again", "image/jpeg")
    assert await local.get("a/b/c.jpg") == b"hello again"
    assert not [p for p in tmp_path.rglob("*") if TEMP_MARKER in p.name]
    (info,) = [info async for page in local.list_pages("a/") for info in page]
    assert (info.key, info.size) == ("a/b/c.jpg", 11)
    with pytest.raises(ObjectNotFound):
        await local.get("a/b/none.jpg")


async def test_list_pages_and_delete_remove_empty_directories(tmp_path: Path) -> None:
    local = store(tmp_path)
    keys = [f"p/{i % 3}/k{i}.jpg" for i in range(8)] + ["other/x.jpg"]
    for key in keys:
        await local.put(key, b"1234", "image/jpeg")
    pages = [page async for page in local.list_pages("p/")]
    assert all(len(page) <= 3 for page in pages)
    listed = sorted(info.key for page in pages for info in page)
    assert listed == sorted(k for k in keys if k.startswith("p/"))
    result = await local.delete_many(listed)
    assert sorted(result.deleted) == listed
    assert not result.errors
    assert not (tmp_path / "p").exists()  # emptied directories are removed
    assert (tmp_path / "other" / "x.jpg").exists()  # nothing else touched
    assert tmp_path.exists()


async def test_memory_store_counts_requests() -> None:
    memory = MemoryStore()
    await memory.put("a.jpg", b"1", "image/jpeg")
    assert await memory.get("a.jpg") == b"1"
    assert memory.requests == {"put": 1, "get": 1}
