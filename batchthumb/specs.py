"""Rendition specs: their canonical form, the spec hash, and object key naming.

The spec hash is a short SHA-256 of the canonical spec (every field, defaults
filled in, keys sorted) together with ``RENDER_VERSION``: it changes whenever
the output of a rendition would change, and only then.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from batchthumb.config import RenditionConfig

RENDER_VERSION = 1
"""Bumped when ``render.py`` changes its output for an unchanged spec."""

SPEC_HASH_LENGTH = 12

EXTENSIONS = {"jpeg": "jpg", "png": "png", "webp": "webp", "avif": "avif"}
CONTENT_TYPES = {
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "avif": "image/avif",
}


def canonical_spec(config: RenditionConfig) -> dict[str, Any]:
    """Every field of the spec, defaults filled in, as plain JSON-able values."""
    return config.model_dump(mode="json")


def spec_hash(config: RenditionConfig) -> str:
    """The short hash that names this spec's output."""
    payload = json.dumps(
        {"render_version": RENDER_VERSION, "spec": canonical_spec(config)},
        sort_keys=True,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:SPEC_HASH_LENGTH]


@dataclass(frozen=True)
class RenditionSpec:
    """A named, hashed rendition: what the renderer and the planner share."""

    name: str
    config: RenditionConfig
    spec_hash: str

    @classmethod
    def from_config(cls, name: str, config: RenditionConfig) -> RenditionSpec:
        return cls(name, config, spec_hash(config))

    @property
    def extension(self) -> str:
        return EXTENSIONS[self.config.format]

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.config.format]

    def object_key(self, source_set: str, source_key: str) -> str:
        """Where this rendition of ``source_key`` lives, relative to the target location.

        ``{source set}/{rendition}/{spec hash}/{source key}.{ext}``: deterministic,
        distinct for distinct sources (the whole source key is kept), and a spec
        change moves the object to a new key, so the old one is never overwritten
        before the new one is recorded.
        """
        return f"{source_set}/{self.name}/{self.spec_hash}/{source_key.lstrip('/')}.{self.extension}"


def specs_for(renditions: dict[str, RenditionConfig]) -> list[RenditionSpec]:
    return [RenditionSpec.from_config(name, config) for name, config in renditions.items()]
