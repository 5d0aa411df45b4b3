"""The easy_thumbnails test site's app ``gallery``."""
