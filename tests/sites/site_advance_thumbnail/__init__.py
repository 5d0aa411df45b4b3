"""The advance_thumbnail test site's app ``gallery``."""
