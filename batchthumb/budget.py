"""The memory budget of the sources in flight (``limits.memory``).

A source costs its bytes (held from its GET until it is rendered) plus what its decode will
take, estimated from its header before the rest of it is read (``render.decode_cost``). The
fetch stage reserves that cost before reading the body and the render stage releases it
when the decode is done, so however many renders run at once, the sources between those two
points never add up to more than the budget.

Reservations are served first come, first served: a large source at the head of the queue
is not overtaken forever by small ones. Each source makes one reservation for its whole
cost, and nothing waits while holding one, so the queue always moves.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import anyio

from batchthumb.errors import OverMemoryBudget
from batchthumb.resources import format_bytes


@dataclass
class _Waiter:
    amount: int
    event: anyio.Event = field(default_factory=anyio.Event)
    granted: bool = False


class MemoryBudget:
    def __init__(self, total: int) -> None:
        self.total = total
        self.used = 0
        self.peak = 0
        """The most ever reserved at once (reported, and checked by the tests)."""
        self.waits = 0
        """Reservations that had to wait for others to be released."""
        self._queue: deque[_Waiter] = deque()

    async def reserve(self, amount: int, what: str = "a source") -> None:
        """Wait until ``amount`` bytes fit; ``OverMemoryBudget`` if they never can."""
        if amount > self.total:
            raise OverMemoryBudget(
                f"{what} needs about {format_bytes(amount)}, more than the whole memory budget "
                f"(limits.memory = {format_bytes(self.total)}); raise it and run with --retry-failed"
            )
        if not self._queue and self.used + amount <= self.total:
            self._take(amount)
            return
        waiter = _Waiter(amount)
        self._queue.append(waiter)
        self.waits += 1
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.granted:
                self.release(amount)  # cancelled just after being served: give it back
            else:
                self._queue.remove(waiter)
                self._serve()  # the next in line may fit now
            raise

    def release(self, amount: int) -> None:
        self.used -= amount
        self._serve()

    def _take(self, amount: int) -> None:
        self.used += amount
        self.peak = max(self.peak, self.used)

    def _serve(self) -> None:
        while self._queue and self.used + self._queue[0].amount <= self.total:
            waiter = self._queue.popleft()
            self._take(waiter.amount)
            waiter.granted = True
            waiter.event.set()
