from tests.sites.base import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django_advance_thumbnail",
    "batchthumb.django",
    "tests.sites.site_advance_thumbnail",
]
