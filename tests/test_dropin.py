"""Drop-in for Django sites: the real libraries find, serve and size what batchthumb wrote.

A Django site (``tests/django_site``: Django, django_advance_thumbnail,
django-versatileimagefield and django-imagekit, on the test Postgres) is asked for every
rendition of every photo, as a page would, in a subprocess; its storage counts what the
libraries do. Then the libraries make their own renditions of a copy of the sources, and
each of batchthumb's objects must have the size the library's own has.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from batchthumb.config import Config
from batchthumb.django.imagekit import imagekit_hash
from batchthumb.samples import sample_bytes
from batchthumb.specs import RenditionSpec
from tests.django_site.site import (
    ROOT,
    SAME_PICTURE,
    SMART_SLACK,
    corpus,
    photo_table,
    pixel_distance,
    probe,
    s3_site,
    size_of,
)
from tests.helpers import generate, make_config, registry_rows, sql, write_sources

pytestmark = pytest.mark.anyio


DROP_IN: dict[str, dict[str, Any]] = {
    # AdvanceThumbnailField(source_field="image", upload_to="thumbnails/", size=(300, 300))
    "thumbnail": {
        "preset": "django_advance_thumbnail",
        "upload_to": "thumbnails/",
        "size": [300, 300],
        "column": "thumbnail",
    },
    # image.thumbnail['300x300'], image.crop['300x300']
    "vthumb": {"preset": "versatileimagefield", "sizer": "thumbnail", "size": "300x300"},
    "vcrop": {"preset": "versatileimagefield", "sizer": "crop", "size": "300x300"},
    # ImageSpecField(processors=[ResizeToFit(300, 300)], format="JPEG", options={"quality": 85})
    "fit": {
        "preset": "imagekit",
        "processors": [{"processor": "ResizeToFit", "width": 300, "height": 300}],
        "format": "JPEG",
        "options": {"quality": 85},
    },
    "fill": {
        "preset": "imagekit",
        "processors": [{"processor": "ResizeToFill", "width": 300, "height": 300}],
        "format": "JPEG",
        "options": {"quality": 85},
    },
    # ResizeToFill(200, 150, anchor=Anchor.TOP_LEFT), format="JPEG" (Pillow's quality 75)
    "corner": {
        "preset": "imagekit",
        "processors": [{"processor": "ResizeToFill", "width": 200, "height": 150, "anchor": "tl"}],
        "format": "JPEG",
    },
    # ResizeToFill(250, 100, anchor=(0.3, 0.8)), the source's format
    "spot": {
        "preset": "imagekit",
        "processors": [{"processor": "ResizeToFill", "width": 250, "height": 100, "anchor": [0.3, 0.8]}],
    },
    # Thumbnail(160, 160), format="PNG": pilkit's smart (entropy) crop, never enlarging
    "smart": {
        "preset": "imagekit",
        "processors": [{"processor": "Thumbnail", "width": 160, "height": 160}],
        "format": "PNG",
    },
}
SITE = {"django": {"versatileimagefield": {"jpeg_resize_quality": 85}}}
"""VERSATILEIMAGEFIELD_SETTINGS = {"jpeg_resize_quality": 85}"""
PROBE_NAMES = {
    "thumbnail": "advance",
    "vthumb": "versatile_thumbnail",
    "vcrop": "versatile_crop",
    "fit": "imagekit_fit",
    "fill": "imagekit_fill",
    "corner": "imagekit_corner",
    "spot": "imagekit_spot",
    "smart": "imagekit_smart",
}


def drop_in_config(dsn: str, media: Path) -> Config:
    return make_config(dsn, media, None, DROP_IN, extra=SITE, ppoi_column="image_ppoi")


def test_imagekit_names_match_the_documented_vectors() -> None:
    from batchthumb.django.imagekit import ImagekitRendition

    fit = ImagekitRendition.model_validate(DROP_IN["fit"])
    spec = RenditionSpec.from_config("fit", fit)
    assert (
        spec.object_key("photos", "images/cat.jpg")
        == "CACHE/images/images/cat/d9a5af5f23dfff4976c8476de10c1b0b.jpg"
    )
    fill = RenditionSpec.from_config("fill", ImagekitRendition.model_validate(DROP_IN["fill"]))
    assert fill.object_key("photos", "images/cat.jpg").endswith("/8be4e878c20816f651c34ad69132805f.jpg")
    # the hash covers every argument: another quality is another name
    assert imagekit_hash("images/cat.jpg", [], "JPEG", {"quality": 85}, True) != imagekit_hash(
        "images/cat.jpg", [], "JPEG", {"quality": 80}, True
    )


@pytest.mark.parametrize(
    ("processor", "reason"),
    [
        ({"processor": "ResizeToFill", "width": 9, "height": 9, "anchor": "auto"}, "Thumbnail only"),
        ({"processor": "ResizeToFill", "width": 9, "height": 9, "anchor": [1.5, 0]}, "less than or equal"),
        ({"processor": "Thumbnail", "width": 9, "height": 9, "anchor": "tl", "crop": False}, "crop is false"),
        ({"processor": "SmartResize", "width": 9, "height": 9, "anchor": "c"}, "no anchor"),
    ],
)
def test_imagekit_arguments_are_refused_where_pilkit_refuses_them(
    processor: dict[str, Any], reason: str
) -> None:
    from pydantic import ValidationError

    from batchthumb.django.imagekit import ImagekitRendition

    with pytest.raises(ValidationError, match=reason):
        ImagekitRendition.model_validate({"preset": "imagekit", "processors": [processor]})


def test_imagekit_hashes_absent_options_as_none() -> None:
    from batchthumb.django.imagekit import ImagekitRendition

    def name(**extra: Any) -> str:
        rendition = {
            "preset": "imagekit",
            "processors": [{"processor": "ResizeToFit", "width": 300}],
            **extra,
        }
        spec = RenditionSpec.from_config("r", ImagekitRendition.model_validate(rendition))
        return spec.object_key("photos", "images/cat.jpg")

    assert name() != name(options={})


async def test_the_libraries_serve_what_batchthumb_wrote(
    pg_dsn: str, empty_pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    keys = write_sources(media, corpus())
    await photo_table(pg_dsn, keys)
    # primary points of interest set in the admin: the crops centre there
    ppoi = {"images/landscape.jpg": "0.2x0.8", "images/portrait.jpg": "1.0x0.0", "images/logo.png": "0.3x0.3"}
    for key, point in ppoi.items():
        await sql(pg_dsn, "UPDATE gallery_photo SET image_ppoi = $1 WHERE image = $2", point, key)
    config = drop_in_config(pg_dsn, media)
    counters, _, _ = await generate(config)
    assert (counters.written, counters.failed) == (len(keys) * len(DROP_IN), 0)
    assert await sql(pg_dsn, "SELECT 1 FROM batchthumb.renditions WHERE object_key LIKE '%crop-c0-2__0-8%'")
    assert counters.columns_written == len(keys)
    rows = await registry_rows(pg_dsn)

    served = probe(pg_dsn, media, "serve")
    calls = served["calls"]
    # the libraries found every rendition: nothing rendered, saved or opened, only existence checks
    assert calls.get("save", 0) == 0, calls
    assert calls.get("open", 0) == 0, calls
    assert calls.get("exists", 0) >= len(keys) * 3  # versatileimagefield x2 and imagekit checked
    by_id = {int(photo_id): names for photo_id, names in served["photos"].items()}
    ids = {row["image"]: row["id"] for row in await sql(pg_dsn, "SELECT id, image FROM gallery_photo")}
    for key in keys:
        names = by_id[ids[key]]
        for rendition, probe_name in PROBE_NAMES.items():
            assert names[probe_name] == rows[(key, rendition)]["object_key"], (key, rendition)
            assert (media / names[probe_name]).is_file()
        # the column holds the name, and a save does not make the field render again, but for a
        # source whose name Django's storage would have changed (a space): the library then
        # renders on every save, its own thumbnails too (it compares the raw stem)
        if " " not in key:
            assert names["advance_after_save"] == names["advance"], key
    spaced = [key for key in keys if " " in key]
    assert served["save_calls"].get("save", 0) == len(spaced), served["save_calls"]

    # the libraries' own renditions of the same sources, on a copy: the same names and sizes
    copy = tmp_path / "copy"
    write_sources(copy, corpus())
    await photo_table(empty_pg_dsn, keys)
    for key, point in ppoi.items():
        await sql(empty_pg_dsn, "UPDATE gallery_photo SET image_ppoi = $1 WHERE image = $2", point, key)
    made = probe(empty_pg_dsn, copy, "make")
    assert made["calls"].get("save", 0) == len(keys) * len(DROP_IN)
    made_by_id = {int(photo_id): names for photo_id, names in made["photos"].items()}
    differences = []
    for key in keys:
        names = made_by_id[ids[key]]
        for rendition, probe_name in PROBE_NAMES.items():
            ours = rows[(key, rendition)]
            assert names[probe_name] == ours["object_key"], (key, rendition)
            theirs = size_of(copy / names[probe_name])
            assert size_of(media / ours["object_key"]) == (ours["width"], ours["height"])
            if theirs != (ours["width"], ours["height"]):
                differences.append(
                    f"{key} {rendition}: library {theirs}, batchthumb {ours['width'], ours['height']}"
                )
                continue
            # and the same part of the picture: anchors, PPOIs, smart crops and rotations agree
            source_width, source_height = size_of(copy / key)
            magnified = max(theirs[0] / source_width, theirs[1] / source_height)
            slack = SMART_SLACK if rendition == "smart" else 0
            distance = pixel_distance(media / ours["object_key"], copy / names[probe_name], magnified, slack)
            if distance > SAME_PICTURE:
                differences.append(f"{key} {rendition}: {distance:.1f} levels apart on average")
    assert not differences, "\n".join(differences)


async def test_a_second_run_changes_nothing_and_app_values_are_kept(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    keys = write_sources(media, corpus()[:3])
    await photo_table(pg_dsn, keys)
    await sql(pg_dsn, "UPDATE gallery_photo SET thumbnail = 'custom/by-hand.jpg' WHERE image = $1", keys[0])
    config = drop_in_config(pg_dsn, media)
    counters, _, _ = await generate(config)
    assert (counters.columns_written, counters.columns_kept) == (2, 1)
    (kept,) = await sql(pg_dsn, "SELECT thumbnail FROM gallery_photo WHERE image = $1", keys[0])
    assert kept[0] == "custom/by-hand.jpg"  # never overwritten without --force
    again, source_requests, target_requests = await generate(config)
    assert (again.written, source_requests, target_requests) == (0, {}, {})
    forced, _, _ = await generate(config, force=True, renditions=("thumbnail",))
    assert forced.columns_written == 3
    (replaced,) = await sql(pg_dsn, "SELECT thumbnail FROM gallery_photo WHERE image = $1", keys[0])
    assert replaced[0] == "thumbnails/landscape_thumbnail.jpg"


async def test_names_are_refused_when_a_source_row_holds_them_or_they_leave_the_pattern(
    pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    good = sample_bytes(400, 300, "jpeg", seed=1)
    # a source named like the rendition of another: writing that rendition would overwrite it
    keys = write_sources(
        media,
        [
            ("images/cat.jpg", good),
            ("thumbnails/cat_thumbnail.jpg", good),
            ("images/" + "x" * 120 + ".jpg", good),  # its name does not fit varchar(100)
        ],
    )
    before = {key: (media / key).read_bytes() for key in keys}
    await photo_table(pg_dsn, keys)
    renditions = {"thumbnail": DROP_IN["thumbnail"]}
    config = make_config(pg_dsn, media, None, renditions, extra=SITE)
    counters, _, _ = await generate(config)
    assert (media / "thumbnails/cat_thumbnail.jpg").read_bytes() == before["thumbnails/cat_thumbnail.jpg"]
    failures = {
        row["source_key"]: row["message"] for row in await sql(pg_dsn, "SELECT * FROM batchthumb.failures")
    }
    assert "a source row references this name" in failures["images/cat.jpg"]
    assert "more than the 100 of column" in failures[keys[2]]
    assert "never truncated" in failures[keys[2]]
    # the source that is itself named like a thumbnail gets one, under the library's name for it
    assert (media / "thumbnails/cat_thumbnail_thumbnail.jpg").is_file()
    assert counters.failed == 2
    assert {key: (media / key).read_bytes() for key in keys} == before


def test_a_drop_in_config_writes_at_the_source_root_only(tmp_path: Path) -> None:
    from batchthumb.errors import ConfigError

    media = tmp_path / "media"
    with pytest.raises(ConfigError, match="writes where its library does"):
        make_config("postgresql://x@h/d", media, tmp_path / "elsewhere", DROP_IN)
    mixed = {**DROP_IN, "plain": {"width": 100}}
    with pytest.raises(ConfigError, match="have no preset, but others do"):
        make_config("postgresql://x@h/d", media, None, mixed)
    with pytest.raises(ConfigError, match="overlaps the source store"):
        make_config("postgresql://x@h/d", media, media, {"plain": {"width": 100}})
    shutil.rmtree(media, ignore_errors=True)


async def test_purges_at_the_storage_root_touch_only_their_own_names(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    keys = write_sources(media, corpus()[:3])
    await photo_table(pg_dsn, keys)
    config = drop_in_config(pg_dsn, media)
    counters, _, _ = await generate(config)
    every = 3 * len(DROP_IN)
    assert counters.written == every
    rows = await registry_rows(pg_dsn)
    # a file another tool left in a namespace, one outside them, and a source row that now
    # references one of batchthumb's names (a user uploaded a thumbnail as a photo)
    foreign = {"thumbnails/notes.txt": b"x", "CACHE/images/other.bin": b"x", "elsewhere/keep.jpg": b"x"}
    write_sources(media, list(foreign.items()))
    adopted = rows[(keys[0], "vthumb")]["object_key"]
    await sql(pg_dsn, "INSERT INTO gallery_photo (image) VALUES ($1)", adopted)
    sources = {key: (media / key).read_bytes() for key in keys}

    from tests.helpers import purge

    purged, _, _ = await purge(config, kind="referenced")
    assert (purged.deleted, purged.protected, purged.failed) == (every - 1, 1, 0)
    assert (media / adopted).is_file()  # a source row references it: kept, and its row with it
    assert set(await registry_rows(pg_dsn)) == {(keys[0], "vthumb")}
    assert purged.columns_cleared == 3
    columns = await sql(pg_dsn, "SELECT thumbnail FROM gallery_photo WHERE thumbnail IS NOT NULL")
    assert columns == []  # emptied (NULL: the column takes it)
    assert {key: (media / key).read_bytes() for key in keys} == sources
    assert all((media / name).is_file() for name in foreign)

    # the orphan sweep and the prefix purge: the presets' patterns only, never a source's file
    for name in ("__sized__/images/gone-thumbnail-300x300-85.jpg", "thumbnails/gone_thumbnail.jpg"):
        write_sources(media, [(name, b"orphan")])
    swept, _, _ = await purge(config, kind="orphans", older_than_s=0)
    assert swept.deleted == 2
    assert not (media / "thumbnails/gone_thumbnail.jpg").exists()
    generated, _, _ = await generate(config)
    # the thumbnail uploaded as a photo has its renditions too
    assert generated.written == every - 1 + len(DROP_IN)
    prefix, _, _ = await purge(config, kind="prefix")
    assert prefix.protected == 1  # the one a source row holds
    assert prefix.deleted == every - 1 + len(DROP_IN)
    assert (media / adopted).is_file()
    assert all((media / name).is_file() for name in foreign)
    assert {key: (media / key).read_bytes() for key in keys} == sources


async def test_adopt_records_what_the_library_made_and_generate_makes_the_rest(
    pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    keys = write_sources(media, corpus()[:4])
    await photo_table(pg_dsn, keys)
    ids = sorted(row["id"] for row in await sql(pg_dsn, "SELECT id FROM gallery_photo"))
    made = probe(pg_dsn, media, "make", only=ids[:2])  # the site made half of them already
    library_files = {
        name: (media / name).stat().st_mtime_ns
        for names in made["photos"].values()
        for name in names.values()
        if name
    }
    assert len(library_files) == 2 * len(DROP_IN)
    config = drop_in_config(pg_dsn, media)

    from tests.helpers import adopt

    dry = await adopt(config, dry_run=True)
    assert (dry.adopted, await registry_rows(pg_dsn)) == (2 * len(DROP_IN), {})
    adopted = await adopt(config)
    assert (adopted.missing, adopted.adopted) == (4 * len(DROP_IN), 2 * len(DROP_IN))
    rows = await registry_rows(pg_dsn)
    assert {row["object_key"] for row in rows.values()} == set(library_files)

    counters, source_requests, _ = await generate(config)
    assert (counters.sources, counters.written, counters.skipped) == (2, 2 * len(DROP_IN), 2 * len(DROP_IN))
    assert source_requests == {"get": 2, "stat": 2}
    assert {name: (media / name).stat().st_mtime_ns for name in library_files} == library_files  # untouched
    served = probe(pg_dsn, media, "serve")
    assert served["calls"].get("save", 0) == 0


@pytest.mark.parametrize(
    ("config_file", "expected"),
    [
        ("django-advance-thumbnail.toml", {"thumbnail": "thumbnails/cat_thumbnail.jpg"}),
        (
            "django-versatileimagefield.toml",
            {
                "thumbnail_300": "__sized__/images/cat-thumbnail-300x300-85.jpg",
                "crop_300": "__sized__/images/cat-crop-c0-5__0-5-300x300-85.jpg",
            },
        ),
        (
            "django-imagekit.toml",
            {
                "fit": "CACHE/images/images/cat/d9a5af5f23dfff4976c8476de10c1b0b.jpg",
                "fill": "CACHE/images/images/cat/8be4e878c20816f651c34ad69132805f.jpg",
            },
        ),
        (
            "django-sorl.toml",
            {
                "fit": "cache/18/4c/184cf2ee6b7aff247654880cea9cfe13.jpg",
                "crop": "cache/a9/39/a9390dc291382ee46447a5700e365551.jpg",
            },
        ),
        (
            "django-easy-thumbnails.toml",
            {"fit": "images/cat.jpg.300x300_q85.jpg", "crop": "images/cat.jpg.300x300_q85_crop.jpg"},
        ),
    ],
)
def test_the_example_configs_name_as_the_libraries_do(config_file: str, expected: dict[str, str]) -> None:
    from batchthumb.config import load_config
    from batchthumb.specs import specs_for

    config = load_config(ROOT / "configs" / config_file)
    names = {
        spec.name: spec.object_key("photos", "images/cat.jpg")
        for spec in specs_for(config.renditions, config.django)
    }
    assert names == expected  # DJANGO-COMPAT.md's vectors for images/cat.jpg


async def test_the_command_line_lists_column_updates_and_adopts(pg_dsn: str, tmp_path: Path) -> None:
    from tests.helpers import batchthumb, write_config

    media = tmp_path / "media"
    keys = write_sources(media, corpus()[:2])
    await photo_table(pg_dsn, keys)
    renditions = {"thumbnail": DROP_IN["thumbnail"]}
    config = write_config(tmp_path / "site.toml", pg_dsn, media, None, renditions, {}, extra=SITE)

    dry = batchthumb(config, "generate", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    updates = [line for line in dry.stderr.splitlines() if line.startswith("would set")]
    assert updates == [
        "would set gallery_photo.thumbnail = 'thumbnails/landscape_thumbnail.jpg' where id = 1",
        "would set gallery_photo.thumbnail = 'thumbnails/portrait_thumbnail.jpg' where id = 2",
    ]
    assert await sql(pg_dsn, "SELECT 1 FROM gallery_photo WHERE thumbnail IS NOT NULL") == []

    nothing = batchthumb(config, "adopt", "--json")
    assert nothing.returncode == 0, nothing.stderr
    assert (json.loads(nothing.stdout)["missing"], json.loads(nothing.stdout)["adopted"]) == (2, 0)
    real = batchthumb(config, "generate", "--json")
    assert real.returncode == 0, real.stderr
    assert json.loads(real.stdout)["columns_written"] == 2


async def test_the_libraries_serve_from_s3_what_batchthumb_wrote(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    """The same site on S3 (django-storages, AWS_LOCATION = "media"): found with HEADs only."""
    from tests.helpers import s3_keys, s3_store_settings

    keys, s3 = await s3_site(pg_dsn, s3_client, bucket, s3_endpoint, corpus()[:4])
    source = s3_store_settings(s3_endpoint, f"s3://{bucket}/media/")
    config = make_config(pg_dsn, source, None, DROP_IN, extra=SITE)
    counters, source_requests, target_requests = await generate(config)
    assert (counters.written, counters.failed) == (len(keys) * len(DROP_IN), 0)
    assert source_requests["GetObject"] == len(keys)
    assert target_requests["PutObject"] == len(keys) * len(DROP_IN)
    stored = s3_keys(s3_client, bucket, "media/")
    rows = await registry_rows(pg_dsn)
    assert {f"media/{row['object_key']}" for row in rows.values()} <= set(stored)

    served = probe(pg_dsn, tmp_path, "serve", s3=s3)
    assert served["calls"].get("save", 0) == 0, served["calls"]
    assert served["calls"].get("open", 0) == 0, served["calls"]
    ids = {row["image"]: row["id"] for row in await sql(pg_dsn, "SELECT id, image FROM gallery_photo")}
    for key in keys:
        names = served["photos"][str(ids[key])]
        for rendition, probe_name in PROBE_NAMES.items():
            assert names[probe_name] == rows[(key, rendition)]["object_key"], (key, rendition)
        assert names["advance_after_save"] == names["advance"]


async def test_a_moved_ppoi_rebuilds_the_crop_under_its_new_name(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    keys = write_sources(media, corpus()[:2])
    await photo_table(pg_dsn, keys)
    config = drop_in_config(pg_dsn, media)
    await generate(config)
    before = (await registry_rows(pg_dsn))[(keys[0], "vcrop")]["object_key"]
    assert before.endswith("-crop-c0-5__0-5-300x300-85.jpg")
    await sql(pg_dsn, "UPDATE gallery_photo SET image_ppoi = '0.25x0.75' WHERE image = $1", keys[0])
    counters, _, _ = await generate(config, command="regenerate")
    after = (await registry_rows(pg_dsn))[(keys[0], "vcrop")]["object_key"]
    assert after.endswith("-crop-c0-25__0-75-300x300-85.jpg")
    assert (media / after).is_file()
    assert not (media / before).exists()  # the superseded crop is deleted
    assert counters.deleted == 1
    assert counters.written == 1  # the crop alone: the thumbnails do not depend on the PPOI
    await sql(pg_dsn, "UPDATE gallery_photo SET image_ppoi = '2x0.5' WHERE image = $1", keys[1])
    bad, _, _ = await generate(config, command="regenerate")
    assert bad.failed == 1
    (failure,) = await sql(pg_dsn, "SELECT message FROM batchthumb.failures")
    assert "PPOI '2x0.5' is not 'XxY'" in failure[0]
