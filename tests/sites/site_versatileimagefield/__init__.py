"""The versatileimagefield test site's app ``gallery``."""
