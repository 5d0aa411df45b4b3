"""One Django site per library, as ``configs/django-*.toml`` and ``configs/wagtail.toml`` describe
them (the same models, settings and template tags), with ``batchthumb.django`` installed:
``python tests/sites/manage.py batchthumb ...`` with
``DJANGO_SETTINGS_MODULE=tests.sites.site_<library>.settings``.
"""
