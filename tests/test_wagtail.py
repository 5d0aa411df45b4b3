"""Wagtail serves what batchthumb wrote: a real Wagtail site (``tests/wagtail_site``) on the test
Postgres, its images uploaded through Wagtail, then ``batchthumb generate`` with Wagtail specs;
the site's pages (``{% image %}``, ``{% srcset_image %}``, ``{% picture %}``, ``get_rendition(s)``,
``prefetch_renditions``) then render nothing and touch no file. A copy of the site makes the same
renditions itself: the names, sizes and formats are the same, and so is the picture.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import pyvips

from batchthumb.config import Config, config_from_dict
from batchthumb.samples import sample_bytes
from tests.django_site.site import alpha_png
from tests.helpers import LIMITS, generate, registry_rows, sql

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).parent.parent
SPECS = {
    "thumb": {"spec": "fill-300x200-c75|format-webp"},
    "square": {"spec": "fill-200x200"},
    "plain": {"spec": "width-400"},
    "listing": {"spec": "max-165x165"},
    "tall": {"spec": "height-300|format-png"},
    "half": {"spec": "scale-50|jpegquality-60"},
    "flat": {"spec": "bgcolor-fff|format-jpeg"},
    "hero": {"specs": "format-{avif,webp,jpeg} width-{400,800}"},
}
PICTURE = "format-{avif,webp,jpeg} width-{400,800}"


def filter_specs() -> list[str]:
    from batchthumb.django.wagtail_rules import expand_spec

    found: list[str] = []
    for settings in SPECS.values():
        found += [settings["spec"]] if "spec" in settings else expand_spec(settings["specs"])
    return found


def uploads(folder: Path) -> list[dict[str, Any]]:
    """What the editors upload: landscape with a focal point, portrait, a photo turned by EXIF
    (with a focal point), a PNG with alpha, a small one, a WebP."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "landscape.jpg": (sample_bytes(1200, 800, "jpeg", seed=1), [900, 250, 200, 160]),
        "portrait.jpg": (sample_bytes(600, 900, "jpeg", seed=2), None),
        "rotated.jpg": (sample_bytes(600, 400, "jpeg", seed=3, orientation=6), [100, 300, 80, 80]),
        "logo.png": (alpha_png(640, 480), None),
        "small.jpg": (sample_bytes(250, 150, "jpeg", seed=4), None),
        "photo.webp": (sample_bytes(900, 600, "webp", seed=5), None),
    }
    request = []
    for name, (data, focal) in files.items():
        (folder / name).write_bytes(data)
        request.append({"path": str(folder / name), "name": name, "focal": focal})
    return request


def site(
    dsn: str,
    media: Path,
    mode: str,
    request: dict[str, Any],
    s3: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Any:
    environment = {**os.environ, "BT_DSN": dsn, "BT_MEDIA_ROOT": str(media), "PYTHONPATH": str(ROOT)}
    environment.update({**(s3 or {}), **(env or {})})
    result = subprocess.run(
        [sys.executable, "-m", "tests.wagtail_site.probe", mode],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=600,
        env=environment,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def wagtail_config(dsn: str, media: Path, **wagtail: Any) -> Config:
    return config_from_dict(
        {
            "database": {"dsn": dsn},
            "stores": {"source": {"url": f"file://{media}"}},
            "sources": [
                {
                    "name": "images",
                    "table": "wagtailimages_image",
                    "key_column": "id",
                    "path_column": "file",
                    "focal_point": {
                        "x": "focal_point_x",
                        "y": "focal_point_y",
                        "width": "focal_point_width",
                        "height": "focal_point_height",
                        "units": "pixels",
                    },
                }
            ],
            "renditions": {name: {"preset": "wagtail", **settings} for name, settings in SPECS.items()},
            "django": {"wagtail": wagtail},
            "limits": LIMITS,
        },
        environ={},
    )


def psnr(one: Path, other: Path) -> float:
    """Peak signal-to-noise ratio of two same-sized images, both flattened onto white, in sRGB."""

    def load(path: Path) -> Any:
        image = pyvips.Image.new_from_file(str(path)).colourspace("srgb")
        if image.hasalpha():
            image = image.flatten(background=[255, 255, 255])
        return image.extract_band(0, n=3).cast("float")

    a, b = load(one), load(other)
    mse = ((a - b) ** 2).avg()
    return 99.0 if mse == 0 else float(10 * math.log10(255**2 / mse))


async def test_wagtail_serves_what_batchthumb_wrote(pg_dsn: str, empty_pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    images = site(pg_dsn, media, "setup", {"images": uploads(tmp_path / "uploads")})["images"]
    # Wagtail stores the raw size; batchthumb reads the upright one from the file
    rotated = next(image for image in images if image["file"].endswith("rotated.jpg"))
    assert (rotated["width"], rotated["height"]) == (600, 400)
    specs = filter_specs()

    counters, _, _ = await generate(wagtail_config(pg_dsn, media))
    assert (counters.written, counters.failed) == (len(images) * len(specs), 0), counters.failure_examples
    rows = await registry_rows(pg_dsn)

    tags = [
        '{% srcset_image img format-webp width-{400,800} sizes="100vw" %}',
        "{% picture img " + PICTURE + " %}",
    ]
    served = site(pg_dsn, media, "serve", {"specs": specs, "tags": tags})
    # every lookup found a row: nothing rendered, no file opened, checked or saved
    assert served["calls"].get("render", 0) == 0, served["calls"]
    assert {name: n for name, n in served["calls"].items() if name != "render"} == {}, served["calls"]
    by_file = {image["id"]: image["file"] for image in images}
    for image_id, found in served["found"].items():
        for spec in specs:
            url, width, height = found[spec]
            name = url.removeprefix("/media/")
            assert (media / name).is_file(), name
            assert pyvips.Image.new_from_file(str(media / name)).width == width
        assert "srcset" in served["html"][image_id][0]
        assert served["html"][image_id][1].count("<source") == 2, served["html"][image_id][1]  # avif, webp
        assert len(found["prefetched"]) == len(specs)
    recorded = {(row["source_key"], row["rendition"]) for row in rows.values()}
    assert len(recorded) == len(images) * len(specs)

    # a copy of the site renders the same specs itself
    copy = tmp_path / "copy"
    request = {"images": uploads(tmp_path / "uploads-copy")}
    theirs_images = site(empty_pg_dsn, copy, "setup", request)["images"]
    assert [i["file"] for i in theirs_images] == [i["file"] for i in images]
    made = site(empty_pg_dsn, copy, "make", {"specs": specs})
    assert made["calls"]["render"] == len(images) * len(specs)
    differences, weakest = [], {}
    for image_id, their_rows in made["rows"].items():
        ours = {row[0]: row for row in served["rows"][image_id]}
        assert len(ours) == len(their_rows) == len(specs)
        for spec, file, width, height, key in their_rows:
            mine = ours[spec]
            if mine[1:] != [file, width, height, key]:
                differences.append(
                    f"{by_file[int(image_id)]} {spec}: Wagtail {file, width, height, key}, ours {mine}"
                )
                continue
            quality = psnr(media / file, copy / file)
            weakest[spec] = min(quality, weakest.get(spec, 99.0))
            if quality < 35 and "avif" not in file:
                differences.append(f"{by_file[int(image_id)]} {spec}: {quality:.1f} dB from Wagtail's")
    assert not differences, "\n".join(differences)
    print("lowest PSNR by spec:", json.dumps({spec: round(db, 1) for spec, db in weakest.items()}))


async def test_a_second_run_writes_nothing_and_the_site_keeps_its_own_rows(
    pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    images = site(pg_dsn, media, "setup", {"images": uploads(tmp_path / "uploads")})["images"]
    first = images[0]
    # the site rendered one itself already (a visitor's page view): its row stands
    made = site(pg_dsn, media, "make", {"specs": ["width-400"]})
    assert made["calls"]["render"] == len(images)
    site_row = await sql(pg_dsn, "SELECT file FROM wagtailimages_rendition WHERE image_id = $1", first["id"])
    counters, _, _ = await generate(wagtail_config(pg_dsn, media))
    assert counters.failed == 0
    after = await sql(
        pg_dsn,
        "SELECT file FROM wagtailimages_rendition WHERE image_id = $1 AND filter_spec = 'width-400'",
        first["id"],
    )
    assert after == site_row  # insert-only: the site's row and file stand
    again, _, _ = await generate(wagtail_config(pg_dsn, media))
    assert (again.written, again.failed) == (0, 0)


async def test_two_images_whose_wagtail_names_collide_get_two_objects(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    folder = tmp_path / "uploads"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(sample_bytes(640, 400, "jpeg", seed=11))
    (folder / "photo.png").write_bytes(sample_bytes(300, 600, "png", seed=12))
    request = [
        {"path": str(folder / name), "name": name, "focal": None} for name in ("photo.jpg", "photo.png")
    ]
    images = site(pg_dsn, media, "setup", {"images": request})["images"]
    config = config_from_dict(
        {
            **wagtail_config(pg_dsn, media).model_dump(mode="json", exclude={"renditions", "database"}),
            "database": {"dsn": pg_dsn},
            "renditions": {"web": {"preset": "wagtail", "spec": "width-200|format-webp"}},
        },
        environ={},
    )
    counters, _, _ = await generate(config)
    assert (counters.written, counters.failed) == (2, 0)
    rows = await sql(
        pg_dsn, "SELECT image_id, file, width, height FROM wagtailimages_rendition ORDER BY image_id"
    )
    assert len({row["file"] for row in rows}) == 2, rows
    assert rows[0]["file"] == "images/photo.width-200.format-webp.webp"
    for row in rows:
        image = pyvips.Image.new_from_file(str(media / row["file"]))
        assert (image.width, image.height) == (row["width"], row["height"])
    assert [row["image_id"] for row in rows] == [image["id"] for image in images]


@pytest.mark.parametrize("spec", ["blur-5", "width-400|format-gif", "fill-300"])
def test_a_spec_wagtail_would_not_render_as_batchthumb_does_is_refused_at_load(
    spec: str, tmp_path: Path
) -> None:
    from batchthumb.errors import ConfigError

    with pytest.raises(ConfigError, match="renditions.r.spec"):
        config_from_dict(
            {
                "database": {"dsn": "postgresql://x@localhost/db"},
                "stores": {"source": {"url": f"file://{tmp_path}"}},
                "sources": [
                    {
                        "name": "images",
                        "table": "wagtailimages_image",
                        "key_column": "id",
                        "path_column": "file",
                    }
                ],
                "renditions": {"r": {"preset": "wagtail", "spec": spec}},
            },
            environ={},
        )


def snapshot(media: Path) -> dict[str, tuple[int, int]]:
    """Every rendition file with its modification time and size."""
    return {
        str(path.relative_to(media)): (path.stat().st_mtime_ns, path.stat().st_size)
        for path in (media / "images").rglob("*")
        if path.is_file()
    }


async def test_a_moved_focal_point_rewrites_only_that_images_fills(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    images = site(pg_dsn, media, "setup", {"images": uploads(tmp_path / "uploads")})["images"]
    config = wagtail_config(pg_dsn, media)
    await generate(config)
    before = snapshot(media)
    moved = images[1]  # portrait.jpg, without a focal point until now
    await sql(
        pg_dsn,
        "UPDATE wagtailimages_image SET focal_point_x = 300, focal_point_y = 700,"
        " focal_point_width = 100, focal_point_height = 100 WHERE id = $1",
        moved["id"],
    )
    counters, _, _ = await generate(config, command="regenerate")
    fills = [spec for spec in filter_specs() if spec.startswith("fill-")]
    assert (counters.written, counters.failed) == (len(fills), 0)
    after = snapshot(media)
    stem = Path(moved["file"]).stem
    changed = {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}
    old_key, new_key = "2e16d0ba", hashlib.sha1(b"100-100-300-700").hexdigest()[:8]
    assert all(Path(name).name.startswith(stem + ".") for name in changed), changed  # no other image's
    assert {name for name in changed if name in before} == {
        f"images/{stem}.{old_key}.{spec.replace('|', '.')}.{'webp' if 'webp' in spec else 'jpg'}"
        for spec in fills
    }
    rows = await sql(
        pg_dsn,
        "SELECT filter_spec, focal_point_key, file FROM wagtailimages_rendition WHERE image_id = $1"
        " AND filter_spec LIKE 'fill-%' ORDER BY filter_spec",
        moved["id"],
    )
    assert {row["focal_point_key"] for row in rows} == {new_key}  # the superseded rows went
    assert all((media / row["file"]).is_file() for row in rows)
    served = site(pg_dsn, media, "serve", {"specs": filter_specs()})
    assert served["calls"].get("render", 0) == 0, served["calls"]


async def test_purge_referenced_deletes_rows_then_files_and_says_what_the_cache_may_serve(
    pg_dsn: str, tmp_path: Path
) -> None:
    from tests.helpers import purge

    media = tmp_path / "media"
    images = site(pg_dsn, media, "setup", {"images": uploads(tmp_path / "uploads")})["images"]
    config = wagtail_config(pg_dsn, media)
    await generate(config)
    counters, lines, _ = await purge(config, kind="referenced", renditions=("thumb",))
    assert (counters.deleted, counters.failed) == (len(images), 0)
    assert not await sql(
        pg_dsn, "SELECT 1 FROM wagtailimages_rendition WHERE filter_spec LIKE 'fill-300x200-c75%'"
    )
    assert not list((media / "images").glob("*.fill-300x200-c75.*"))
    notes = [line for line in lines if "renditions cache" in line]
    assert notes and "wagtail-rendition-{image_id}-{file_hash}-{focal_point_key}-{filter_spec}" in notes[0]
    remaining = await sql(pg_dsn, "SELECT count(*) AS n FROM wagtailimages_rendition")
    assert remaining[0]["n"] == len(images) * (len(filter_specs()) - 1)


async def test_purge_deletes_the_renditions_cache_entries_of_the_rows_it_deletes(
    pg_dsn: str, tmp_path: Path, site_cache: str
) -> None:
    """With the site's renditions cache on Redis (``[django.wagtail] cache``), a page after the
    purge finds no cached rendition of a deleted row: Wagtail renders it again, and every URL it
    serves is a file that exists (without the deletes it serves the cached, deleted files)."""
    from tests.helpers import purge

    media = tmp_path / "media"
    cached = {"BT_CACHE_URL": site_cache}
    images = site(pg_dsn, media, "setup", {"images": uploads(tmp_path / "uploads")[:3]}, env=cached)["images"]
    config = wagtail_config(pg_dsn, media, cache=site_cache)
    await generate(config)
    specs = ["fill-300x200-c75|format-webp"]
    warm = site(pg_dsn, media, "serve", {"specs": specs}, env=cached)  # the site fills its cache
    assert warm["calls"].get("render", 0) == 0, warm["calls"]
    counters, lines, _ = await purge(config, kind="referenced", renditions=("thumb",))
    assert (counters.deleted, counters.failed) == (len(images), 0)
    assert not [line for line in lines if "renditions cache" in line]  # deleted, nothing to say
    served = site(pg_dsn, media, "serve", {"specs": specs, "tags_only": True}, env=cached)
    assert served["calls"].get("render", 0) == len(images)  # the tag found no row, cached or not
    urls = [entry[specs[0]][0] for entry in served["found"].values()]
    assert all((media / url.removeprefix("/media/")).is_file() for url in urls), urls


async def test_an_svg_is_skipped_not_failed(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    images = site(pg_dsn, media, "setup", {"images": uploads(tmp_path / "uploads")[:1]})["images"]
    (media / "original_images" / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    # a second row as the first, naming the SVG (Wagtail keeps SVGs when the site allows them)
    await sql(
        pg_dsn,
        "INSERT INTO wagtailimages_image SELECT * FROM jsonb_populate_record(NULL::wagtailimages_image,"
        " (SELECT to_jsonb(i) || jsonb_build_object('id', nextval(pg_get_serial_sequence("
        "'wagtailimages_image', 'id')), 'file', 'original_images/drawing.svg', 'title', 'drawing')"
        " FROM wagtailimages_image AS i WHERE id = $1))",
        images[0]["id"],
    )
    counters, _, _ = await generate(wagtail_config(pg_dsn, media))
    assert (counters.written, counters.failed, counters.not_rendered) == (len(filter_specs()), 0, 1)
    assert not list((media / "images").glob("drawing.*"))


async def test_wagtail_on_s3_serves_with_no_request_and_colliding_names_stay_apart(
    pg_dsn: str, s3_endpoint: str, s3_client: Any, bucket: str, tmp_path: Path
) -> None:
    """django-storages with its default ``file_overwrite=True``, where Wagtail's own names collide
    and overwrite: batchthumb gives the second image its own object."""
    from tests.helpers import s3_keys, s3_store_settings

    folder = tmp_path / "uploads"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(sample_bytes(640, 400, "jpeg", seed=11))
    (folder / "photo.png").write_bytes(alpha_png(300, 600))
    (folder / "landscape.jpg").write_bytes(sample_bytes(1200, 800, "jpeg", seed=1))
    names = ("photo.jpg", "photo.png", "landscape.jpg")
    s3 = {"BT_S3_ENDPOINT": s3_endpoint, "BT_S3_BUCKET": bucket, "BT_S3_LOCATION": "media"}
    request = {"images": [{"path": str(folder / name), "name": name, "focal": None} for name in names]}
    images = site(pg_dsn, tmp_path / "unused", "setup", request, s3=s3)["images"]
    specs = ["width-200|format-webp", "fill-100x100"]
    data = wagtail_config(pg_dsn, tmp_path).model_dump(
        mode="json", exclude={"renditions", "database", "stores"}
    )
    config = config_from_dict(
        {
            **data,
            "database": {"dsn": pg_dsn},
            "stores": {"source": s3_store_settings(s3_endpoint, f"s3://{bucket}/media/")},
            "renditions": {f"r{n}": {"preset": "wagtail", "spec": spec} for n, spec in enumerate(specs)},
        },
        environ={},
    )
    counters, _, target_requests = await generate(config)
    assert (counters.written, counters.failed) == (len(images) * len(specs), 0)
    assert target_requests["PutObject"] == len(images) * len(specs)
    rows = await sql(pg_dsn, "SELECT image_id, filter_spec, file, width, height FROM wagtailimages_rendition")
    files = [row["file"] for row in rows]
    assert len(set(files)) == len(files) == len(images) * len(specs)  # photo.jpg and photo.png apart
    stored = s3_keys(s3_client, bucket, "media/")
    assert {f"media/{file}" for file in files} <= set(stored)
    for row in rows:
        body = s3_client.get_object(Bucket=bucket, Key=f"media/{row['file']}")["Body"].read()
        image = pyvips.Image.new_from_buffer(body, "")
        assert (image.width, image.height) == (row["width"], row["height"]), row
    served = site(pg_dsn, tmp_path / "unused", "serve", {"specs": specs}, s3=s3)
    assert served["calls"] == {}, served["calls"]  # no render, no storage call, no S3 request
    # the counts see S3: a spec nobody wrote makes the site render, read and write
    made = site(pg_dsn, tmp_path / "unused", "make", {"specs": ["width-100"]}, s3=s3)
    assert made["calls"]["render"] == len(images)
    assert made["calls"]["s3_request"] >= 2 * len(images), made["calls"]


async def test_adopt_records_what_wagtail_made_and_generate_makes_the_rest(
    pg_dsn: str, tmp_path: Path
) -> None:
    from tests.helpers import adopt

    media = tmp_path / "media"
    images = site(pg_dsn, media, "setup", {"images": uploads(tmp_path / "uploads")})["images"]
    made_by_site = ["width-400", "fill-200x200", "max-165x165"]
    site(pg_dsn, media, "make", {"specs": made_by_site})
    before = snapshot(media)
    config = wagtail_config(pg_dsn, media)
    adopted = await adopt(config)
    assert adopted.adopted == len(images) * len(made_by_site), adopted
    counters, _, _ = await generate(config)
    assert (counters.written, counters.failed) == (len(images) * (len(filter_specs()) - len(made_by_site)), 0)
    after = snapshot(media)
    assert all(after[name] == stamp for name, stamp in before.items())  # Wagtail's own files untouched
    served = site(pg_dsn, media, "serve", {"specs": filter_specs()})
    assert served["calls"].get("render", 0) == 0, served["calls"]


async def test_purge_orphans_keeps_every_name_a_row_holds(pg_dsn: str, tmp_path: Path) -> None:
    from tests.helpers import purge

    media = tmp_path / "media"
    images = site(pg_dsn, media, "setup", {"images": uploads(tmp_path / "uploads")[:2]})["images"]
    site(pg_dsn, media, "make", {"specs": ["max-165x165"]})  # Wagtail's own, with their rows
    config = wagtail_config(pg_dsn, media)
    await generate(config)
    ghost = media / "images" / "ghost.width-400.jpg"  # a file of the pattern that no row names
    ghost.write_bytes(sample_bytes(40, 30, "jpeg"))
    stranger = media / "images" / "notes.txt"  # not of any pattern: never ours to delete
    stranger.write_text("kept")
    before = snapshot(media)
    counters, _, _ = await purge(config, kind="orphans", older_than_s=0)
    assert counters.deleted == 1, counters
    assert not ghost.exists() and stranger.exists()
    assert set(snapshot(media)) == set(before) - {"images/ghost.width-400.jpg"}
    rows = await sql(pg_dsn, "SELECT count(*) AS n FROM wagtailimages_rendition")
    assert rows[0]["n"] == len(images) * len(filter_specs())  # max-165x165 was Wagtail's: no second row
    # the registry knows every object as it is, the site's own included: verify finds nothing wrong
    from tests.helpers import verify

    checked, _, _, _ = await verify(config)
    assert (checked.checked, checked.missing, checked.wrong_size) == (len(images) * len(filter_specs()), 0, 0)


async def test_a_custom_rendition_table_needs_its_own_columns_given(pg_dsn: str, tmp_path: Path) -> None:
    """A custom rendition model with a NOT NULL column of its own: refused at start, by name,
    until ``extra_columns`` gives it; then its rows carry the value."""
    from batchthumb.errors import ConfigError

    media = tmp_path / "media"
    site(pg_dsn, media, "setup", {"images": uploads(tmp_path / "uploads")[:1]})
    await sql(
        pg_dsn,
        "CREATE TABLE probe_customrendition (id serial PRIMARY KEY, filter_spec varchar(255) NOT NULL,"
        " file varchar(100) NOT NULL, width integer NOT NULL, height integer NOT NULL,"
        " focal_point_key varchar(16) NOT NULL, image_id integer NOT NULL, note varchar(20) NOT NULL,"
        " UNIQUE (image_id, filter_spec, focal_point_key))",
    )
    with pytest.raises(ConfigError, match="NOT NULL column note"):
        await generate(wagtail_config(pg_dsn, media, rendition_table="probe_customrendition"))
    config = wagtail_config(
        pg_dsn, media, rendition_table="probe_customrendition", extra_columns={"note": "batchthumb"}
    )
    counters, _, _ = await generate(config)
    assert (counters.written, counters.failed) == (len(filter_specs()), 0)
    rows = await sql(pg_dsn, "SELECT DISTINCT note FROM probe_customrendition")
    assert [row["note"] for row in rows] == ["batchthumb"]
    assert not await sql(pg_dsn, "SELECT 1 FROM wagtailimages_rendition")


async def test_a_changed_quality_rebuilds_in_place_and_the_rows_still_name_the_files(
    pg_dsn: str, tmp_path: Path
) -> None:
    media = tmp_path / "media"
    images = site(pg_dsn, media, "setup", {"images": uploads(tmp_path / "uploads")[:2]})["images"]
    await generate(wagtail_config(pg_dsn, media))
    before = snapshot(media)
    counters, _, _ = await generate(wagtail_config(pg_dsn, media, jpeg_quality=50), command="regenerate")
    # [django.wagtail] is hashed whole (as every library's section): every rendition is rebuilt
    assert (counters.written, counters.failed) == (len(images) * len(filter_specs()), 0)
    after = snapshot(media)
    assert set(after) == set(before)  # the same names, rebuilt in place
    rows = await sql(pg_dsn, "SELECT file FROM wagtailimages_rendition")
    assert {row["file"] for row in rows} == set(after)
    served = site(pg_dsn, media, "serve", {"specs": filter_specs()})
    assert served["calls"].get("render", 0) == 0, served["calls"]
