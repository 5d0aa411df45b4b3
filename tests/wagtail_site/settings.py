"""A Wagtail site with the stock image model, on the test Postgres and a media directory.

Configured by the environment: ``BT_DSN`` (the database), ``BT_MEDIA_ROOT``, and for S3
(django-storages, ``file_overwrite`` as the site sets it) ``BT_S3_ENDPOINT``, ``BT_S3_BUCKET``,
``BT_S3_LOCATION``; ``BT_CACHE_URL``: Wagtail's renditions cache on that Redis.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from tests.django_site.s3 import s3_storage

_dsn = urlsplit(os.environ["BT_DSN"])
_query = parse_qs(_dsn.query)

SECRET_KEY = "batchthumb-tests"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "taggit",
    "modelcluster",
    "wagtail",
    "wagtail.admin",
    "wagtail.images",
]
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": _dsn.path.lstrip("/"),
        "USER": _dsn.username or "postgres",
        "PASSWORD": _dsn.password or "",
        "HOST": _dsn.hostname or _query.get("host", [""])[0],
        "PORT": str(_dsn.port or ""),
    }
}
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [Path(__file__).parent / "templates"],
        "APP_DIRS": True,
    }
]
MEDIA_ROOT = os.environ["BT_MEDIA_ROOT"]
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
WAGTAIL_SITE_NAME = "batchthumb tests"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
"""No renditions cache: every lookup reaches the rows (what a cold cache does); or, with
``BT_CACHE_URL``, a shared Redis renditions cache, as a production site has."""
if os.environ.get("BT_CACHE_URL"):
    CACHES["renditions"] = {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": os.environ["BT_CACHE_URL"],
    }
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if os.environ.get("BT_S3_ENDPOINT"):
    STORAGES["default"] = s3_storage(file_overwrite=True)  # django-storages' default
