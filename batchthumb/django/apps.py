"""``INSTALLED_APPS = [..., "batchthumb.django"]``: ``python manage.py batchthumb <command>``."""

from __future__ import annotations

from django.apps import AppConfig


class BatchthumbConfig(AppConfig):
    name = "batchthumb.django"
    label = "batchthumb"
    verbose_name = "batchthumb"
    default = True
