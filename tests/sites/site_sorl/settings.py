from tests.sites.base import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "sorl.thumbnail",
    "batchthumb.django",
    "tests.sites.site_sorl",
]
THUMBNAIL_DEBUG = True
