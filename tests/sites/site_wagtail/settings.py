from tests.sites.base import *  # noqa: F403

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
    "batchthumb.django",
    "tests.sites.site_wagtail",
]
WAGTAIL_SITE_NAME = "batchthumb tests"
if os.environ.get("BT_S3_ENDPOINT"):  # noqa: F405
    STORAGES["default"] = s3_storage(file_overwrite=True)  # noqa: F405
