"""The one place batchthumb calls asyncpg: a pool, named queries, lost connections, errors.

Every statement goes through :class:`Database`, which

- fills a named query from ``sql/queries.sql`` with the registry schema (and, for the
  user's tables, identifiers already validated and quoted by ``queries.py``);
- runs an *idempotent* statement again, on a fresh connection, when its connection was
  lost (a restart, a failover, a proxy that dropped it): keyset reads, upserts and
  deletes give the same result twice;
- turns every asyncpg error into :class:`RegistryError`, saying what was being done, so
  no driver exception reaches the jobs (procrastinate's ``wrap_exceptions``).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import asyncpg

from batchthumb.errors import BatchthumbError, QueryRefused, RegistryError
from batchthumb.queries import query, quote_identifier

if TYPE_CHECKING:
    from batchthumb.models import DatabaseConfig

T = TypeVar("T")

CONNECTION_ERRORS = (
    asyncpg.PostgresConnectionError,  # class 08: the connection failed
    asyncpg.ConnectionDoesNotExistError,  # closed under us
    asyncpg.exceptions.AdminShutdownError,  # server restart
    asyncpg.CannotConnectNowError,  # server starting up
    OSError,  # reset, refused
)
DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0)
"""Waits before each new attempt of an idempotent statement whose connection was lost."""


def connection_lost(exc: BaseException) -> bool:
    """True for errors that mean the connection went away (not misuse of a live one)."""
    if isinstance(exc, CONNECTION_ERRORS):
        return True
    # e.g. "cannot call Transaction.__aexit__(): the underlying connection is closed"
    return isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """asyncpg's errors (and a socket's) inside the block, as :class:`RegistryError`."""
    try:
        yield
    except BatchthumbError:
        raise
    except DRIVER_ERRORS as exc:
        raise _refused(what, exc) from exc


def _refused(what: str, exc: BaseException) -> RegistryError:
    """A Postgres error as ours: :class:`QueryRefused` when the server refused the statement."""
    kind = (
        QueryRefused if isinstance(exc, asyncpg.PostgresError) and not connection_lost(exc) else RegistryError
    )
    return kind(f"registry: {what}: {type(exc).__name__}: {exc}")


async def connect(config: DatabaseConfig, what: str = "") -> Any:
    """One connection of its own (run locks hold one for a whole run)."""
    try:
        return await asyncpg.connect(config.dsn.get_secret_value(), timeout=config.connect_timeout_s)
    except (*DRIVER_ERRORS, TimeoutError) as exc:
        raise _cannot_connect(config, exc, what) from None


def _cannot_connect(config: DatabaseConfig, exc: BaseException, what: str) -> RegistryError:
    reason = str(exc).replace(config.dsn.get_secret_value(), config.redacted_dsn())
    return RegistryError(f"cannot connect to {config.redacted_dsn()}{what}: {reason or type(exc).__name__}")


class Database:
    """A pool on the registry's database; ``schema`` is the registry schema, quoted."""

    def __init__(self, pool: asyncpg.Pool, config: DatabaseConfig) -> None:
        self.pool = pool
        self.config = config
        self.schema_name = config.registry_schema
        self.schema = quote_identifier(config.registry_schema, "registry schema")

    @classmethod
    async def connect(cls, config: DatabaseConfig, pool_size: int | None = None) -> Database:
        """Open a pool; a failure names the server (without its password) and the reason."""
        try:
            pool = await asyncpg.create_pool(
                config.dsn.get_secret_value(),
                min_size=1,
                max_size=pool_size or config.pool_size,
                timeout=config.connect_timeout_s,
                command_timeout=None,
            )
        except (*DRIVER_ERRORS, TimeoutError) as exc:
            raise _cannot_connect(config, exc, "") from None
        return cls(pool, config)

    async def close(self) -> None:
        await self.pool.close()

    def q(self, name: str, **identifiers: str) -> str:
        """The named query, with the registry schema and these quoted identifiers filled in."""
        return query(name, schema=self.schema, **identifiers)

    # -- statements ------------------------------------------------------------------

    async def fetch(self, what: str, sql: str, *args: Any, idempotent: bool = True) -> list[Any]:
        rows: list[Any] = await self.run(what, lambda conn: conn.fetch(sql, *args), idempotent)
        return rows

    async def fetchval(self, what: str, sql: str, *args: Any, idempotent: bool = True) -> Any:
        return await self.run(what, lambda conn: conn.fetchval(sql, *args), idempotent)

    async def execute(self, what: str, sql: str, *args: Any, idempotent: bool = True) -> int:
        """Run a statement; return the rows it touched (from its status, ``DELETE 12``)."""
        status: str = await self.run(what, lambda conn: conn.execute(sql, *args), idempotent)
        return touched(status)

    async def transaction(
        self, what: str, statements: list[tuple[str, tuple[Any, ...]]], idempotent: bool = True
    ) -> list[list[Any]]:
        """Several statements in one transaction, retried as a whole; the rows each returned."""

        async def run_all(conn: Any) -> list[list[Any]]:
            async with conn.transaction():
                return [await conn.fetch(sql, *args) for sql, args in statements]

        return await self.run(what, run_all, idempotent)

    async def run(self, what: str, operation: Callable[[Any], Awaitable[T]], idempotent: bool = True) -> T:
        """``operation(connection)`` on a pooled connection; retried if idempotent; errors translated."""
        delays_s = RETRY_DELAYS_S if idempotent else ()
        for delay_s in (*delays_s, None):
            try:
                async with self.pool.acquire() as conn:
                    return await operation(conn)
            except DRIVER_ERRORS as exc:
                if not connection_lost(exc):
                    raise _refused(what, exc) from exc
                if delay_s is None:
                    raise RegistryError(
                        f"registry connection lost during {what}"
                        + (f" and not regained after {len(delays_s)} retries" if delays_s else "")
                        + f": {type(exc).__name__}: {exc}; the run stops, a re-run resumes"
                    ) from exc
            await anyio.sleep(delay_s)
        raise AssertionError("unreachable")

    @asynccontextmanager
    async def connection(self, what: str) -> AsyncIterator[Any]:
        """A connection held for a block (a purge's plan table lives on one); errors translated."""
        with translated(what):
            async with self.pool.acquire() as conn:
                yield conn


def touched(status: str) -> int:
    """The rows a statement touched, from its status (``DELETE 12``, ``UPDATE 3``)."""
    last = status.split()[-1] if status else ""
    return int(last) if last.isdigit() else 0
