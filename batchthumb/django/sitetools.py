"""What the library modules' ``derive`` share (``manage.py batchthumb``; it imports Django)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.conf import settings

if TYPE_CHECKING:
    from batchthumb.django.base import DerivedSite


def slug(text: str, limit: int = 60) -> str:
    """A rendition or source set name made of ``text``: lowercase letters, digits, ``-``."""
    return re.sub(r"[^a-z0-9_]+", "-", text.lower()).strip("-")[:limit].strip("-") or "x"


def literal(bit: str) -> tuple[bool, Any]:
    """A template tag argument: (True, its value) when it is a literal, else (False, None)."""
    from django.template.base import Variable

    try:
        variable = Variable(bit)
    except Exception:
        return False, None
    if variable.literal is not None:
        return True, variable.literal
    if bit in ("True", "False", "None"):
        return True, {"True": True, "False": False, "None": None}[bit]
    return False, None


def class_path(obj: Any) -> str:
    """``module.Class`` of an object (a lazy storage: of what it wraps)."""
    wrapped = getattr(obj, "_wrapped", None)
    if wrapped is not None and hasattr(obj, "_setup"):
        if type(wrapped).__name__ == "object":  # not set up yet
            obj._setup()
        obj = obj._wrapped
    return f"{type(obj).__module__}.{type(obj).__name__}"


REDIS_BACKENDS = ("django.core.cache.backends.redis.RedisCache", "django_redis.cache.RedisCache")


def shared_cache(site: DerivedSite, library: str, alias: str, origin: str) -> None:
    """``[django.<library>] cache``, ``cache_key_prefix``, ``cache_version`` from ``CACHES[alias]``
    when it is a shared Redis (the keys of the rows a run deletes are deleted there)."""
    cache = (getattr(settings, "CACHES", {}) or {}).get(alias)
    if cache is None:
        return
    backend = cache.get("BACKEND", "")
    where = f"CACHES[{alias!r}]"
    if backend in REDIS_BACKENDS:
        location = cache.get("LOCATION")
        location = location[0] if isinstance(location, list | tuple) else location
        from batchthumb.models import redact_url

        site.setting(library, "cache", location, f"{where}['LOCATION'] ({origin})")
        if cache.get("KEY_PREFIX"):
            site.setting(library, "cache_key_prefix", cache["KEY_PREFIX"], f"{where}['KEY_PREFIX']")
        if cache.get("VERSION", 1) != 1:
            site.setting(library, "cache_version", cache["VERSION"], f"{where}['VERSION']")
        site.notes.append(
            f"{library}: the keys of rows a run deletes are deleted from {redact_url(location)}"
        )
    elif not backend.endswith("DummyCache"):
        site.notes.append(
            f"{library}: {where} is {backend.rsplit('.', 1)[-1]}, which no other process can clear: "
            "the site may serve a deleted row from it until the entry expires"
        )
