"""Drop-in for sorl-thumbnail: names, key value rows and sizes, checked by sorl itself.

The test Django site (``tests/django_site``) runs sorl-thumbnail 13 on the test Postgres,
its storage counting every call. After ``batchthumb generate``, ``get_thumbnail()`` and
the ``{% thumbnail %}`` tag must return batchthumb's objects with the size written, from
the key value store alone: no storage call, nothing rendered or saved. sorl then makes
its own thumbnails of a copy (an empty key value store): the same names, the same sizes,
the same part of the picture.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from batchthumb.config import Config, DjangoConfig
from batchthumb.django.imagekit import ImagekitRendition
from batchthumb.django.sorl import SorlRendition
from batchthumb.specs import RenditionSpec, spec_hash
from tests.django_site.site import (
    SAME_PICTURE,
    corpus,
    photo_ids,
    photo_table,
    pixel_distance,
    probe,
    s3_site,
    served_otherwise,
    size_of,
)
from tests.helpers import generate, make_config, purge, registry_rows, sql, write_sources

pytestmark = pytest.mark.anyio

FILE_STORAGE = "django.core.files.storage.filesystem.FileSystemStorage"
S3_STORAGE = "storages.backends.s3.S3Storage"

SORL: list[tuple[str, str, dict[str, Any]]] = [
    # {% thumbnail p.image "300x300" quality=85 %}
    ("fit", "300x300", {"quality": 85}),
    # {% thumbnail p.image "300x300" crop="center" quality=85 %}
    ("crop", "300x300", {"crop": "center", "quality": 85}),
    # anchors, sorl's own smart crop, a height only (enlarging: sorl's default), padding
    ("corner", "200x150", {"crop": "left top"}),
    ("smart", "200x100", {"crop": "smart"}),
    ("tall", "x150", {"format": "PNG"}),
    ("padded", "250x250", {"padding": True, "padding_color": "#336699"}),
]
RENDITIONS = {
    name: {"preset": "sorl", "geometry": geometry, "options": options} for name, geometry, options in SORL
}


def sorl_config(dsn: str, media: Path, storage: str = FILE_STORAGE) -> Config:
    return make_config(dsn, media, None, RENDITIONS, extra={"django": {"sorl": {"storage": storage}}})


def site_probe(
    dsn: str, media: Path, mode: str, *args: str, s3: dict[str, str] | None = None
) -> dict[str, Any]:
    return probe(dsn, media, mode, *args, s3=s3, env={"BT_SORL": json.dumps(SORL)})


async def sorl_site(dsn: str, media: Path) -> list[str]:
    """The photos' table, the sources, and sorl's own table made by its migration."""
    keys = write_sources(media, corpus())
    await photo_table(dsn, keys)
    site_probe(dsn, media, "command", "migrate", "thumbnail")
    return keys


async def kvstore(dsn: str) -> dict[str, Any]:
    rows = await sql(dsn, "SELECT key, value FROM thumbnail_kvstore")
    return {row["key"]: json.loads(row["value"]) for row in rows}


def test_names_match_the_documented_vectors() -> None:
    def name(options: dict[str, Any], storage: str) -> str:
        rendition = SorlRendition.model_validate(
            {"preset": "sorl", "geometry": "300x300", "options": options}
        )
        spec = RenditionSpec.from_config(
            "r",
            rendition,
            DjangoConfig.model_validate({"sorl": {"storage": storage}}),
        )
        return spec.object_key("photos", "images/cat.jpg")

    assert name({"quality": 85}, FILE_STORAGE) == "cache/18/4c/184cf2ee6b7aff247654880cea9cfe13.jpg"
    assert (
        name({"quality": 85, "crop": "center"}, FILE_STORAGE)
        == "cache/a9/39/a9390dc291382ee46447a5700e365551.jpg"
    )
    assert name({"quality": 85}, S3_STORAGE) == "cache/33/1f/331f8798305b83a22ed50094cac42bc8.jpg"
    assert (
        name({"quality": 85, "crop": "center"}, S3_STORAGE)
        == "cache/46/21/462113be1d53a83e2f5193e974765ef7.jpg"
    )
    # types count, as in sorl: 85 and "85" are different files
    assert name({"quality": "85"}, FILE_STORAGE) != name({"quality": 85}, FILE_STORAGE)


def test_a_presets_hash_covers_its_own_librarys_settings_only() -> None:
    # configuring sorl must not make a site's imagekit renditions stale, nor the reverse
    imagekit = ImagekitRendition.model_validate(
        {"preset": "imagekit", "processors": [{"processor": "ResizeToFit", "width": 300}]}
    )
    sorl = SorlRendition.model_validate(RENDITIONS["fit"])
    plain, tuned_sorl = DjangoConfig(), DjangoConfig.model_validate({"sorl": {"quality": 50}})
    tuned_imagekit = DjangoConfig.model_validate({"imagekit": {"cachefile_dir": "thumbs"}})
    assert (
        spec_hash(imagekit, tuned_sorl) == spec_hash(imagekit, plain) != spec_hash(imagekit, tuned_imagekit)
    )
    assert spec_hash(sorl, tuned_imagekit) == spec_hash(sorl, plain) != spec_hash(sorl, tuned_sorl)


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"rounded": 10}, "not supported"),
        ({"crop": "middle"}, "crop positions"),
        ({"format": "GIF"}, "format"),
    ],
)
def test_options_sorl_would_draw_differently_are_refused(options: dict[str, Any], reason: str) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=reason):
        SorlRendition.model_validate({"preset": "sorl", "geometry": "300x300", "options": options})


async def test_sorl_serves_what_batchthumb_wrote_without_a_storage_call(
    pg_dsn: str, empty_pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    keys = await sorl_site(pg_dsn, media)
    counters, _, _ = await generate(sorl_config(pg_dsn, media))
    assert (counters.written, counters.failed) == (len(keys) * len(SORL), 0)
    rows = await registry_rows(pg_dsn)

    served = site_probe(pg_dsn, media, "sorl")
    assert served["calls"] == {}, served["calls"]  # no exists, no open, no save: the rows alone
    ids = await photo_ids(pg_dsn)
    assert served_otherwise(served, rows, ids) == []
    for key in keys:
        found = served["photos"][str(ids[key])]
        assert found["tag"] == [str(value) for value in found["fit"]]  # the template tag agrees
    # three rows per thumbnail: the source's (its size as stored), the thumbnail's, the list
    store = await kvstore(pg_dsn)
    assert len(store) == len(keys) * (2 + len(SORL))
    rotated = [
        value for value in store.values() if isinstance(value, dict) and value["name"].endswith("rotated.jpg")
    ]
    assert rotated == [{"name": "images/rotated.jpg", "storage": "default", "size": [800, 400]}]

    # a re-run: nothing planned, nothing written, not a row touched
    again, _, _ = await generate(sorl_config(pg_dsn, media))
    assert (again.written, again.skipped) == (0, len(keys) * len(SORL))
    assert await kvstore(pg_dsn) == store

    # sorl's own thumbnails of a copy: the same names, sizes and part of the picture
    copy = tmp_path / "copy"
    await sorl_site(empty_pg_dsn, copy)
    made = site_probe(empty_pg_dsn, copy, "sorl-make")
    assert made["calls"].get("save", 0) == len(keys) * len(SORL)
    differences = []
    for key in keys:
        theirs_by_name = made["photos"][str(ids[key])]
        for name, _, _ in SORL:
            ours = rows[(key, name)]
            their_name, width, height = theirs_by_name[name]
            assert their_name == ours["object_key"], (key, name)
            if (width, height) != (ours["width"], ours["height"]):
                differences.append(
                    f"{key} {name}: sorl {width}x{height}, batchthumb {ours['width']}x{ours['height']}"
                )
                continue
            assert size_of(copy / their_name) == (width, height)
            source = size_of(copy / key)
            magnified = max(width / source[0], height / source[1])
            distance = pixel_distance(
                media / ours["object_key"], copy / their_name, magnified, 10 if name == "smart" else 0
            )
            if distance > SAME_PICTURE:
                differences.append(f"{key} {name}: {distance:.1f} levels apart on average")
    assert not differences, "\n".join(differences)


async def test_purges_leave_nothing_for_sorls_cleanup(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    keys = await sorl_site(pg_dsn, media)
    config = sorl_config(pg_dsn, media)
    await generate(config)
    before = await kvstore(pg_dsn)
    first = keys[0]
    purged, _, _ = await purge(config, kind="referenced", source_keys=[first])
    assert (purged.deleted, purged.failed) == (len(SORL), 0)
    store = await kvstore(pg_dsn)
    gone = {rows for rows in before if rows not in store}
    assert len(gone) == len(SORL) + 1  # the thumbnails' rows and the emptied list; the source's stays
    for value in store.values():
        if isinstance(value, dict):
            assert (media / value["name"]).is_file(), value  # no row points at a deleted file

    # the rest, by prefix; then sorl's own cleanup finds nothing to do
    swept, _, _ = await purge(config, kind="prefix")
    assert swept.deleted == (len(keys) - 1) * len(SORL)
    left = await kvstore(pg_dsn)
    assert all(key.split("||")[1] == "image" for key in left)
    assert all(not value["name"].startswith("cache/") for value in left.values())
    cleanup = site_probe(pg_dsn, media, "command", "thumbnail", "cleanup")
    assert cleanup["calls"].get("delete", 0) == 0
    assert await kvstore(pg_dsn) == left
    assert {key: (media / key).is_file() for key in keys} == dict.fromkeys(keys, True)


async def test_sorl_on_s3_serves_with_no_request_to_the_bucket(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    """django-storages' S3Storage with AWS_LOCATION = "media": its class path names the files."""
    from tests.helpers import s3_keys, s3_store_settings

    keys, s3 = await s3_site(pg_dsn, s3_client, bucket, s3_endpoint, corpus()[:3])
    site_probe(pg_dsn, tmp_path, "command", "migrate", "thumbnail", s3=s3)
    config = sorl_config(pg_dsn, s3_store_settings(s3_endpoint, f"s3://{bucket}/media/"), S3_STORAGE)
    counters, _, target_requests = await generate(config)
    assert (counters.written, counters.failed) == (len(keys) * len(SORL), 0)
    assert target_requests["PutObject"] == len(keys) * len(SORL)
    rows = await registry_rows(pg_dsn)
    stored = set(s3_keys(s3_client, bucket, "media/cache/"))
    assert {f"media/{row['object_key']}" for row in rows.values()} == stored

    served = site_probe(pg_dsn, tmp_path, "sorl", s3=s3)
    assert served["calls"] == {}, served["calls"]  # not a HEAD, not a GET, not a PUT
    assert served_otherwise(served, rows, await photo_ids(pg_dsn)) == []


async def test_adopt_takes_what_sorl_made_and_generate_makes_the_rest(pg_dsn: str, tmp_path: Path) -> None:
    from tests.helpers import adopt

    media = tmp_path / "media"
    keys = await sorl_site(pg_dsn, media)
    ids = sorted(row["id"] for row in await sql(pg_dsn, "SELECT id FROM gallery_photo"))
    third = ids[: len(ids) // 3]
    made = probe(pg_dsn, media, "sorl-make", only=third, env={"BT_SORL": json.dumps(SORL)})
    assert made["calls"]["save"] == len(third) * len(SORL)
    library_files = {path: path.stat().st_mtime_ns for path in (media / "cache").rglob("*.*")}
    before = await kvstore(pg_dsn)

    adopted = await adopt(sorl_config(pg_dsn, media))
    assert adopted.adopted == len(third) * len(SORL)
    # with the sizes sorl recorded: nothing was read
    sizes = {(row["width"], row["height"]) for row in (await registry_rows(pg_dsn)).values()}
    assert (0, 0) not in sizes
    counters, _, _ = await generate(sorl_config(pg_dsn, media))
    assert counters.written == (len(keys) - len(third)) * len(SORL)
    assert counters.skipped == len(third) * len(SORL)
    assert {path: path.stat().st_mtime_ns for path in library_files} == library_files  # not rewritten
    after = await kvstore(pg_dsn)
    assert all(after[key] == value for key, value in before.items() if "||image||" in key)
    served = site_probe(pg_dsn, media, "sorl")
    assert served["calls"] == {}, served["calls"]


async def test_a_list_row_that_is_not_json_neither_stops_the_run_nor_survives(
    pg_dsn: str, tmp_path: Path
) -> None:
    from batchthumb.django.sorl import sorl_tokey

    media = tmp_path / "media"
    keys = await sorl_site(pg_dsn, media)
    hostile = f"sorl-thumbnail||thumbnails||{sorl_tokey(keys[0], FILE_STORAGE)}"
    await sql(pg_dsn, "INSERT INTO thumbnail_kvstore (key, value) VALUES ($1, 'not [json')", hostile)
    counters, _, _ = await generate(sorl_config(pg_dsn, media))
    assert (counters.written, counters.failed) == (len(keys) * len(SORL), 0)
    store = await kvstore(pg_dsn)
    assert len(store[hostile]) == len(SORL)  # read as empty, merged with batchthumb's keys
    purged, _, _ = await purge(sorl_config(pg_dsn, media), kind="referenced", source_keys=[keys[0]])
    assert purged.deleted == len(SORL)
    assert hostile not in await kvstore(pg_dsn)


async def test_clear_with_library_rows_forgets_sorls_rows_too(pg_dsn: str, tmp_path: Path) -> None:
    from batchthumb.jobs import clear

    media = tmp_path / "media"
    keys = await sorl_site(pg_dsn, media)
    config = sorl_config(pg_dsn, media)
    await generate(config)
    rows = await registry_rows(pg_dsn)
    assert await clear(config, (), ("crop",), dry_run=False, library_rows=True) == len(keys)
    store = await kvstore(pg_dsn)
    crops = {row["object_key"] for (_, name), row in rows.items() if name == "crop"}
    names = {value["name"] for value in store.values() if isinstance(value, dict)}
    assert not names & crops
    assert len(names) == len(keys) * len(SORL)  # the sources' rows and the other thumbnails'
    assert all((media / name).is_file() for name in crops)  # objects untouched


def test_the_sites_cache_changes_no_spec_hash_and_must_be_redis() -> None:
    """Naming the site's cache makes no rendition stale: the hashes of the example config are the
    ones its renditions were recorded with before the setting existed."""
    from pydantic import ValidationError

    from batchthumb.config import load_config
    from batchthumb.specs import specs_for

    config = load_config(Path(__file__).parent.parent / "configs" / "django-sorl.toml", environ={})
    before = {spec.name: spec.spec_hash for spec in specs_for(config.renditions, config.django)}
    assert before == {"fit": "0c35c27bdd84", "crop": "160e777d89f4"}
    cached = DjangoConfig.model_validate(
        {"sorl": {"cache": "redis://:secret@cache:6379/1", "cache_key_prefix": "site", "cache_version": 2}}
    )
    assert {spec.name: spec.spec_hash for spec in specs_for(config.renditions, cached)} == before
    assert "secret" not in repr(cached)
    with pytest.raises(ValidationError, match="only a Redis cache"):
        DjangoConfig.model_validate({"sorl": {"cache": "memcached://127.0.0.1:11211"}})
