"""Where a store lives: ``s3://bucket/prefix/`` or ``file:///dir/``, and the overlap rules."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class StoreLocation:
    """A parsed store URL. ``root`` is the bucket or directory; ``prefix`` ends with ``/`` or is empty."""

    scheme: Literal["s3", "file", "memory"]
    root: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> StoreLocation:
        parts = urlsplit(url)
        if parts.query or parts.fragment:
            raise ValueError(f"store URL {url!r} must not have a query or fragment")
        if parts.scheme == "s3":
            if not parts.netloc:
                raise ValueError(f"store URL {url!r} has no bucket")
            return cls("s3", parts.netloc, _normal_prefix(unquote(parts.path)))
        if parts.scheme == "file":
            if parts.netloc not in ("", "localhost"):
                raise ValueError(f"store URL {url!r}: file URLs take no host (file:///dir/)")
            path = posixpath.normpath(unquote(parts.path))
            if not path.startswith("/"):
                raise ValueError(f"store URL {url!r}: the directory must be absolute")
            return cls("file", path, "")
        # no memory://: a config naming it would write renditions into RAM and record them as
        # done. The in-memory store is for unit tests, which build it themselves.
        raise ValueError(f"store URL {url!r}: scheme must be s3:// or file://")

    @property
    def url(self) -> str:
        if self.scheme == "file":
            return f"file://{self.root.rstrip('/')}/"
        return f"{self.scheme}://{self.root}/{self.prefix}"

    def child(self, prefix: str) -> StoreLocation:
        """The location of the keys under ``prefix`` (``photos/``) of this one."""
        if self.scheme == "file":
            return StoreLocation("file", posixpath.join(self.root, prefix.rstrip("/")), "")
        return StoreLocation(self.scheme, self.root, _normal_prefix(self.prefix + prefix))

    def overlaps(self, other: StoreLocation) -> bool:
        """True when one location holds the other (or they are the same)."""
        return self.contains(other) or other.contains(self)

    def _comparable(self) -> tuple[str, str, str]:
        """(scheme, root, path) in one namespace, so that file roots and S3 prefixes compare alike."""
        if self.scheme == "file":
            return (self.scheme, "", self.root.rstrip("/") + "/")
        return (self.scheme, self.root, self.prefix)

    def contains(self, other: StoreLocation) -> bool:
        """True when every key of ``other`` also lies under this location."""
        mine, theirs = self._comparable(), other._comparable()
        return mine[:2] == theirs[:2] and theirs[2].startswith(mine[2])

    def check_target_against(self, source: StoreLocation) -> None:
        """Refuse a target location that would let a purge reach source objects.

        A target equal to, or enclosing, the source location is refused, as is an
        S3 target with no prefix (a whole bucket). A target *inside* the source
        location (``s3://media/`` and ``s3://media/renditions/``) is allowed: source
        keys that fall under the target prefix are refused item by item.
        """
        if self.scheme == "s3" and not self.prefix:
            raise ValueError(
                f"target {self.url} is a whole bucket: give it a prefix (s3://bucket/renditions/)"
            )
        if self.scheme == "file" and self.root == "/":
            raise ValueError("target file:/// is the filesystem root: give it a directory")
        if self.contains(source):
            raise ValueError(
                f"target {self.url} overlaps the source store {source.url}: "
                "a purge of the target could delete source images"
            )

    def holds_source_key(self, source: StoreLocation, source_key: str) -> bool:
        """True when ``source_key`` (a key of ``source``) lies under this target location."""
        if not source.contains(self) or source == self:
            return False
        mine = self._comparable()[2]
        base = source._comparable()[2]
        return (base + source_key.lstrip("/")).startswith(mine)


def _normal_prefix(path: str) -> str:
    prefix = path.lstrip("/")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    if any(part in ("..", ".") for part in prefix.split("/")):
        raise ValueError(f"prefix {path!r} must not contain '.' or '..' segments")
    return prefix
