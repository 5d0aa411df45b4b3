"""``manifest``: what a frontend needs to build ``srcset`` and ``<picture>``, one record per source.

Every variant's URL (under ``cdn.public_base_url``), width, height, format and bytes, grouped
by the rendition they belong to (a width set's variants together), and the source's
placeholders. Read from the registry in keyset pages of sources and written as each page
arrives, so memory stays flat over millions of rows.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TextIO
from urllib.parse import quote

from batchthumb.config import Config
from batchthumb.registry import Registry

ManifestFormat = Literal["jsonl", "csv"]
PAGE_SOURCES = 1000
FORMATS = {"jpg": "jpeg", "jpeg": "jpeg", "png": "png", "webp": "webp", "avif": "avif"}
CSV_COLUMNS = [
    "source_set",
    "source_key",
    "rendition",
    "variant",
    "url",
    "width",
    "height",
    "format",
    "bytes",
    "blurhash",
    "color",
    "lqip",
]


@dataclass(frozen=True)
class Urls:
    """Object keys of the target -> the URLs they are served under."""

    base: str

    @classmethod
    def of(cls, config: Config) -> Urls:
        return cls(config.cdn.public_base_url or config.stores.target.location.url)

    def __call__(self, object_key: str) -> str:
        return self.base + quote(object_key, safe="/@:+,=~!$&'()*;")


def record_of(row: Any, urls: Urls) -> dict[str, Any]:
    """One source's manifest record, from its page row."""
    renditions: dict[str, list[dict[str, Any]]] = {}
    for name, object_key, width, height, size in zip(
        row["renditions"], row["object_keys"], row["widths"], row["heights"], row["bytes"], strict=True
    ):
        family = name.split("@", 1)[0]
        extension = object_key.rsplit(".", 1)[-1].lower()
        renditions.setdefault(family, []).append(
            {
                "variant": name,
                "url": urls(object_key),
                "width": width,
                "height": height,
                "format": FORMATS.get(extension, extension),
                "bytes": size,
            }
        )
    for variants in renditions.values():
        variants.sort(key=lambda variant: (variant["format"], variant["width"]))
    placeholders = None
    if row["blurhash"] is not None:
        placeholders = {
            "width": row["source_width"],
            "height": row["source_height"],
            "blurhash": row["blurhash"],
            "color": row["color"],
            "lqip": row["lqip"],
        }
    return {
        "source_set": row["source_set"],
        "source_key": row["source_key"],
        "renditions": renditions,
        "placeholders": placeholders,
    }


async def write_manifest(
    registry: Registry,
    config: Config,
    out: TextIO,
    fmt: ManifestFormat = "jsonl",
    source_sets: Sequence[str] = (),
    source_keys: Sequence[str] | None = None,
) -> int:
    """Write the manifest of the configured renditions to ``out``; how many sources it lists."""
    selected = [config.source_set(name) for name in source_sets] or list(config.sources)
    pairs = [
        f"{source_set.name}/{name}"
        for source_set in selected
        for name in config.variant_names(list(config.renditions_for(source_set)))
    ]
    urls = Urls.of(config)
    writer = csv.DictWriter(out, CSV_COLUMNS, lineterminator="\n") if fmt == "csv" else None
    if writer is not None:
        writer.writeheader()
    db = registry.db
    statement = db.q("manifest_page")
    after: tuple[str, str] = ("", "")
    listed = 0
    while True:
        rows = await db.fetch(
            "reading the manifest",
            statement,
            config.stores.target.location.url,
            pairs,
            None if source_keys is None else list(source_keys),
            after[0],
            after[1],
            PAGE_SOURCES,
        )
        for row in rows:
            record = record_of(row, urls)
            if writer is None:
                out.write(json.dumps(record, separators=(",", ":")) + "\n")
            else:
                writer.writerows(csv_rows(record))
        out.flush()
        listed += len(rows)
        if len(rows) < PAGE_SOURCES:
            return listed
        after = (rows[-1]["source_set"], rows[-1]["source_key"])


def csv_rows(record: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """A record as CSV rows: one per variant, the source's placeholders on each."""
    placeholders = record["placeholders"] or {}
    for family, variants in record["renditions"].items():
        for variant in variants:
            yield {
                "source_set": record["source_set"],
                "source_key": record["source_key"],
                "rendition": family,
                **variant,
                "blurhash": placeholders.get("blurhash", ""),
                "color": placeholders.get("color", ""),
                "lqip": placeholders.get("lqip", ""),
            }
