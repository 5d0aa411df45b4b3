"""The imagekit test site's app ``gallery``."""
