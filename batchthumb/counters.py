"""What runs count: one base for every job, and the counts of generate and of the purges.

The summary, ``--json``, the ``runs`` table and the exit status all read these, so
each count is added exactly once, where the work it counts is known to be done.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar


@dataclass
class RunCounters:
    """What every run counts: deletions, failures (the first ones kept as lines), an interruption."""

    failed: int = 0
    """Items that failed (sources for generate, objects for a purge)."""
    deleted: int = 0
    """Objects deleted (superseded ones for generate)."""
    bytes_deleted: int = 0
    changed_urls: int = 0
    """Objects overwritten in place or deleted: URLs a CDN may serve stale."""
    invalidations: int = 0
    """CloudFront invalidations created for them."""
    failures: list[str] = field(default_factory=list)
    """The first failures, one line each, for the summary."""
    interrupted: bool = False
    """Set when a signal stopped the run gracefully before its end."""

    MAX_LISTED_FAILURES: ClassVar[int] = 20

    def add_failure(self, line: str) -> None:
        self.failed += 1
        if len(self.failures) < self.MAX_LISTED_FAILURES:
            self.failures.append(line)

    @property
    def outcome(self) -> str:
        """How a run that ended without an error went."""
        if self.interrupted:
            return "interrupted"
        return "completed_with_failures" if self.failed else "completed"

    def as_dict(self) -> dict[str, Any]:
        """The counts alone, for --json and the runs table."""
        data = asdict(self)
        data.pop("failures")
        data.pop("interrupted")
        return data


@dataclass
class GenerateCounters(RunCounters):
    """What a generate or regenerate did. Renditions are counted one by one; failures by source."""

    sources: int = 0
    """Sources planned for work."""
    written: int = 0
    """Renditions written (new or rebuilt)."""
    stale: int = 0
    """Of those written, how many replaced a stale rendition."""
    skipped: int = 0
    """Renditions already up to date, left alone."""
    not_rendered: int = 0
    """Sources their library makes nothing of (Wagtail's SVGs), reported, not failed."""
    source_changed: int = 0
    """Sources replaced or deleted while they were rendered: what was written of them was taken
    back (the next run renders the current version)."""
    bytes_written: int = 0
    placeholders: int = 0
    """Sources whose placeholders were made (or remade) and recorded."""
    columns_written: int = 0
    """Source rows whose rendition column now holds the rendition's name."""
    columns_kept: int = 0
    """Source rows whose rendition column held a value the application wrote (left alone)."""
    memory_budget: int = 0
    """``limits.memory`` in bytes, as this run resolved it."""
    memory_reserved_peak: int = 0
    """The most of the budget the sources in flight held at once."""
    memory_waits: int = 0
    """Sources that waited for others to give memory back before being read."""


@dataclass
class PurgeCounters(RunCounters):
    """What a purge did; ``failed`` counts objects a delete reported an error for."""

    listed: int = 0
    """Objects found by listing the target prefix."""
    referenced: int = 0
    """Listed objects the registry references (kept)."""
    too_young: int = 0
    """Unreferenced objects younger than the grace (kept)."""
    site_referenced: int = 0
    """Listed objects the site's library lists for a source that still exists (kept, whoever
    made them): sorl's key value rows, easy-thumbnails' rows, a model's thumbnail column."""
    planned: int = 0
    """Objects selected for deletion (what --dry-run lists)."""
    planned_bytes: int = 0
    rows_removed: int = 0
    columns_cleared: int = 0
    """Source rows whose rendition column named a deleted object (now empty)."""
    protected: int = 0
    """Planned objects kept at the last check: a source row references them, or not our pattern."""
    sources_listed: int = 0
    """``--missing-sources``: objects found by listing the source store."""
    sources_missing: int = 0
    """``--missing-sources``: sources whose row is there but whose object the listing lacks."""


@dataclass
class UploadCounters(PurgeCounters):
    """``purge uploads``: ``deleted`` counts files; what went with them is counted apart."""

    renditions_deleted: int = 0
    """``--delete-rows``: renditions of the deleted files."""
    rows_deleted: int = 0
    """``--delete-rows``: rows of the source table deleted after their files."""
    rows_kept: int = 0
    """``--delete-rows``: planned rows that no longer matched, or whose file could not go."""


@dataclass
class AdoptCounters(RunCounters):
    """What ``adopt`` found: objects listed, renditions missing from the registry, and adopted."""

    listed: int = 0
    sources: int = 0
    missing: int = 0
    """Renditions the registry did not have (what ``generate`` would have rendered)."""
    adopted: int = 0
    """Of those, the ones the library had already made: recorded as done."""


@dataclass
class VerifyCounters(RunCounters):
    """What ``verify`` found by one listing of the target, and what ``--repair`` rebuilt."""

    listed: int = 0
    """Objects the listing returned."""
    listing_requests: int = 0
    """Listing requests (pages) sent: the whole cost in store requests, no HEAD."""
    checked: int = 0
    """Registry rows compared with the listing."""
    missing: int = 0
    """Rows whose object the listing lacks."""
    wrong_size: int = 0
    """Rows whose object is listed with another size than recorded."""
    marked: int = 0
    """Rows marked damaged: the next ``generate`` (or ``--repair``) rebuilds exactly these."""
    whole_again: int = 0
    """Rows marked by an earlier verify whose object is whole again: trusted again."""
    unreferenced: int = 0
    """Listed objects no registry row references (``purge orphans``' business; counted only)."""
    repaired: int = 0
    """Renditions ``--repair`` rebuilt."""
    bytes_written: int = 0


@dataclass(frozen=True)
class Finished:
    """A job that ran to its end (completed, with failures, or interrupted gracefully)."""

    command: str
    counters: RunCounters
    outcome: str
    dry_run: bool
    duration_s: float
    exit_status: int
