"""One Django configuration for the tests that import the libraries' own code in the test process.

Django is configured once per process; the property and table tests of every library share this
(no database, no storage: the libraries' pure code, and Wagtail's models imported, not used).
"""

from __future__ import annotations

APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "sorl.thumbnail",
    "easy_thumbnails",
    "taggit",
    "wagtail",
    "wagtail.images",
]


def configure() -> None:
    from django.conf import settings

    if settings.configured:
        return
    settings.configure(
        INSTALLED_APPS=APPS,
        THUMBNAIL_DEBUG=True,
        DATABASES={},
        USE_TZ=True,
        SECRET_KEY="not-a-secret: no site runs here",
        WAGTAIL_SITE_NAME="tests",
        STATIC_URL="/static/",
    )
    import django

    django.setup()
