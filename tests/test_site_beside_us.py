"""What a live site does beside a run, one race at a time, each made to happen deterministically.

The site is the test Django site (``tests/django_site``) on the test Postgres: sorl-thumbnail
with its ``cached_db`` key value store (on a real Redis server where the cache matters) and
easy-thumbnails, each rendering what it does not find, as on a page view.

1. ``purge orphans`` keeps the thumbnails the site made itself for photos that exist, in sizes
   batchthumb does not manage; what the library lists for a photo that is gone goes.
2. A purge deletes sorl's cache keys with its rows (before the files), so the site's cache
   never serves a row naming a deleted file.
3. A photo replaced while batchthumb renders it never ends with the old picture recorded as
   the current one (sorl's rows, easy-thumbnails' times, our registry).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import pyvips

from batchthumb import render as rendering
from batchthumb.samples import sample_bytes
from tests.django_site.site import photo_ids, probe, size_of
from tests.helpers import generate, make_config, purge, registry_rows, sql
from tests.test_easy_thumbnails import EASY, easy_config, easy_rows, easy_site
from tests.test_sorl import RENDITIONS as SORL_RENDITIONS
from tests.test_sorl import SORL, kvstore, sorl_config, sorl_site

pytestmark = pytest.mark.anyio

SITE_ONLY = [("small", "100x100", {"quality": 85})]
"""A size the site's templates use and the config does not manage."""


def age(root: Path, days: int = 30) -> None:
    """Every file under ``root``, made older than any grace."""
    old = (os.stat(root).st_mtime - days * 86400) if root.exists() else 0
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (old, old))


# -- 1. purge orphans and the thumbnails the site made itself ------------------------------


async def test_purge_orphans_keeps_what_the_sorl_site_made_for_its_photos(
    pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    keys = await sorl_site(pg_dsn, media)
    config = sorl_config(pg_dsn, media)
    await generate(config)
    made = probe(pg_dsn, media, "sorl-make", env={"BT_SORL": json.dumps(SITE_ONLY)})
    assert made["calls"]["save"] == len(keys)  # the site made its own 100x100 of every photo
    ids = await photo_ids(pg_dsn)
    site_made = {key: made["photos"][str(ids[key])]["small"][0] for key in keys}
    age(media / "cache")
    # one photo is deleted by the site: its row and its file
    gone = keys[0]
    await sql(pg_dsn, "DELETE FROM gallery_photo WHERE image = $1", gone)
    (media / gone).unlink()
    ours = {key: row["object_key"] for (key, _), row in (await registry_rows(pg_dsn)).items()}

    dry, dry_lines, _ = await purge(config, kind="orphans", dry_run=True)
    counters, lines, _ = await purge(config, kind="orphans")
    assert counters.failed == 0, lines
    would = {line.split()[2] for line in dry_lines if line.startswith("would delete ")}
    deleted = {line.split()[1] for line in lines if line.startswith("deleted file://")}
    assert would == deleted and len(deleted) == counters.deleted == dry.planned, (dry_lines, lines)
    assert counters.site_referenced == len(keys) - 1
    # what the site made for a photo that remains is there, and so are its rows
    store = await kvstore(pg_dsn)
    for key in keys[1:]:
        assert (media / site_made[key]).is_file(), (key, lines)
        assert any(isinstance(v, dict) and v["name"] == site_made[key] for v in store.values())
    # the deleted photo's thumbnails went, the site's and ours, with sorl's rows (its cleanup)
    assert not (media / site_made[gone]).exists()
    assert not (media / ours[gone]).exists()
    assert not any(isinstance(v, dict) and v["name"] in (site_made[gone], ours[gone]) for v in store.values())
    # a page of a remaining photo still finds all of its thumbnails in the rows: no storage call
    served = probe(
        pg_dsn, media, "sorl", only=[ids[k] for k in keys[1:]], env={"BT_SORL": json.dumps(SITE_ONLY)}
    )
    assert served["calls"].get("save", 0) == 0, served["calls"]
    assert served["calls"].get("exists", 0) == 0, served["calls"]


async def test_purge_orphans_keeps_the_thumbnails_easy_thumbnails_lists(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    keys = await easy_site(pg_dsn, media)
    config = easy_config(pg_dsn, media)
    await generate(config)
    # the site renders the same aliases itself for two photos (a page view after a clear)
    await sql(pg_dsn, "DELETE FROM batchthumb.renditions WHERE source_key = ANY($1::text[])", keys[:2])
    rows = await easy_rows(pg_dsn)
    listed = [name for name, row in rows["thumbnails"].items() if row["source"] in keys[:2]]
    assert listed
    age(media / "images")
    counters, lines, _ = await purge(config, kind="orphans")
    assert counters.failed == 0, lines
    assert counters.site_referenced == len(listed)
    assert all((media / name).is_file() for name in listed), lines
    assert set((await easy_rows(pg_dsn))["thumbnails"]) == set(rows["thumbnails"])


# -- 2. the site's shared cache --------------------------------------------------------------


async def test_a_purge_leaves_no_cached_row_naming_a_deleted_file(
    pg_dsn: str, tmp_path: Path, site_cache: str
) -> None:
    media = tmp_path / "media"
    keys = await sorl_site(pg_dsn, media)
    env = {"BT_SORL": json.dumps(SORL), "BT_CACHE_URL": site_cache}
    config = make_config(
        pg_dsn, media, None, SORL_RENDITIONS, extra={"django": {"sorl": {"cache": site_cache}}}
    )
    await generate(config)
    first = probe(pg_dsn, media, "sorl", env=env)  # pages fill the shared cache with the rows
    assert first["calls"] == {}, first["calls"]
    purged, lines, _ = await purge(config, kind="referenced", source_keys=[keys[0]])
    assert purged.deleted == len(SORL), lines
    # the next page: every thumbnail sorl returns exists (it renders what it no longer finds)
    second = probe(pg_dsn, media, "sorl", env=env)
    missing = [
        name
        for photo in second["photos"].values()
        for name, *_ in photo.values()
        if not (media / name).is_file()
    ]
    assert missing == [], missing
    assert second["calls"].get("save", 0) >= len(SORL)  # the purged ones were made again


async def test_a_cache_that_cannot_be_reached_stops_the_purge_before_a_file_goes(
    pg_dsn: str, tmp_path: Path, site_cache: str
) -> None:
    from batchthumb.errors import CacheError
    from tests.redis_server import free_port

    media = tmp_path / "media"
    keys = await sorl_site(pg_dsn, media)
    renditions = SORL_RENDITIONS
    await generate(make_config(pg_dsn, media, None, renditions))
    before = {path: path.stat().st_size for path in (media / "cache").rglob("*.*")}
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    config = make_config(pg_dsn, media, None, renditions, extra={"django": {"sorl": {"cache": nowhere}}})
    with pytest.raises(CacheError, match="the site's cache redis://127.0.0.1"):
        await purge(config, kind="referenced", source_keys=[keys[0]])
    assert {path: path.stat().st_size for path in (media / "cache").rglob("*.*")} == before


# -- 3. a photo replaced while it is rendered ------------------------------------------------


def replacing_renderer(original: bytes, replace: Callable[[], object]) -> Any:
    """``render``, but the first time it is asked for ``original``'s bytes the site replaces
    that source (``replace``: a new picture of another size, under the same name) before the
    rendering ends."""
    done: list[bool] = []

    def render(data: Any, specs: Any, max_pixels: int, **kwargs: Any) -> Any:
        result = rendering.render(data, specs, max_pixels, **kwargs)
        if not done and bytes(data) == original:
            done.append(True)
            replace()
        return result

    return render


def replacing_file(media: Path, key: str, replacement: bytes) -> Any:
    """:func:`replacing_renderer` for a file on disk, replaced in place."""
    return replacing_renderer((media / key).read_bytes(), lambda: (media / key).write_bytes(replacement))


async def test_a_photo_replaced_while_sorl_renditions_are_made_is_not_recorded_stale(
    pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    keys = await sorl_site(pg_dsn, media)
    target = keys[0]  # 1200x800: replaced by a 400x800 picture
    replacement = sample_bytes(400, 800, "jpeg", seed=99)
    config = sorl_config(pg_dsn, media)
    counters, _, _ = await generate(config, render_function=replacing_file(media, target, replacement))
    assert counters.source_changed == 1
    rows = await registry_rows(pg_dsn)
    assert not [row for (key, _), row in rows.items() if key == target]
    assert len(rows) == (len(keys) - 1) * len(SORL)
    store = await kvstore(pg_dsn)
    thumb_names = {value["name"] for value in store.values() if isinstance(value, dict)}
    # sorl knows nothing of the old picture's thumbnails, and no file of them is left to adopt
    ids = await photo_ids(pg_dsn)
    served = probe(pg_dsn, media, "sorl", only=[ids[target]], env={"BT_SORL": json.dumps(SORL)})
    fit = served["photos"][str(ids[target])]["fit"]
    assert fit[0] not in thumb_names
    assert served["calls"].get("save", 0) >= 1  # sorl made it, from the current picture
    assert tuple(fit[1:]) == (150, 300) == size_of(media / fit[0])  # 400x800 fitted into 300x300
    # the next run renders the current picture
    again, _, _ = await generate(config)
    assert again.written == len(SORL)
    rows = await registry_rows(pg_dsn)
    assert (rows[(target, "fit")]["width"], rows[(target, "fit")]["height"]) == (150, 300)


async def test_a_photo_replaced_while_easy_thumbnails_are_made_is_stale_to_the_site(
    pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    keys = await easy_site(pg_dsn, media)
    target = keys[0]
    replacement = sample_bytes(400, 800, "jpeg", seed=98)
    config = easy_config(pg_dsn, media)
    counters, _, _ = await generate(config, render_function=replacing_file(media, target, replacement))
    assert counters.source_changed == 1
    rows = await registry_rows(pg_dsn)
    assert not [row for (key, _), row in rows.items() if key == target]
    source_mtime = (media / target).stat().st_mtime_ns
    # any thumbnail file of it left is older than the current source: the site makes it again
    for path in (media / "images").glob(f"{Path(target).name}.*"):
        assert path.stat().st_mtime_ns < source_mtime, path
    ids = await photo_ids(pg_dsn)
    served = probe(pg_dsn, media, "easy", only=[ids[target]], env={"BT_EASY": json.dumps(EASY)})
    name, width, height = served["photos"][str(ids[target])]["fit"]
    assert served["created"], served  # made by the site, from the current picture
    image = pyvips.Image.new_from_file(str(media / name))
    assert (image.width, image.height) == (width, height)
    assert width < height  # the new picture is portrait; the old one was landscape
    # the thumbnails of photos that did not change carry their source's time, not now's
    for key in keys[1:]:
        for (source, _), row in rows.items():
            if source == key:
                assert (media / row["object_key"]).stat().st_mtime_ns == (media / key).stat().st_mtime_ns


async def test_a_source_replaced_on_s3_while_rendered_is_taken_back(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str
) -> None:
    """On S3 the version is the ETag: one HEAD per source after its renditions are recorded."""
    from tests.helpers import SOURCES, create_photo_table, s3_keys, s3_store_settings, source_files

    for key, data in source_files():
        s3_client.put_object(Bucket=bucket, Key=f"media/{key}", Body=data)
    await create_photo_table(pg_dsn, [key for key, _ in SOURCES])
    target_key, original = source_files()[0]
    # the site saves a new picture under the same name
    replacement = sample_bytes(300, 500, "jpeg")
    render = replacing_renderer(
        original, lambda: s3_client.put_object(Bucket=bucket, Key=f"media/{target_key}", Body=replacement)
    )

    source = s3_store_settings(s3_endpoint, f"s3://{bucket}/media/")
    target = s3_store_settings(s3_endpoint, f"s3://{bucket}/renditions/")
    config = make_config(pg_dsn, source, target, fingerprint_column=None)
    counters, source_requests, _ = await generate(config, render_function=render)
    assert counters.source_changed == 1
    assert source_requests["HeadObject"] == source_requests["GetObject"] == len(SOURCES)
    rows = await registry_rows(pg_dsn)
    assert not [row for (key, _), row in rows.items() if key == target_key]
    stored = s3_keys(s3_client, bucket, "renditions/")
    assert set(stored) == {f"renditions/{row['object_key']}" for row in rows.values()}  # nothing else left
    again, _, _ = await generate(config)
    assert again.written == 3 and again.source_changed == 0


async def test_purge_orphans_keeps_imagekit_and_versatile_files_of_photos_that_exist(
    pg_dsn: str, tmp_path: Path
) -> None:
    """imagekit and versatileimagefield keep no metadata: their names say whose thumbnail a file
    is, and one of a photo that still has its row is the site's (another spec, made on a page)."""
    from batchthumb.specs import specs_for
    from tests.django_site.site import corpus, photo_table
    from tests.helpers import files, write_sources
    from tests.test_dropin import DROP_IN, SITE

    media = tmp_path / "media"
    keys = write_sources(media, corpus()[:3])
    await photo_table(pg_dsn, keys)
    renditions = {name: DROP_IN[name] for name in ("fit", "vthumb")}
    config = make_config(pg_dsn, media, None, renditions, extra=SITE, ppoi_column="image_ppoi")
    await generate(config)
    ours = {row["object_key"] for row in (await registry_rows(pg_dsn)).values()}
    probe(pg_dsn, media, "serve")  # pages: imagekit makes its other specs, versatile its crop
    site_made = {
        name for name in files(media) if name.startswith(("CACHE/", "__sized__/")) and name not in ours
    }
    assert len(site_made) >= 3 * 5, site_made  # fill, corner, spot, smart; the crop
    age(media)
    gone = keys[1]
    await sql(pg_dsn, "DELETE FROM gallery_photo WHERE image = $1", gone)
    (media / gone).unlink()
    counters, lines, _ = await purge(config, kind="orphans")
    assert counters.failed == 0, lines
    stem = gone.rsplit(".", 1)[0]
    specs = specs_for(config.renditions, config.django)
    ours_pattern = {name for name in site_made | ours if any(spec.owns(name) for spec in specs)}
    of_gone = {name for name in ours_pattern if f"/{stem}/" in name or f"/{stem}-" in name}
    # what our patterns name for the photo that is gone went (ours and the site's imagekit files)
    assert len(of_gone) > 2 and not any((media / name).exists() for name in of_gone), lines
    # everything else of the site's is there, whether our patterns name it or not
    assert all((media / name).is_file() for name in site_made - of_gone), lines
    assert counters.site_referenced == len((site_made & ours_pattern) - of_gone)
