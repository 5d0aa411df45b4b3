"""What every test site shares: the test Postgres (``BT_DSN``), the media directory
(``BT_MEDIA_ROOT``) or S3 (``BT_S3_ENDPOINT``, ``BT_S3_BUCKET``, ``BT_S3_LOCATION``), no cache,
and ``batchthumb.django`` installed. Each library's ``settings.py`` adds its apps and settings."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlsplit

from tests.django_site.s3 import s3_storage

_dsn = urlsplit(os.environ["BT_DSN"])
_query = parse_qs(_dsn.query)

SECRET_KEY = "batchthumb-tests"
USE_TZ = True
DATABASES = {
    "default": {
        "ENGINE": os.environ.get("BT_DB_ENGINE", "django.db.backends.postgresql"),
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
CACHES = {"default": {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]
BATCHTHUMB = {"limits": {"render_workers": 2, "io_concurrency": 8, "record_interval_s": 0.2}}
"""The TOML's keys the site adds to what is derived: here, the tests' small limits."""
