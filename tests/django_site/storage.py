"""Counting what the libraries ask of the site's storage, on the storage classes a site uses.

The classes are Django's ``FileSystemStorage`` and django-storages' ``S3Storage``
themselves, not subclasses: sorl-thumbnail and easy-thumbnails hash the storage's class
path into names and rows, so a site's real class path has to be the one in use.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Callable
from typing import Any

from django.core.files.storage import FileSystemStorage
from storages.backends.s3 import S3Storage

CALLS: Counter[str] = Counter()
"""Calls by operation (``save``, ``open``, ``exists``, ...), and ``open <name>`` per file."""

COUNTED = {
    "_save": "save",
    "_open": "open",
    "exists": "exists",
    "delete": "delete",
    "size": "size",
    "get_modified_time": "modified",
    "listdir": "listdir",
}


def _counted(operation: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def wrapper(self: Any, name: str, *args: Any, **kwargs: Any) -> Any:
        CALLS[operation] += 1
        if operation == "open":
            CALLS[f"open {name}"] += 1
        return method(self, name, *args, **kwargs)

    return wrapper


def count_calls() -> None:
    """Wrap the storage classes' operations (once) so that every call is counted."""
    for cls in (FileSystemStorage, S3Storage):
        if getattr(cls, "_batchthumb_counted", False):
            continue
        for attribute, operation in COUNTED.items():
            setattr(cls, attribute, _counted(operation, getattr(cls, attribute)))
        cls._batchthumb_counted = True  # type: ignore[attr-defined]
