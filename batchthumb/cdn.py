"""The URLs a run changed, and the CDN told about them.

A run that overwrites an object in place (a rendition rebuilt under the same name) or deletes
one (superseded, purged) changes what its URL serves. :class:`ChangedUrls` collects those
object keys as the run goes (on disk, not in memory: a prefix purge can change millions),
writes their URLs to ``--changed-urls FILE``, one per line, and, with
``cdn.cloudfront_distribution_id``, invalidates their paths on CloudFront at the end:
batches of at most 3000 paths, or one wildcard per folder when that is fewer paths.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

import aioboto3
import anyio
import anyio.to_thread
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from batchthumb.config import CdnConfig, Config
from batchthumb.errors import StoreError
from batchthumb.manifest import Urls
from batchthumb.report import Reporter

MAX_PATHS = 3000
"""CloudFront's limit of paths in one invalidation."""
SAFE = "/@:+,=~!$&'()*;"


def cloudfront_path(prefix: str, object_key: str) -> str:
    """The path CloudFront matches for an object key (URL-encoded as it is requested)."""
    return prefix + quote(object_key, safe=SAFE.replace("*", ""))


def invalidation_batches(paths: Iterable[str], folders: dict[str, int], total: int) -> Iterator[list[str]]:
    """Batches of at most :data:`MAX_PATHS`: the exact paths, or, when there are fewer folders
    than paths, one wildcard per folder (``/photos/hero/ab12/images/*``)."""
    if len(folders) < total:
        chosen: Iterable[str] = (folder + "*" for folder in sorted(folders))
    else:
        chosen = paths
    batch: list[str] = []
    for path in chosen:
        batch.append(path)
        if len(batch) == MAX_PATHS:
            yield batch
            batch = []
    if batch:
        yield batch


class ChangedUrls:
    """The object keys a run changed: to a file of URLs, then to CloudFront."""

    def __init__(self, config: Config, path: str | None, reporter: Reporter, dry_run: bool = False) -> None:
        self.cdn: CdnConfig = config.cdn
        self.urls = Urls.of(config)
        self.reporter = reporter
        self.path = path
        self.count = 0
        self.invalidations = 0
        self.wanted = not dry_run and (path is not None or self.cdn.cloudfront_distribution_id is not None)
        self._keys: IO[str] | None = None
        """The keys so far, one per line, in a temporary file (opened by the first)."""

    def add(self, object_keys: Iterable[str]) -> None:
        """Object keys whose URL now serves something else, or nothing."""
        if not self.wanted:
            return
        for key in object_keys:
            if self._keys is None:
                self._keys = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - close() closes it
            self._keys.write(key + "\n")
            self.count += 1

    def _read_keys(self) -> Iterator[str]:
        if self._keys is None:
            return
        self._keys.seek(0)
        for line in self._keys:
            yield line.rstrip("\n")

    async def write(self) -> None:
        """Write ``--changed-urls`` (empty when nothing changed)."""
        if self.wanted and self.path is not None:
            await anyio.to_thread.run_sync(self._write_urls, Path(self.path))
            self.reporter.detail(f"wrote {self.count:,} changed URLs to {self.path}")

    def close(self) -> None:
        """Done: the spooled keys go."""
        if self._keys is not None:
            self._keys.close()
        self._keys = None
        self.wanted = False

    def _write_urls(self, target: Path) -> None:
        with target.open("w", encoding="utf-8") as out:
            for key in self._read_keys():
                out.write(self.urls(key) + "\n")

    def _folders(self) -> dict[str, int]:
        """Changed paths by folder: one pass over them, memory by folders, not by paths."""
        folders: dict[str, int] = {}
        for path in self._paths():
            folder = path.rsplit("/", 1)[0] + "/"
            folders[folder] = folders.get(folder, 0) + 1
        return folders

    def _paths(self) -> Iterator[str]:
        prefix = self.cdn.cloudfront_path_prefix
        return (cloudfront_path(prefix, key) for key in self._read_keys())

    async def invalidate(self) -> None:
        """CreateInvalidation, batch by batch, when a distribution is configured and anything
        changed; a refused one stops with the reason."""
        cdn = self.cdn
        if not self.wanted or cdn.cloudfront_distribution_id is None or not self.count:
            return
        folders = await anyio.to_thread.run_sync(self._folders)
        session = aioboto3.Session(
            aws_access_key_id=_secret(cdn.access_key_id),
            aws_secret_access_key=_secret(cdn.secret_access_key),
            region_name=cdn.region,
        )
        config = BotoConfig(
            retries={"mode": "standard", "max_attempts": 5}, connect_timeout=30, read_timeout=30
        )
        async with session.client("cloudfront", endpoint_url=cdn.endpoint_url, config=config) as client:
            batches = await anyio.to_thread.run_sync(
                lambda: list(invalidation_batches(self._paths(), folders, self.count))
            )
            for batch in batches:
                reference = f"batchthumb-{int(time.time())}-{uuid.uuid4().hex[:12]}"
                try:
                    response = await client.create_invalidation(
                        DistributionId=cdn.cloudfront_distribution_id,
                        InvalidationBatch={
                            "Paths": {"Quantity": len(batch), "Items": batch},
                            "CallerReference": reference,
                        },
                    )
                except (ClientError, BotoCoreError) as exc:
                    raise StoreError(
                        f"CloudFront {cdn.cloudfront_distribution_id}: invalidating {len(batch):,} paths "
                        f"failed: {_reason(exc)}"
                        + (f" (the changed URLs are in {self.path})" if self.path else "")
                    ) from exc
                self.invalidations += 1
                self.reporter.info(
                    f"invalidated {len(batch):,} paths on CloudFront {cdn.cloudfront_distribution_id} "
                    f"({response['Invalidation']['Id']})",
                    event="cdn_invalidated",
                )


def _secret(value: Any) -> str | None:
    return None if value is None else value.get_secret_value()


def _reason(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', '?')} {error.get('Message', '')}".rstrip()
    return str(exc)
