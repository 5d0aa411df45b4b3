"""Drop-in for easy-thumbnails: names, rows, modification times and sizes, checked by the library.

The test Django site (``tests/django_site``) runs easy-thumbnails 2.10 on the test Postgres,
its storage counting every call. After ``batchthumb generate``, ``get_thumbnailer(field)[alias]``
and the ``thumbnail_url`` filter must return batchthumb's objects with the size written and
make nothing: on disk from the files' modification times (a stat each), on S3 from the rows
alone (no storage call). easy-thumbnails then makes its own thumbnails of a copy: the same
names, the same sizes, the same part of the picture.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from pydantic import ValidationError

from batchthumb.config import DjangoConfig
from batchthumb.django.easy_thumbnails import EasyThumbnailsRendition
from batchthumb.specs import RenditionSpec
from tests.django_site.site import (
    SAME_PICTURE,
    SMART_SLACK,
    corpus,
    photo_ids,
    photo_table,
    pixel_distance,
    probe,
    s3_site,
    served_otherwise,
    size_of,
)
from tests.helpers import adopt, generate, make_config, purge, registry_rows, sql, write_sources

pytestmark = pytest.mark.anyio

S3_STORAGE = "storages.backends.s3.S3Storage"

EASY: list[tuple[str, dict[str, Any]]] = [
    # THUMBNAIL_ALIASES = {"": {"fit": {"size": (300, 300), "quality": 85}, "crop": {..., "crop": True}}}
    ("fit", {"size": [300, 300], "quality": 85}),
    ("crop", {"size": [300, 300], "crop": True, "quality": 85}),
    # its other crops, a focal point, zoom, one side only (enlarged), padding
    ("smart", {"size": [200, 100], "crop": "smart"}),
    ("edge", {"size": [200, 150], "crop": "-0,0"}),
    ("focus", {"size": [250, 100], "crop": True, "target": "20,80"}),
    ("zoomed", {"size": [200, 200], "zoom": 40}),
    ("tall", {"size": [0, 150], "upscale": True}),
    ("padded", {"size": [250, 250], "background": "#336699"}),
]
RENDITIONS = {name: {"preset": "easy_thumbnails", **options} for name, options in EASY}


def easy_config(dsn: str, media: Any, storage: str | None = None, **settings: Any) -> Any:
    django = {**({"storage": storage} if storage else {}), **settings}
    return make_config(dsn, media, None, RENDITIONS, extra={"django": {"easy_thumbnails": django}})


def site_probe(
    dsn: str, media: Path, mode: str, *args: str, s3: dict[str, str] | None = None, **kwargs: Any
) -> dict[str, Any]:
    return probe(dsn, media, mode, *args, s3=s3, env={"BT_EASY": json.dumps(EASY)}, **kwargs)


async def easy_site(dsn: str, media: Path) -> list[str]:
    """The photos' table, the sources, and easy-thumbnails' tables made by its migrations."""
    keys = write_sources(media, corpus())
    await photo_table(dsn, keys)
    site_probe(dsn, media, "command", "migrate", "easy_thumbnails")
    return keys


async def easy_rows(dsn: str) -> dict[str, Any]:
    """easy-thumbnails' rows: sources by name; thumbnails by name, with their source and size."""
    sources = {row["name"]: row for row in await sql(dsn, "SELECT * FROM easy_thumbnails_source")}
    thumbnails = await sql(
        dsn,
        "SELECT t.name, t.modified, t.storage_hash, s.name AS source, s.modified AS source_modified,"
        " d.width, d.height FROM easy_thumbnails_thumbnail t"
        " JOIN easy_thumbnails_source s ON s.id = t.source_id"
        " LEFT JOIN easy_thumbnails_thumbnaildimensions d ON d.thumbnail_id = t.id",
    )
    return {"sources": sources, "thumbnails": {row["name"]: row for row in thumbnails}}


def test_names_match_the_documented_vectors() -> None:
    def names(source: str, **options: Any) -> list[str]:
        rendition = EasyThumbnailsRendition.model_validate({"preset": "easy_thumbnails", **options})
        spec = RenditionSpec.from_config("r", rendition, DjangoConfig())
        return spec.candidate_keys("photos", source)

    assert names("images/cat.jpg", size=[300, 300]) == [
        "images/cat.jpg.300x300_q85.jpg",
        "images/cat.jpg.300x300_q85.png",  # had the output kept an alpha band
    ]
    assert names("images/cat.jpg", size=[300, 300], crop=True)[0] == "images/cat.jpg.300x300_q85_crop.jpg"
    assert (
        names("images/cat.jpg", size=[300, 300], crop="smart")[0]
        == "images/cat.jpg.300x300_q85_crop-smart.jpg"
    )
    assert names("images/logo.png", size=[300, 300])[1] == "images/logo.png.300x300_q85.png"
    # options sorted, lists joined, falsy ones left out, as ThumbnailOptions.prepared_options does
    assert (
        names("a/b.jpg", size=[0, 150], upscale=True, target=[10, 20], zoom=0, quality=70)[0]
        == "a/b.jpg.0x150_q70_target-10,20_upscale.jpg"
    )


def test_the_settings_that_name_files_are_followed() -> None:
    rendition = EasyThumbnailsRendition.model_validate({"preset": "easy_thumbnails", "size": [300, 300]})
    django = DjangoConfig.model_validate(
        {
            "easy_thumbnails": {
                "basedir": "thumbs",
                "subdir": "small",
                "prefix": "t_",
                "quality": 70,
                "extension": "webp",
                "preserve_extensions": ["png"],
            }
        }
    )
    spec = RenditionSpec.from_config("r", rendition, django)
    assert spec.object_key("photos", "images/cat.jpg") == "thumbs/images/small/t_cat.jpg.300x300_q70.webp"
    assert spec.object_key("photos", "images/logo.png", transparent=True) == (
        "thumbs/images/small/t_logo.png.300x300_q70.png"
    )
    assert spec.namespace == "thumbs/"
    assert spec.owns("thumbs/images/small/t_cat.jpg.300x300_q70.webp")
    assert not spec.owns("images/cat.jpg.300x300_q70.webp")  # outside the base directory
    assert not spec.owns("thumbs/images/small/t_cat.jpg.300x300_q85.webp")  # another alias's


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"size": [300, 300], "sharpen": True}, "unknown key|Extra inputs"),
        ({"size": [0, 0]}, "needs a width, a height or both"),
        ({"size": [300, 300], "crop": "top left"}, "crop"),
        ({"size": [300, 300], "background": "blue"}, "background"),
    ],
)
def test_options_easy_thumbnails_would_draw_differently_are_refused(
    options: dict[str, Any], reason: str
) -> None:
    with pytest.raises(ValidationError, match=reason):
        EasyThumbnailsRendition.model_validate({"preset": "easy_thumbnails", **options})


async def test_easy_thumbnails_serves_what_batchthumb_wrote_and_makes_the_same(
    pg_dsn: str, empty_pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    keys = await easy_site(pg_dsn, media)
    # a source whose modification time lies ahead (copied with its times from a clock ahead):
    # its thumbnails must not look older than it
    ahead = media / keys[0]
    os.utime(ahead, (time.time() + 3600, time.time() + 3600))
    counters, _, _ = await generate(easy_config(pg_dsn, media))
    assert (counters.written, counters.failed) == (len(keys) * len(EASY), 0)
    rows = await registry_rows(pg_dsn)
    for (key, _), row in rows.items():
        assert (media / row["object_key"]).stat().st_mtime >= (media / key).stat().st_mtime

    served = site_probe(pg_dsn, media, "easy")
    assert served["created"] == []  # nothing rendered, nothing saved
    # on disk: a stat of the source and the thumbnail, and .width opens the thumbnail (the library
    # does on disk whatever its rows say); never a source opened, never a save or an exists
    rendition_names = {row["object_key"] for row in rows.values()}
    opened = {call.removeprefix("open ") for call in served["calls"] if call.startswith("open ")}
    assert set(served["calls"]) - {f"open {name}" for name in opened} <= {"modified", "open"}, served["calls"]
    assert opened <= rendition_names
    ids = await photo_ids(pg_dsn)
    assert served_otherwise(served, rows, ids) == []
    for key in keys:
        found = served["photos"][str(ids[key])]
        assert found["url"] == [f"/media/{quote(rows[(key, 'fit')]['object_key'])}"]  # the filter agrees
    # the rows easy-thumbnails itself writes: a source each, a thumbnail each, with its size
    tables = await easy_rows(pg_dsn)
    assert set(tables["sources"]) == set(keys)
    assert {name: (row["width"], row["height"]) for name, row in tables["thumbnails"].items()} == {
        row["object_key"]: (row["width"], row["height"]) for row in rows.values()
    }
    disk_hash = "0d677af76ca5bf5575d614e04932c3a4"  # md5 of FileSystemStorage's class path (DJANGO-COMPAT.md)
    assert {row["storage_hash"] for row in tables["thumbnails"].values()} == {disk_hash}
    logo = {row["object_key"] for (key, _), row in rows.items() if key.endswith("logo.png")}
    assert {name.rsplit(".", 1)[1] for name in logo} == {"png", "jpg"}  # transparent, but not once padded

    # a re-run: nothing planned, nothing written, not a row touched
    again, _, _ = await generate(easy_config(pg_dsn, media))
    assert (again.written, again.skipped) == (0, len(keys) * len(EASY))
    assert await easy_rows(pg_dsn) == tables

    # easy-thumbnails' own thumbnails of a copy: the same names, sizes and part of the picture
    copy = tmp_path / "copy"
    await easy_site(empty_pg_dsn, copy)
    made = site_probe(empty_pg_dsn, copy, "easy")
    assert len(made["created"]) == len(keys) * len(EASY)
    differences = []
    for key in keys:
        theirs = made["photos"][str(ids[key])]
        for name, _ in EASY:
            ours = rows[(key, name)]
            their_name, width, height = theirs[name]
            assert their_name == ours["object_key"], (key, name)
            if (width, height) != (ours["width"], ours["height"]):
                ours_size = f"{ours['width']}x{ours['height']}"
                differences.append(f"{key} {name}: easy-thumbnails {width}x{height}, batchthumb {ours_size}")
                continue
            assert size_of(copy / their_name) == (width, height)
            source = size_of(copy / key)
            magnified = max(width / source[0], height / source[1], width / source[1], height / source[0])
            slack = SMART_SLACK if name == "smart" else 0
            distance = pixel_distance(media / ours["object_key"], copy / their_name, magnified, slack)
            if distance > SAME_PICTURE:
                differences.append(f"{key} {name}: {distance:.1f} levels apart on average")
    assert not differences, "\n".join(differences)


async def test_easy_thumbnails_on_s3_serves_from_its_rows_with_no_request_to_the_bucket(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    """django-storages' S3Storage with AWS_LOCATION = "media": the rows name its class."""
    from tests.helpers import s3_keys, s3_store_settings

    keys, s3 = await s3_site(pg_dsn, s3_client, bucket, s3_endpoint, corpus()[:3])
    site_probe(pg_dsn, tmp_path, "command", "migrate", "easy_thumbnails", s3=s3)
    target = s3_store_settings(s3_endpoint, f"s3://{bucket}/media/")
    config = easy_config(pg_dsn, target, S3_STORAGE, cache_dimensions=True)
    counters, _, target_requests = await generate(config)
    assert (counters.written, counters.failed) == (len(keys) * len(EASY), 0)
    assert target_requests["PutObject"] == len(keys) * len(EASY)
    rows = await registry_rows(pg_dsn)
    stored = set(s3_keys(s3_client, bucket, "media/")) - {f"media/{key}" for key in keys}
    assert {f"media/{row['object_key']}" for row in rows.values()} == stored

    served = site_probe(pg_dsn, tmp_path, "easy", s3=s3)
    assert served["calls"] == {}, served["calls"]  # not a HEAD, not a GET, not a PUT
    assert served["created"] == []
    ids = await photo_ids(pg_dsn)
    assert served_otherwise(served, rows, ids) == []
    for key in keys:
        found = served["photos"][str(ids[key])]
        assert found["url"] == [f"{s3_endpoint}/{bucket}/media/{quote(rows[(key, 'fit')]['object_key'])}"]
    tables = await easy_rows(pg_dsn)
    s3_hash = "c3d57892ee16c0b31fea83f03784e52c"  # md5 of the class path, as DJANGO-COMPAT.md gives it
    assert {row["storage_hash"] for row in tables["thumbnails"].values()} == {s3_hash}
    assert all(row["modified"] >= row["source_modified"] for row in tables["thumbnails"].values())


async def test_dimensions_are_written_only_for_a_site_that_caches_them(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    keys = await easy_site(pg_dsn, media)
    await generate(easy_config(pg_dsn, media))  # cache_dimensions = false: the library's default
    tables = await easy_rows(pg_dsn)
    assert len(tables["thumbnails"]) == len(keys) * len(EASY)
    assert {(row["width"], row["height"]) for row in tables["thumbnails"].values()} == {(None, None)}


async def test_purges_leave_nothing_for_easy_thumbnails_cleanup(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    keys = await easy_site(pg_dsn, media)
    config = easy_config(pg_dsn, media, cache_dimensions=True)
    await generate(config)
    first = keys[0]
    purged, _, _ = await purge(config, kind="referenced", source_keys=[first])
    assert (purged.deleted, purged.failed) == (len(EASY), 0)
    tables = await easy_rows(pg_dsn)
    assert first not in tables["sources"]  # left without a thumbnail: gone with them
    assert len(tables["thumbnails"]) == (len(keys) - 1) * len(EASY)
    assert all((media / name).is_file() for name in tables["thumbnails"])  # no row points at nothing

    # the site deletes a photo, its row and its file, but not its thumbnails; a purge of
    # orphans deletes them, and easy-thumbnails' own cleanup then finds nothing to do
    gone = keys[1]
    await sql(pg_dsn, "DELETE FROM gallery_photo WHERE image = $1", gone)
    (media / gone).unlink()
    orphans, _, _ = await purge(config, kind="orphans")
    assert orphans.deleted == len(EASY)
    before = await easy_rows(pg_dsn)
    assert gone not in before["sources"]
    cleanup = site_probe(pg_dsn, media, "command", "thumbnail_cleanup")
    assert cleanup["calls"].get("delete", 0) == 0
    assert await easy_rows(pg_dsn) == before  # not a source reference removed either
    assert {key: (media / key).is_file() for key in keys} == {key: key != gone for key in keys}


async def test_adopt_takes_what_easy_thumbnails_made_and_generate_makes_the_rest(
    pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    keys = await easy_site(pg_dsn, media)
    ids = await photo_ids(pg_dsn)
    third = sorted(ids.values())[: len(ids) // 3]
    made = site_probe(pg_dsn, media, "easy", only=third)
    assert len(made["created"]) == len(third) * len(EASY)
    # one of them the library counts stale: its source was replaced since (on disk: a newer file)
    stale_source = next(key for key, pk in ids.items() if pk == third[0])
    os.utime(media / stale_source, (time.time() + 3600, time.time() + 3600))
    library_files = {name: (media / name).stat().st_mtime_ns for name in made["created"]}

    adopted = await adopt(easy_config(pg_dsn, media))
    assert adopted.adopted == (len(third) - 1) * len(EASY)
    counters, _, _ = await generate(easy_config(pg_dsn, media))
    assert counters.written == (len(keys) - len(third) + 1) * len(EASY)
    kept = {name: (media / name).stat().st_mtime_ns for name in library_files}
    changed = {name for name in library_files if kept[name] != library_files[name]}
    assert {name.split(".", 2)[0] + "." + name.split(".", 2)[1] for name in changed} == {stale_source}
    served = site_probe(pg_dsn, media, "easy")
    assert served["created"] == []


async def test_clear_with_library_rows_forgets_them_too_and_leaves_the_files(
    pg_dsn: str, tmp_path: Path
) -> None:
    from batchthumb.jobs import clear

    media = tmp_path / "media"
    keys = await easy_site(pg_dsn, media)
    config = easy_config(pg_dsn, media, cache_dimensions=True)
    await generate(config)
    rows = await registry_rows(pg_dsn)
    assert await clear(config, (), ("fit",), dry_run=False) == len(keys)  # registry rows only
    assert len((await easy_rows(pg_dsn))["thumbnails"]) == len(keys) * len(EASY)
    assert await clear(config, (), ("crop",), dry_run=False, library_rows=True) == len(keys)
    left = await easy_rows(pg_dsn)
    crops = {row["object_key"] for (_, name), row in rows.items() if name == "crop"}
    assert set(left["thumbnails"]) == {row["object_key"] for row in rows.values()} - crops
    assert all((media / name).is_file() for name in crops)  # objects untouched


async def test_adopt_on_s3_goes_by_the_rows_as_the_library_does(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    from tests.helpers import s3_store_settings

    keys, s3 = await s3_site(pg_dsn, s3_client, bucket, s3_endpoint, corpus()[:6])
    site_probe(pg_dsn, tmp_path, "command", "migrate", "easy_thumbnails", s3=s3)
    ids = await photo_ids(pg_dsn)
    third = sorted(ids.values())[: len(ids) // 3]
    made = site_probe(pg_dsn, tmp_path, "easy", s3=s3, only=third)
    assert len(made["created"]) == len(third) * len(EASY)
    # on S3 the rows decide: a source saved again since (the field's save moves its modified,
    # to the time of that save: before batchthumb reads it, so what it writes is current)
    stale_source = next(key for key, pk in ids.items() if pk == third[0])
    await sql(pg_dsn, "UPDATE easy_thumbnails_source SET modified = now() WHERE name = $1", stale_source)
    target = s3_store_settings(s3_endpoint, f"s3://{bucket}/media/")
    config = easy_config(pg_dsn, target, S3_STORAGE, cache_dimensions=True)
    adopted = await adopt(config)
    assert adopted.adopted == (len(third) - 1) * len(EASY)
    sizes = {(row["width"], row["height"]) for row in (await registry_rows(pg_dsn)).values()}
    assert (0, 0) not in sizes  # the dimensions the library cached: nothing was read
    counters, _, _ = await generate(config)
    assert counters.written == (len(keys) - len(third) + 1) * len(EASY)
    served = site_probe(pg_dsn, tmp_path, "easy", s3=s3)
    assert (served["created"], served["calls"]) == ([], {})


@pytest.mark.parametrize("keyed", [True, False])
def test_transparency_is_read_as_pillow_reads_it(keyed: bool) -> None:
    """An RGB PNG with a tRNS colour key: libvips gives it an alpha band, Pillow (and so
    easy-thumbnails) calls it opaque and writes a .jpg; an RGBA PNG is transparent to both."""
    import io

    from easy_thumbnails.utils import is_transparent
    from PIL import Image

    from batchthumb.render import render

    if keyed:
        picture = Image.new("RGB", (64, 48), (200, 30, 30))
        buffer = io.BytesIO()
        picture.save(buffer, "PNG", transparency=(200, 30, 30))
    else:
        picture = Image.new("RGBA", (64, 48), (200, 30, 30, 120))
        buffer = io.BytesIO()
        picture.save(buffer, "PNG")
    data = buffer.getvalue()
    library_transparent = is_transparent(Image.open(io.BytesIO(data)))
    assert library_transparent is not keyed
    rendition = EasyThumbnailsRendition.model_validate({"preset": "easy_thumbnails", "size": [32, 32]})
    spec = RenditionSpec.from_config("r", rendition, DjangoConfig()).for_source("images/key.png")
    [rendered] = render(data, [spec], 10**8)
    assert rendered.transparent is library_transparent
    assert rendered.format == ("png" if library_transparent else "jpeg")
    name = spec.object_key("photos", "images/key.png", transparent=rendered.transparent)
    assert name == f"images/key.png.32x32_q85.{'png' if library_transparent else 'jpg'}"


async def test_a_regenerated_alias_takes_its_old_rows_with_its_old_files(pg_dsn: str, tmp_path: Path) -> None:
    from tests.helpers import with_renditions

    media = tmp_path / "media"
    keys = await easy_site(pg_dsn, media)
    config = easy_config(pg_dsn, media, cache_dimensions=True)
    await generate(config)
    before = await registry_rows(pg_dsn)
    changed = with_renditions(config, fit={"quality": 70})  # the site changed the alias: new names
    counters, _, _ = await generate(changed, command="regenerate")
    assert (counters.written, counters.deleted) == (len(keys), len(keys))
    old = {row["object_key"] for (_, name), row in before.items() if name == "fit"}
    thumbnails = (await easy_rows(pg_dsn))["thumbnails"]
    assert not old & set(thumbnails)  # the replaced files' rows went with them
    assert all((media / name).is_file() for name in thumbnails)
    assert sum(".300x300_q70." in name for name in thumbnails) == len(keys)
