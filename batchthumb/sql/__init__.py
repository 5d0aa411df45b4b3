"""SQL files: ``queries.sql`` and ``migrations/``, loaded by ``batchthumb.queries``."""
