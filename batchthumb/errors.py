"""The exception tree of batchthumb.

Every error the tool raises on purpose derives from :class:`BatchthumbError`;
its ``exit_status`` is what the command line exits with.

::

    BatchthumbError                 exit 1: the run aborted
    ├── ConfigError                 exit 2: a bad config file, key or value
    ├── UsageError                  exit 2: bad command-line arguments
    ├── RegistryError               the Postgres registry or a source table
    │   └── IdentifierError         a table or column name that is not safe or does not exist
    ├── StoreError                  an object store refused or failed a request
    │   ├── ObjectNotFound          a source object is missing (a per-item failure)
    │   └── UnsafeKeyError          a key that would escape the store's root
    ├── RenderError                 libvips could not decode or encode an image (a per-item failure)
    │   └── ImageTooLarge           the header declares more pixels or bytes than the limits allow
    ├── PurgeRefused                a purge stopped before deleting anything (--max-delete)
    └── Interrupted                 a second signal abandoned the items in flight (exit 128 + signal)

Per-item errors (``ObjectNotFound``, ``RenderError``) never stop a run: the item
is recorded in the failures table and the run goes on. The ``permanent`` flag
says whether a later run should skip that source until it changes.
"""

from __future__ import annotations


class BatchthumbError(Exception):
    """batchthumb failed."""

    exit_status = 1
    permanent = False

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__ or self.__class__.__name__)

    @property
    def message(self) -> str:
        return str(self.args[0])


class ConfigError(BatchthumbError):
    """The configuration is invalid."""

    exit_status = 2


class UsageError(BatchthumbError):
    """The command line is invalid."""

    exit_status = 2


class RegistryError(BatchthumbError):
    """The registry database failed."""


class IdentifierError(RegistryError):
    """A configured table or column name is unsafe or does not exist."""

    exit_status = 2


class StoreError(BatchthumbError):
    """An object store request failed."""


class ObjectNotFound(StoreError):
    """The object does not exist in the store."""

    # A missing source may be uploaded later: retried by the next run.
    permanent = False


class UnsafeKeyError(StoreError):
    """The key would escape the store's root."""

    permanent = True


class RenderError(BatchthumbError):
    """libvips could not process the image."""

    permanent = True


class ImageTooLarge(RenderError):
    """The image exceeds the configured size limits."""

    permanent = True


class PurgeRefused(BatchthumbError):
    """The purge was stopped before deleting anything."""


class Interrupted(BatchthumbError):
    """The run was interrupted and its in-flight items abandoned."""

    def __init__(self, message: str, signal_number: int) -> None:
        super().__init__(message)
        self.exit_status = 128 + signal_number
