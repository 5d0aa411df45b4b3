"""SIGINT and SIGTERM: the first stops a run gracefully, a second abandons what is in flight."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from batchthumb.errors import ExitStatus, Interrupted
from batchthumb.lifecycle import one_error
from batchthumb.report import Reporter


class Stopper:
    """Watches for signals around a job; ``event`` is the job's ``stop``."""

    def __init__(self, reporter: Reporter) -> None:
        self.reporter = reporter
        self.event = anyio.Event()
        self.signal_number = 0
        self.abandoned = False

    @property
    def exit_status(self) -> int:
        return ExitStatus.SIGNALLED + self.signal_number

    @asynccontextmanager
    async def watching(self) -> AsyncIterator[None]:
        """Run the block under the watch; a second signal cancels it and raises ``Interrupted``."""
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._watch, tg.cancel_scope)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            cause = one_error(group)  # the job's own error, not the group around it
            if cause is group:
                raise
            raise cause from cause.__cause__
        if self.abandoned:
            raise Interrupted(
                f"interrupted by {signal.Signals(self.signal_number).name} twice: items in flight "
                "were abandoned; the registry holds only what was stored, run again to finish",
                self.signal_number,
            )

    async def _watch(self, scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for number in signals:
                if not self.event.is_set():
                    self.signal_number = number
                    self.event.set()
                    self.reporter.info(
                        f"{signal.Signals(number).name}: stopping; finishing the items in flight "
                        "(signal again to abandon them)"
                    )
                else:
                    self.abandoned = True
                    scope.cancel()
