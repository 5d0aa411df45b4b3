"""Width sets x formats: every variant a registry row, through generate, regenerate, verify and
the purges, on a local directory and on the S3 server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import pyvips

from batchthumb.config import config_from_dict
from batchthumb.errors import ConfigError
from batchthumb.samples import sample_bytes
from tests.helpers import (
    UPRIGHT,
    config_data,
    create_photo_table,
    files,
    generate,
    make_config,
    purge,
    registry_rows,
    s3_keys,
    s3_store_settings,
    source_files,
    sql,
    verify,
    with_renditions,
    write_sources,
)

pytestmark = pytest.mark.anyio

WIDTHS = [320, 600, 1000]
FORMATS = ["webp", "jpeg"]
HERO = {"hero": {"widths": WIDTHS, "formats": FORMATS, "quality": 70}}
EXTENSION = {"webp": "webp", "jpeg": "jpg"}


def expected_objects(widths: list[int], sources: dict[str, tuple[int, int]]) -> set[str]:
    """What a fit width set writes: each source's widths capped at its own, once each."""
    return {
        f"{key}.{width}w.{EXTENSION[fmt]}"
        for key, (source_width, _) in sources.items()
        for width in {min(w, source_width) for w in widths}
        for fmt in FORMATS
    }


class Target:
    """The target store, seen from the test: a local directory or a bucket prefix."""

    def __init__(self, kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        if kind == "local":
            self.root = tmp_path / "renditions"
            self.settings: Any = self.root
        else:
            endpoint = request.getfixturevalue("s3_endpoint")
            self.client = request.getfixturevalue("s3_client")
            self.bucket = request.getfixturevalue("bucket")
            self.settings = s3_store_settings(endpoint, f"s3://{self.bucket}/renditions/")

    def objects(self) -> dict[str, bytes]:
        """Every object under the target: key (with its hash folder dropped) -> bytes."""
        if self.kind == "local":
            keys = files(self.root)
            read = {key: (self.root / key).read_bytes() for key in keys}
        else:
            listed = s3_keys(self.client, self.bucket, "renditions/")
            read = {
                key.removeprefix("renditions/"): self.client.get_object(Bucket=self.bucket, Key=key)[
                    "Body"
                ].read()
                for key in listed
            }
        return {"/".join(key.split("/")[3:]): data for key, data in read.items()}


@pytest.mark.parametrize("kind", ["local", "s3"])
async def test_a_width_set_through_generate_regenerate_verify_and_purge(
    kind: str, pg_dsn: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    media = tmp_path / "media"
    keys = write_sources(media, source_files())
    await create_photo_table(pg_dsn, keys)
    target = Target(kind, tmp_path, request)
    config = make_config(pg_dsn, media, target.settings, renditions=HERO)

    counters, _, _ = await generate(config)
    assert counters.written == len(keys) * len(WIDTHS) * len(FORMATS) and not counters.failed
    objects = target.objects()
    # the widths a source cannot give collapse into one object, written once
    assert set(objects) == expected_objects(WIDTHS, UPRIGHT)
    rows = await registry_rows(pg_dsn)
    assert len(rows) == 24
    for (source_key, name), row in rows.items():
        width = int(name.split("@")[1].split("w")[0])
        fmt = name.rsplit(".", 1)[1]
        assert row["width"] == min(width, UPRIGHT[source_key][0])
        assert row["object_key"].endswith(f"{source_key}.{row['width']}w.{EXTENSION[fmt]}")
        image = pyvips.Image.new_from_buffer(objects["/".join(row["object_key"].split("/")[3:])], "")
        assert (image.width, image.height) == (row["width"], row["height"])
        assert len(objects["/".join(row["object_key"].split("/")[3:])]) == row["bytes"]

    again, _, _ = await generate(config)
    assert again.written == 0 and again.skipped == 24

    # a width added: only its variants are written; the others keep their rows and objects
    wider = with_renditions(config, hero={"widths": [*WIDTHS, 1600]})
    before = {key: row["created_at"] for key, row in (await registry_rows(pg_dsn)).items()}
    added, _, _ = await generate(wider)
    assert added.written == len(keys) * len(FORMATS)
    after = await registry_rows(pg_dsn)
    assert all(after[key]["created_at"] == created for key, created in before.items())
    assert set(target.objects()) == expected_objects([*WIDTHS, 1600], UPRIGHT)

    # a width removed: its rows go; objects another variant shares stay (only the 1200 px
    # landscape's 1000w objects were its own)
    narrower = with_renditions(config, hero={"widths": [320, 600, 1600]})
    planned, lines, _ = await purge(narrower, kind="referenced", unconfigured=True, dry_run=True)
    assert planned.planned == 2  # objects, not rows; a shared object is not planned at all
    assert sum(line.startswith("would delete ") for line in lines) == 2
    assert sum(line.startswith("would forget photos/hero@1000w.") for line in lines) == 6
    purged, _, _ = await purge(narrower, kind="referenced", unconfigured=True)
    assert purged.rows_removed == len(keys) * len(FORMATS) and purged.deleted == 2
    assert set(target.objects()) == expected_objects([320, 600, 1600], UPRIGHT)
    checked, _, _, _ = await verify(narrower)
    assert checked.missing == 0 and checked.wrong_size == 0

    # a source grows past the set: its 1000 px variant's old object (the 600 px one it shared)
    # is the 600 px variant's still, and stays
    (media / "images/portrait.png").write_bytes(sample_bytes(1800, 2700, "png", seed=9))
    await sql(pg_dsn, "UPDATE gallery_photo SET updated_at = now() WHERE image = 'images/portrait.png'")
    rebuilt, _, _ = await generate(narrower, command="regenerate")
    assert rebuilt.written == 3 * len(FORMATS) and not rebuilt.failed
    grown = {**UPRIGHT, "images/portrait.png": (1800, 2700)}
    assert set(target.objects()) == expected_objects([320, 600, 1600], grown)
    checked, _, _, _ = await verify(narrower)
    assert checked.missing == 0 and checked.wrong_size == 0

    # a setting of the whole set changed: every variant is rebuilt under a new name, the old go
    sharper = with_renditions(narrower, hero={"quality": 85})
    rebuilt, _, _ = await generate(sharper, command="regenerate")
    assert rebuilt.written == rebuilt.stale == len(keys) * 3 * len(FORMATS)
    assert set(target.objects()) == expected_objects([320, 600, 1600], grown)
    hashes = {row["object_key"].split("/")[2] for row in (await registry_rows(pg_dsn)).values()}
    assert len(hashes) == len(FORMATS)  # one per format, every width sharing it

    # the family's name purges every variant
    gone, _, _ = await purge(sharper, kind="referenced", renditions=("hero",))
    assert gone.rows_removed == len(keys) * 3 * len(FORMATS)
    assert target.objects() == {} and await registry_rows(pg_dsn) == {}


def test_width_sets_are_validated_with_the_key_named(pg_dsn: str, tmp_path: Path) -> None:
    def load(hero: dict[str, Any]) -> None:
        config_from_dict(
            config_data(pg_dsn, tmp_path, tmp_path / "out", renditions={"hero": hero}), environ={}
        )

    with pytest.raises(ConfigError, match="renditions.hero: give widths or width and height, not both"):
        load({"widths": [320], "width": 400})
    with pytest.raises(ConfigError, match="renditions.hero: mode 'crop' with widths needs an aspect_ratio"):
        load({"widths": [320], "mode": "crop"})
    with pytest.raises(ConfigError, match="renditions.hero.widths: lists one twice"):
        load({"widths": [320, 320]})
    with pytest.raises(ConfigError, match="renditions.hero.aspect_ratio.*'wide' is not a ratio"):
        load({"widths": [320], "mode": "crop", "aspect_ratio": "wide"})
    with pytest.raises(ConfigError, match="renditions.hero.formats.0"):
        load({"widths": [320], "formats": ["gif"]})
    load({"widths": [320], "mode": "crop", "aspect_ratio": "16:9", "formats": ["avif", "jpeg"]})
