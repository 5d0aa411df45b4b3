"""The default storage, counting what the libraries ask of it."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.files.storage import FileSystemStorage
from storages.backends.s3 import S3Storage

CALLS: Counter[str] = Counter()
"""Calls by operation (``save``, ``open``, ``exists``, ...), and ``open <name>`` per file."""


class Counting:
    """Counts the calls of the storage it is mixed into."""

    def _save(self, name: str, content: Any) -> str:
        CALLS["save"] += 1
        return str(super()._save(name, content))  # type: ignore[misc]

    def _open(self, name: str, mode: str = "rb") -> Any:
        CALLS["open"] += 1
        CALLS[f"open {name}"] += 1
        return super()._open(name, mode)  # type: ignore[misc]

    def exists(self, name: str) -> bool:
        CALLS["exists"] += 1
        return bool(super().exists(name))  # type: ignore[misc]

    def delete(self, name: str) -> None:
        CALLS["delete"] += 1
        super().delete(name)  # type: ignore[misc]


class CountingStorage(Counting, FileSystemStorage):
    """The default storage on a directory."""


class CountingS3Storage(Counting, S3Storage):
    """django-storages' S3 backend (``BT_S3_ENDPOINT``)."""
