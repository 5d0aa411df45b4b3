"""The exception tree of batchthumb, and the exit statuses of its command line.

Every error the tool raises on purpose derives from :class:`BatchthumbError`; its
``exit_status`` is what the command line exits with. Errors of outside systems are
translated where they are called: asyncpg's in ``database.py``, botocore's in
``stores/s3.py``, libvips' in ``render.py``.

::

    BatchthumbError                 the run aborted (exit 1)
    ├── ConfigError                 a bad config file, key or value (exit 2)
    ├── UsageError                  bad command-line arguments (exit 2)
    ├── RunLocked                   another run holds this job's lock (exit 4)
    ├── Interrupted                 a second signal abandoned the items in flight (exit 128 + signal)
    ├── PurgeRefused                a purge stopped before deleting anything (--max-delete)
    ├── RegistryError               the Postgres registry or a source table
    │   ├── QueryRefused            Postgres refused a statement (not a lost connection)
    │   └── IdentifierError         a table or column name that is unsafe or absent (exit 2)
    ├── CacheError                  the site's shared cache (Redis) failed: nothing is deleted after it
    ├── StoreError                  an object store refused or failed a request
    │   ├── CredentialsRefused      the store refused the credentials: the run stops at once
    │   ├── ObjectNotFound          a source object is missing                  (item)
    │   ├── UnsafeKeyError          a key that would escape the store's root    (item)
    │   └── SourceTooLarge          a source object has more bytes than allowed (item)
    ├── RenderError                 libvips could not decode or encode an image (item)
    │   └── ImageTooLarge           the header declares more pixels than allowed (item)
    └── OverMemoryBudget            one source alone costs more than limits.memory (item)

``ItemError`` marks the per-item failures (item): they never stop a run; the source
is recorded in the failures table and the run goes on. Their ``permanent`` flag says
whether later runs skip that source until it changes.
"""

from __future__ import annotations

from enum import IntEnum


class ExitStatus(IntEnum):
    """What the command line exits with (the help, the docs and the README are checked against it)."""

    OK = 0
    """The run did everything it was asked (or had nothing to do)."""
    ABORTED = 1
    """The run stopped on an error: one line says which."""
    USAGE = 2
    """A usage or configuration error: nothing was done."""
    ITEMS_FAILED = 3
    """The run finished, but some items failed: they are in the summary and the failures table."""
    LOCKED = 4
    """Another run holds this job's lock: nothing was done."""
    SIGNALLED = 128
    """Plus the signal number (130 SIGINT, 143 SIGTERM): the run was interrupted."""


class BatchthumbError(Exception):
    """batchthumb failed."""

    exit_status: int = ExitStatus.ABORTED
    permanent = False

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__ or self.__class__.__name__)

    @property
    def message(self) -> str:
        return str(self.args[0])


class ItemError(BatchthumbError):
    """One item (a source) failed; the run goes on without it."""


class ConfigError(BatchthumbError):
    """The configuration is invalid."""

    exit_status = ExitStatus.USAGE


class UsageError(BatchthumbError):
    """The command line is invalid."""

    exit_status = ExitStatus.USAGE


class RunLocked(BatchthumbError):
    """Another run holds this job's lock."""

    exit_status = ExitStatus.LOCKED


class Interrupted(BatchthumbError):
    """The run was interrupted and its in-flight items abandoned."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_status = ExitStatus.SIGNALLED + signal_number


class PurgeRefused(BatchthumbError):
    """The purge was stopped before deleting anything."""


class RegistryError(BatchthumbError):
    """The registry database failed."""


class QueryRefused(RegistryError):
    """Postgres refused a statement."""


class IdentifierError(RegistryError):
    """A configured table or column name is unsafe or does not exist."""

    exit_status = ExitStatus.USAGE


class CacheError(BatchthumbError):
    """The site's shared cache could not be reached or refused a request."""


class SourceChanged(ItemError):
    """The source was replaced or deleted while it was rendered: nothing of it was kept."""


class StoreError(BatchthumbError):
    """An object store request failed."""


class CredentialsRefused(StoreError):
    """The store refused the credentials themselves (wrong key or secret, expired token).

    Not about one object: every other request would be refused too, so a run stops at the
    first one rather than recording each source as failed.
    """


class ObjectNotFound(StoreError, ItemError):
    """The object does not exist in the store."""

    # A missing source may be uploaded later: retried by the next run.
    permanent = False


class UnsafeKeyError(StoreError, ItemError):
    """The key would escape the store's root."""

    permanent = True


class SourceTooLarge(StoreError, ItemError):
    """The source object has more bytes than ``limits.max_source_bytes``."""

    permanent = True


class RenderError(ItemError):
    """libvips could not process the image."""

    permanent = True


class ImageTooLarge(RenderError):
    """The image declares more pixels than ``limits.max_pixels``."""

    permanent = True


class OverMemoryBudget(ItemError):
    """One source alone would cost more memory than the whole ``limits.memory`` budget."""

    # the same source fails the same way until the budget is raised (then --retry-failed)
    permanent = True
