"""The sorl test site's app ``gallery``."""
