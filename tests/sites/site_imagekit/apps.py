from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "tests.sites.site_imagekit"
    label = "gallery"
