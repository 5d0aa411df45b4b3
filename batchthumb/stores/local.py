"""A local directory as a store (the embedded default), through aiofiles.

Writes are atomic (a temporary file in the same directory, then a rename), so a
reader or a crash never leaves a partial object under its real name. Keys can't
leave the root: ``..``, absolute paths, backslashes and NUL are refused.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import aiofiles
import aiofiles.os
import anyio.to_thread

from batchthumb.errors import ObjectNotFound, SourceTooLarge, StoreError
from batchthumb.location import StoreLocation
from batchthumb.stores.base import (
    DELETE_BATCH,
    HEAD_BYTES,
    Admit,
    DeleteResult,
    ObjectInfo,
    SourceBytes,
    Version,
    check_key,
)

TEMP_MARKER = ".batchthumb-tmp-"
"""Temporary files carry this in their name (an interrupted write leaves one for the orphan sweep)."""


def _version(stat: os.stat_result) -> Version:
    return Version(f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}", stat.st_mtime_ns, stat.st_size)


class LocalStore:
    """Objects are files under ``location.root``."""

    def __init__(self, location: StoreLocation, page_size: int = 1000) -> None:
        if location.scheme != "file":
            raise ValueError(f"LocalStore needs a file:// location, not {location.url}")
        self.location = location
        self.root = Path(location.root)
        self.requests: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        """Failed reads and writes by kind (``NotFound``, or the OS error's class)."""
        self.page_size = page_size
        self.vanished = 0
        """Entries a listing skipped: deleted between the directory read and their ``stat()``."""

    def path_of(self, key: str) -> Path:
        return self.root / check_key(key)

    async def get(self, key: str, max_bytes: int | None = None, admit: Admit | None = None) -> SourceBytes:
        data, _ = await self.get_versioned(key, max_bytes, admit)
        return data

    async def get_versioned(
        self, key: str, max_bytes: int | None = None, admit: Admit | None = None
    ) -> tuple[SourceBytes, Version]:
        self.requests["get"] += 1
        path = self.path_of(key)
        try:
            async with aiofiles.open(path, "rb") as handle:
                # the file opened, not whatever is at its path by now (a rename replaces it)
                stat = os.fstat(handle.fileno())
                version = _version(stat)
                if max_bytes is not None and stat.st_size > max_bytes:
                    raise SourceTooLarge(f"{stat.st_size} bytes, more than the limit of {max_bytes}")
                if admit is None:
                    return await handle.read(), version
                await admit(stat.st_size, await handle.read(HEAD_BYTES))
                await handle.seek(0)  # one read into one buffer: no copy joining two
                return await handle.read(), version
        except (FileNotFoundError, NotADirectoryError):
            self.errors["NotFound"] += 1
            raise ObjectNotFound(f"{path}: no such file") from None
        except IsADirectoryError:
            self.errors["NotFound"] += 1
            raise ObjectNotFound(f"{path}: is a directory, not a file") from None
        except OSError as exc:
            self.errors[type(exc).__name__] += 1
            raise StoreError(f"{path}: {exc.strerror or exc}") from exc

    async def version(self, key: str) -> Version | None:
        self.requests["stat"] += 1
        path = self.path_of(key)
        try:
            return _version(await aiofiles.os.stat(path))
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            self.errors[type(exc).__name__] += 1
            raise StoreError(f"{path}: {exc.strerror or exc}") from exc

    async def set_modified(self, key: str, modified_ns: int) -> None:
        """Give ``key`` this modification time (easy-thumbnails serves a thumbnail on disk only
        while it is not older than its source: it gets the time of the source version it was
        made from, never a later one, so that a source replaced since makes it stale)."""
        path = self.path_of(key)
        try:
            await anyio.to_thread.run_sync(partial(os.utime, path, ns=(modified_ns, modified_ns)))
        except OSError as exc:
            raise StoreError(f"{path}: setting its modification time: {exc.strerror or exc}") from exc

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        self.requests["put"] += 1
        path = self.path_of(key)
        temp = path.with_name(f"{TEMP_MARKER}{uuid.uuid4().hex}-{path.name}")
        try:
            await aiofiles.os.makedirs(path.parent, exist_ok=True)
            async with aiofiles.open(temp, "wb") as handle:
                await handle.write(data)
            await aiofiles.os.replace(temp, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                await aiofiles.os.remove(temp)
            self.errors[type(exc).__name__] += 1
            raise StoreError(f"{path}: {exc.strerror or exc}") from exc

    async def not_older(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        """Of these (key, reference) pairs, the keys whose file is not older than the reference's."""
        return await anyio.to_thread.run_sync(self._not_older, pairs)

    def _not_older(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        found = []
        for key, reference in pairs:
            try:
                if self.path_of(key).stat().st_mtime_ns >= self.path_of(reference).stat().st_mtime_ns:
                    found.append(key)
            except OSError:
                continue  # either is gone or unreadable: not current
        return found

    async def delete_many(self, keys: Sequence[str]) -> DeleteResult:
        if len(keys) > DELETE_BATCH:
            raise ValueError(f"at most {DELETE_BATCH} keys per delete")
        self.requests["delete"] += 1
        paths = [(key, self.path_of(key)) for key in keys]
        return await anyio.to_thread.run_sync(self._delete_files, paths)

    def _delete_files(self, paths: list[tuple[str, Path]]) -> DeleteResult:
        result = DeleteResult()
        parents: set[Path] = set()
        for key, path in paths:
            try:
                path.unlink(missing_ok=True)
            except OSError as exc:
                result.errors[key] = exc.strerror or str(exc)
                continue
            result.deleted.append(key)
            parents.add(path.parent)
        # Remove the directories the deletes left empty, deepest first, never the root.
        for parent in sorted(parents, key=lambda p: len(p.parts), reverse=True):
            directory = parent
            while directory != self.root and self.root in directory.parents:
                try:
                    directory.rmdir()
                except OSError:
                    break  # not empty (or already gone): stop climbing
                directory = directory.parent
        return result

    async def list_pages(self, prefix: str = "") -> AsyncIterator[list[ObjectInfo]]:
        pages = self._walk(prefix)
        while True:
            # Each page is read in a worker thread; the walk itself is a lazy generator.
            try:
                page = await anyio.to_thread.run_sync(next, pages, None)
            except OSError as exc:  # a directory we may not read: the store's error, with its path
                self.errors[type(exc).__name__] += 1
                where = exc.filename or self.root
                raise StoreError(f"listing {where}: {exc.strerror or exc}") from exc
            if page is None:
                return
            self.requests["list"] += 1  # a page, as S3 counts one ListObjectsV2 per page
            yield page

    def _walk(self, prefix: str) -> Iterator[list[ObjectInfo]]:
        """Pages of objects, walking one directory at a time.

        A live site deletes files while we walk: a directory or a file gone between the
        directory read and its ``stat()`` is skipped and counted in ``vanished``.
        """
        page: list[ObjectInfo] = []
        root_len = len(str(self.root)) + 1
        stack = [str(self.root)] if self.root.is_dir() else []
        while stack:
            directory = stack.pop()
            try:
                with os.scandir(directory) as scan:
                    entries = sorted(scan, key=lambda entry: entry.name, reverse=True)
            except (FileNotFoundError, NotADirectoryError):
                self.vanished += 1  # removed (or replaced by a file) while we walked
                continue
            for entry in entries:
                relative = entry.path[root_len:].replace(os.sep, "/")
                if entry.is_dir(follow_symlinks=False):
                    if relative.startswith(prefix) or prefix.startswith(relative + "/"):
                        stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False) and relative.startswith(prefix):
                    try:
                        stat = entry.stat(follow_symlinks=False)
                    except FileNotFoundError:
                        self.vanished += 1
                        continue
                    modified = datetime.fromtimestamp(stat.st_mtime, UTC)
                    page.append(ObjectInfo(relative, stat.st_size, modified, str(stat.st_mtime_ns)))
                    if len(page) >= self.page_size:
                        yield page
                        page = []
        if page:
            yield page

    async def aclose(self) -> None:
        return None
