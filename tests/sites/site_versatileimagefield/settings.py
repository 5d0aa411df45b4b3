from tests.sites.base import *  # noqa: F403

INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "versatileimagefield",
    "batchthumb.django",
    "tests.sites.site_versatileimagefield",
]
VERSATILEIMAGEFIELD_SETTINGS = {"jpeg_resize_quality": 85}
VERSATILEIMAGEFIELD_RENDITION_KEY_SETS = {
    "photo": [("thumbnail_300", "thumbnail__300x300"), ("crop_300", "crop__300x300")],
}
