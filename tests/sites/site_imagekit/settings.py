import os

from tests.sites.base import *  # noqa: F403

INSTALLED_APPS = ["django.contrib.contenttypes", "imagekit", "batchthumb.django", "tests.sites.site_imagekit"]
if os.environ.get("BT_EASY_ALIAS"):  # the site after an easy-thumbnails alias was added
    INSTALLED_APPS.insert(1, "easy_thumbnails")
    THUMBNAIL_ALIASES = {"": {"small": {"size": (100, 100), "crop": True}}}
