"""A Django site whose model uses the libraries, on the test Postgres and a media directory.

Configured by the environment: ``BT_DSN`` (the database), ``BT_MEDIA_ROOT``,
``BT_ON_DEMAND`` (versatileimagefield's ``create_images_on_demand``), ``BT_EASY``
(easy-thumbnails' aliases, JSON ``[[name, options], ...]``) and ``BT_EASY_DIMENSIONS``
(``THUMBNAIL_CACHE_DIMENSIONS``), and for S3 (django-storages) ``BT_S3_ENDPOINT``,
``BT_S3_BUCKET``, ``BT_S3_LOCATION`` (and ``BT_S3_ACCESS_KEY``, ``BT_S3_SECRET_KEY``).
"""

from __future__ import annotations

import json
import os
from urllib.parse import parse_qs, urlsplit

from tests.django_site.s3 import s3_storage

_dsn = urlsplit(os.environ["BT_DSN"])
_query = parse_qs(_dsn.query)

SECRET_KEY = "batchthumb-tests"
USE_TZ = True
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "versatileimagefield",
    "imagekit",
    "django_advance_thumbnail",
    "sorl.thumbnail",
    "easy_thumbnails",  # after sorl: {% load thumbnail %} is easy-thumbnails' (sorl's: sorl_thumbnail)
    "tests.django_site.gallery",
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
MEDIA_ROOT = os.environ["BT_MEDIA_ROOT"]
MEDIA_URL = "/media/"
STATIC_URL = "/static/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
if os.environ.get("BT_S3_ENDPOINT"):
    STORAGES["default"] = s3_storage()
# No cache: every library has to find out from storage whether a rendition exists; or, with
# BT_CACHE_URL, a shared Redis cache (sorl's cached_db key value store reads through it).
CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
if os.environ.get("BT_CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["BT_CACHE_URL"],
        }
    }
VERSATILEIMAGEFIELD_SETTINGS = {
    "jpeg_resize_quality": 85,
    "create_images_on_demand": os.environ.get("BT_ON_DEMAND", "1") == "1",
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
THUMBNAIL_DEBUG = True  # sorl: raise, never hide a failure behind a dummy image
THUMBNAIL_ALIASES = {"": dict(json.loads(os.environ.get("BT_EASY", "[]")))}
THUMBNAIL_CACHE_DIMENSIONS = os.environ.get("BT_EASY_DIMENSIONS", "1") == "1"
