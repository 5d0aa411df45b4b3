"""The wagtail test site's app ``gallery``."""
