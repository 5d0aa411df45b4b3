"""Shards: ``--shard I/N`` splits a job across N copies, each doing the sources whose key hashes to I.

The hash is Postgres' ``hashtextextended`` of the source key, computed inside the planning
query, so the N copies together do exactly the work of one, whatever order they start in.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from batchthumb.errors import UsageError

SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str | None) -> Shard:
        """``"I/N"`` (0 <= I < N); ``None`` or empty is the whole job."""
        if not text:
            return cls()
        match = SHARD.match(text)
        if not match:
            raise UsageError(f"--shard {text!r}: use I/N, e.g. 0/4 for the first of four copies")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or not 0 <= index < count:
            raise UsageError(f"--shard {text!r}: the index must be between 0 and {max(count - 1, 0)}")
        return cls(index, count)

    @property
    def whole(self) -> bool:
        return self.count == 1

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


WHOLE = Shard()
"""The whole job: no sharding."""
