import os

from tests.sites.base import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "easy_thumbnails",
    "batchthumb.django",
    "tests.sites.site_easy_thumbnails",
]
THUMBNAIL_ALIASES = {
    "": {
        "fit": {"size": (300, 300), "quality": 85},
        "crop": {"size": (300, 300), "crop": True, "quality": 85},
    }
}
if os.environ.get("BT_NAMER"):  # a custom namer: names batchthumb cannot know
    THUMBNAIL_NAMER = os.environ["BT_NAMER"]
if os.environ.get("BT_EASY_TAGS"):  # templates with easy-thumbnails' own {% thumbnail %} tags
    TEMPLATES = [{**TEMPLATES[0], "DIRS": [os.path.join(os.path.dirname(__file__), "tag_templates")]}]  # noqa: F405
