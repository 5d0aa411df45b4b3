"""The golden file of what the presets produce: spec hashes, object keys, metadata rows.

A refactor of the library code must change none of them, or every site's renditions go stale
(or, worse, are written under names the library no longer looks for). ``tests/golden/presets.json``
was written from the code before the library modules moved; ``test_golden.py`` compares.

    python -m tests.golden            # prints the current values as JSON
    python -m tests.golden --write    # rewrites the golden file (only for an intended change)

Covered: every example config in ``configs/`` and every test config that uses a preset, each
rendition's spec hash and the object keys of a few sources (JPEG, an upper-case extension with
a space, a transparent PNG, a PPOI), and the rows the library metadata writes for them
(sorl's key value rows, easy-thumbnails' rows, with the statements' parameters), captured
from the metadata classes through a database that records instead of sending.
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from batchthumb.config import Config, DjangoConfig, config_from_dict, load_config
from batchthumb.django.base import Written
from batchthumb.django.easy_thumbnails import EasyThumbnailsTables
from batchthumb.django.sorl import SorlKeyValueStore
from batchthumb.django.wagtail import WagtailRenditions
from batchthumb.specs import RenditionSpec, specs_for

ROOT = Path(__file__).parent.parent
GOLDEN = Path(__file__).parent / "golden" / "presets.json"
SOURCES = [
    ("images/cat.jpg", None, False),
    ("images/2024/my cat.JPG", "0.3x0.7", False),
    ("images/logo.png", None, True),
    ("images/logo.png", "0.25x0.75", False),
]
READ_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class RecordingDatabase:
    """What the metadata classes send, kept as (query name, parameters); nothing is sent."""

    schema = "batchthumb"

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def q(self, name: str, **identifiers: str) -> str:
        return name

    async def transaction(self, what: str, statements: list[tuple[str, tuple[Any, ...]]]) -> list[list[Any]]:
        self.sent.extend([name, [_plain(arg) for arg in args]] for name, args in statements)
        return [[] for _ in statements]


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _test_configs() -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """(renditions, django section) of each test config that uses a preset."""
    from tests import test_dropin, test_easy_thumbnails, test_sorl

    return {
        "tests/test_sorl.py (disk)": (test_sorl.RENDITIONS, {"sorl": {"storage": test_sorl.FILE_STORAGE}}),
        "tests/test_sorl.py (S3)": (test_sorl.RENDITIONS, {"sorl": {"storage": test_sorl.S3_STORAGE}}),
        "tests/test_easy_thumbnails.py": (test_easy_thumbnails.RENDITIONS, {}),
        "tests/test_easy_thumbnails.py (S3)": (
            test_easy_thumbnails.RENDITIONS,
            {"easy_thumbnails": {"storage": test_easy_thumbnails.S3_STORAGE}},
        ),
        "tests/test_dropin.py": (test_dropin.DROP_IN, test_dropin.SITE["django"]),
    }


def _configs() -> dict[str, Config]:
    found = {}
    for path in sorted((ROOT / "configs").glob("*.toml")):
        config = load_config(path, environ={})
        if config.drop_in:
            found[f"configs/{path.name}"] = config
    for name, (renditions, django) in _test_configs().items():
        data = {
            "database": {"dsn": "postgresql://golden@127.0.0.1/golden"},
            "stores": {"source": {"url": "file:///srv/media/"}},
            "sources": [
                {"name": "photos", "table": "gallery_photo", "key_column": "id", "path_column": "image"}
            ],
            "renditions": renditions,
            "django": django,
        }
        found[name] = config_from_dict(data, environ={})
    return found


async def _metadata_rows(
    specs: list[RenditionSpec], django: DjangoConfig, written: list[Written]
) -> list[Any]:
    db = RecordingDatabase()
    sorl = SorlKeyValueStore(db, django.sorl, specs)  # type: ignore[arg-type]
    sorl.identifiers = {"table": "t", "key": "k"}
    easy = EasyThumbnailsTables(db, django.easy_thumbnails, specs)  # type: ignore[arg-type]
    wagtail = WagtailRenditions(db, django.wagtail, specs)  # type: ignore[arg-type]
    wagtail.identifiers, wagtail.extras, wagtail.types = {"table": "t", "image_table": "i"}, {}, {}
    await sorl.record(written)
    await easy.record(written)
    await wagtail.record(written)
    return db.sent


def current() -> dict[str, Any]:
    """What the code produces now, by config and rendition."""
    out: dict[str, Any] = {}
    for label, config in _configs().items():
        specs = specs_for(config.renditions, config.django)
        entry: dict[str, Any] = {}
        written: list[Written] = []
        for spec in specs:
            keys = []
            for source_key, ppoi, transparent in SOURCES:
                try:
                    key = spec.object_key("photos", source_key, ppoi, transparent=transparent)
                except Exception as error:  # a name the preset refuses is part of its behaviour
                    key = f"! {type(error).__name__}"
                keys.append(key)
                if not key.startswith("!"):
                    row = Written(
                        spec, source_key, (800, 600), key, (300, 225), READ_AT, row_key="7", ppoi=ppoi
                    )
                    written.append(row)
            entry[spec.name] = {"spec_hash": spec.spec_hash, "object_keys": keys}
        out[label] = {
            "renditions": entry,
            "metadata": asyncio.run(_metadata_rows(specs, config.django, written)),
        }
    return out


def main() -> None:
    text = json.dumps(current(), indent=1, sort_keys=True) + "\n"
    if "--write" in sys.argv:
        GOLDEN.parent.mkdir(exist_ok=True)
        GOLDEN.write_text(text)
        print(f"wrote {GOLDEN}")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
