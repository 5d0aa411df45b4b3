"""Named SQL queries, and the one place where identifiers from the config enter SQL.

Queries live in ``sql/queries.sql`` (``-- name: x`` blocks) and migrations in
``sql/migrations/NNN_*.sql``. Their ``{placeholders}`` are identifiers (schema,
table and column names) that :func:`quote_identifier` has validated and quoted,
or fragments built here from such identifiers. Values are always ``$n``
parameters. The one exception is a source set's ``filter``, a SQL expression the
operator writes in the config on purpose; it is checked by Postgres at start-up.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from batchthumb.errors import IdentifierError

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")


def quote_identifier(name: str, what: str = "identifier") -> str:
    """``name`` double-quoted, after refusing anything but a plain SQL identifier."""
    if not IDENTIFIER.match(name):
        raise IdentifierError(
            f"{what} {name!r} is not a plain SQL identifier "
            "(letters, digits, '_' and '$', at most 63, not starting with a digit)"
        )
    return '"' + name.replace('"', '""') + '"'


def name_literal(name: str) -> str:
    """A source set's name as a SQL string literal: its config pattern (lowercase letters,
    digits, ``_`` and ``-``) leaves nothing to escape, and anything else is refused."""
    if not re.match(r"^[a-z0-9][a-z0-9_-]{0,62}$", name):
        raise IdentifierError(f"source set name {name!r} is not a plain name")
    return f"'{name}'"


def check_expression(text: str, what: str) -> str:
    """An operator's SQL condition (a source set's ``filter``, ``purge uploads --where``), refused
    unless it is one expression that stays inside the parentheses it is put in: no ``;``, no
    comment, and no ``)`` that closes more than it opened (``true) OR (true`` would otherwise
    turn ``... AND (<it>)`` into a condition true for every row of a DELETE)."""
    depth, quote, index = 0, "", 0
    while index < len(text):
        char = text[index]
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == ";" or text.startswith(("--", "/*"), index):
            raise IdentifierError(f"{what} {text!r}: one SQL expression, without ';' or comments")
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                break
        index += 1
    if depth != 0 or quote:
        raise IdentifierError(f"{what} {text!r}: unbalanced parentheses or quotes")
    return text


def split_table(name: str) -> tuple[str, str]:
    """``schema.table`` or ``table`` -> (schema, table), each validated."""
    parts = name.split(".")
    if len(parts) == 1:
        parts = ["public", parts[0]]
    if len(parts) != 2:
        raise IdentifierError(f"table {name!r} must be 'table' or 'schema.table'")
    for part in parts:
        quote_identifier(part, "table")
    return parts[0], parts[1]


@cache
def _named_queries() -> dict[str, str]:
    text = resources.files("batchthumb.sql").joinpath("queries.sql").read_text()
    queries: dict[str, str] = {}
    name = None
    for line in text.splitlines():
        match = re.match(r"^-- name: (\w+)\s*$", line)
        if match:
            name = match.group(1)
            queries[name] = ""
        elif name is not None and not line.startswith("--"):
            queries[name] += line + "\n"
    return {key: value.strip() for key, value in queries.items()}


def query(name: str, **identifiers: str) -> str:
    """The named query with its ``{placeholders}`` filled by already-quoted identifiers."""
    return _named_queries()[name].format(**identifiers)


def migrations() -> list[tuple[int, str]]:
    """(version, SQL template) in order."""
    folder = resources.files("batchthumb.sql").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        match = re.match(r"^(\d+)_\w+\.sql$", entry.name)
        if match:
            found.append((int(match.group(1)), entry.read_text()))
    return sorted(found)


@dataclass(frozen=True)
class SourceIdentifiers:
    """A source set's table and columns, validated against the catalog and quoted."""

    table: str
    key_column: str
    path_column: str
    fingerprint: str
    """What changes when a crop about the focal point must be rebuilt: the source, or the point."""
    filter: str
    ppoi: str = "NULL"
    """The source set's focal point as text (its PPOI column, or its focal point columns)."""
    plain_fingerprint: str = "NULL"
    """What changes when any other rendition must be rebuilt: the source alone."""

    def fill(self, name: str, schema: str, **extra: str) -> str:
        return query(
            name,
            schema=schema,
            table=self.table,
            key_column=self.key_column,
            path_column=self.path_column,
            fingerprint=self.fingerprint,
            plain_fingerprint=self.plain_fingerprint,
            filter=self.filter,
            ppoi=self.ppoi,
            **extra,
        )
