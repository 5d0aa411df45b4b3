"""What every drop-in library shares: the rows a library keeps besides the file, and the
checks of its tables in the catalog.

sorl-thumbnail decides that a thumbnail exists from its key value store
(``thumbnail_kvstore``), easy-thumbnails from its ``easy_thumbnails_source`` and
``easy_thumbnails_thumbnail`` rows (remote storage; on disk, from modification times), not
from the file: a file without its rows makes the site HEAD it, read the source again or render
again. So a drop-in run writes the rows the library would write, in the same shielded block as
its own registry rows (the objects exist by then), and a purge removes them before the objects
go. Every write is batched: one statement per kind of row and batch, never a query per
thumbnail. Each library's rows are its module's (``Library.metadata``); this module holds
the checks of their tables; their common shape (``LibraryStore``) and what they are given
(``Written``, ``Gone``) are in :mod:`batchthumb.django.base`.
"""

from __future__ import annotations

from batchthumb.database import Database
from batchthumb.errors import ConfigError
from batchthumb.queries import query, quote_identifier, split_table


async def checked_table(db: Database, where: str, table: str, columns: set[str], app: str) -> str:
    """``table`` quoted, once the catalog shows it in the sources' database with ``columns``."""
    schema, name = split_table(table)
    rows = await db.fetch("reading the catalog", query("table_columns"), schema, name)
    found = {row[0] for row in rows}
    if not found:
        raise ConfigError(
            f"{where}: table {schema}.{name} not found in the sources' database; "
            f"run the site's migrations ({app}) first"
        )
    missing = columns - found
    if missing:
        raise ConfigError(f"{where}: has no column {', '.join(sorted(missing))}: not {app}'s table")
    return f"{quote_identifier(schema)}.{quote_identifier(name)}"
