"""Focal points: crops keep the subject in frame; moving it rebuilds the crops, not the fits."""

from __future__ import annotations

from pathlib import Path

import pytest
import pyvips

from batchthumb.config import RenditionConfig
from batchthumb.errors import ConfigError, RenderError
from batchthumb.render import render
from batchthumb.specs import RenditionSpec, specs_for
from tests.helpers import create_photo_table, generate, make_config, registry_rows, sql

pytestmark = pytest.mark.anyio


def subject_at(width: int, height: int, x: int, y: int, side: int = 100) -> bytes:
    """A dark image with one white square, centred on (x, y)."""
    image = pyvips.Image.black(width, height, bands=3) + 20
    image = image.draw_rect([255, 255, 255], x - side // 2, y - side // 2, side, side, fill=True)
    return bytes(image.cast("uchar").copy(interpretation="srgb").pngsave_buffer())


def brightness(data: bytes) -> float:
    """The brightest pixel: over 200 where the subject is in the frame, 20 where it is not."""
    return float(pyvips.Image.new_from_buffer(data, "").max())


def crop(name: str = "square", **settings: object) -> RenditionSpec:
    return RenditionSpec.from_config(name, RenditionConfig(mode="crop", width=200, height=200, **settings))  # type: ignore[arg-type]


@pytest.mark.parametrize("point", ["f:0.1,0.5", "px:120,300", "0.1x0.5"])
def test_a_crop_keeps_the_focal_point_in_frame(point: str) -> None:
    data = subject_at(1200, 600, 120, 300)
    (centred,) = render(data, [crop().for_source("a.png", None)], 10**9)
    (about,) = render(data, [crop().for_source("a.png", point)], 10**9)
    assert brightness(centred.data) < 100  # the middle of the frame: no subject
    assert brightness(about.data) > 200  # the subject, as near the centre as the frame allows
    assert (about.width, about.height) == (200, 200)
    # a smart gravity yields to the focal point too; a fit ignores it
    (smart,) = render(data, [crop(gravity="attention").for_source("a.png", point)], 10**9)
    assert brightness(smart.data) > 200
    fit = RenditionSpec.from_config("fit", RenditionConfig(width=200))
    assert fit.for_source("a.png", point) == fit and not fit.crops_about_focal


def test_a_width_set_crops_about_the_focal_point_at_every_width() -> None:
    data = subject_at(1600, 800, 1500, 100, side=60)
    variants = specs_for({"hero": RenditionConfig(mode="crop", aspect_ratio=(1, 1), widths=(200, 400))})
    results = render(data, [spec.for_source("a.png", "f:0.9375,0.125") for spec in variants], 10**9)
    for result in results:
        image = pyvips.Image.new_from_buffer(result.data, "")
        # the subject's corner of the source is in the frame's top right
        assert image.crop(image.width // 2, 0, image.width // 2, image.height // 2).max() > 200


def test_a_bad_focal_point_fails_that_source_with_the_reason() -> None:
    with pytest.raises(RenderError, match="focal point '2,x' is not x,y"):
        crop().for_source("a.png", "f:2,x")


async def test_a_moved_focal_point_rebuilds_the_crops_only(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    keys = ["left.png", "right.png"]
    (media / "left.png").write_bytes(subject_at(1200, 600, 150, 300))
    (media / "right.png").write_bytes(subject_at(1200, 600, 1050, 300))
    await create_photo_table(pg_dsn, keys)
    await sql(
        pg_dsn, "ALTER TABLE gallery_photo ADD COLUMN fx double precision, ADD COLUMN fy double precision"
    )
    await sql(pg_dsn, "UPDATE gallery_photo SET fx = 0.125, fy = 0.5 WHERE image = 'left.png'")
    renditions = {
        "square": {"mode": "crop", "width": 200, "height": 200, "format": "png"},
        "banner": {"mode": "crop", "aspect_ratio": "2:1", "widths": [200, 400], "format": "png"},
        "fit": {"width": 300, "format": "png"},
    }
    config = make_config(
        pg_dsn, media, tmp_path / "out", renditions=renditions, focal_point={"x": "fx", "y": "fy"}
    )
    counters, _, _ = await generate(config)
    assert counters.written == 2 * 4 and not counters.failed
    out = tmp_path / "out"
    rows = await registry_rows(pg_dsn)
    assert brightness((out / rows[("left.png", "square")]["object_key"]).read_bytes()) > 200
    # no focal point: the rendition's gravity (centre), which misses the subject on the right
    assert brightness((out / rows[("right.png", "square")]["object_key"]).read_bytes()) < 100

    # the subject placed on the right one: its crops are stale, its fit and the other source are not
    await sql(pg_dsn, "UPDATE gallery_photo SET fx = 0.875, fy = 0.5 WHERE image = 'right.png'")
    counters, _, _ = await generate(config, command="regenerate")
    assert counters.written == counters.stale == 3  # square, banner@200w, banner@400w
    after = await registry_rows(pg_dsn)
    changed = {key for key in rows if after[key]["created_at"] != rows[key]["created_at"]}
    assert changed == {("right.png", "square"), ("right.png", "banner@200w"), ("right.png", "banner@400w")}
    assert brightness((out / after[("right.png", "square")]["object_key"]).read_bytes()) > 200
    again, _, _ = await generate(config, command="regenerate")
    assert again.written == 0


def test_focal_point_columns_are_validated(pg_dsn: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="sources.0.focal_point: width and height are wagtail's box"):
        make_config(
            pg_dsn, tmp_path, tmp_path / "out", focal_point={"x": "a", "y": "b", "width": "c", "height": "d"}
        )
    with pytest.raises(ConfigError, match="give focal_point or ppoi_column, not both"):
        make_config(pg_dsn, tmp_path, tmp_path / "out", focal_point={"x": "a", "y": "b"}, ppoi_column="p")
    wagtail = {"x": "fx", "y": "fy", "width": "fw", "height": "fh", "units": "pixels"}
    make_config(pg_dsn, tmp_path, tmp_path / "out", focal_point=wagtail)


async def test_wagtails_focal_point_in_pixels(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    media.mkdir()
    (media / "a.png").write_bytes(subject_at(1200, 600, 1000, 450))
    await create_photo_table(pg_dsn, ["a.png"])
    columns = "fx integer, ADD COLUMN fy integer, ADD COLUMN fw integer, ADD COLUMN fh integer"
    await sql(pg_dsn, f"ALTER TABLE gallery_photo ADD COLUMN {columns}")
    await sql(pg_dsn, "UPDATE gallery_photo SET fx = 1000, fy = 450, fw = 100, fh = 100")
    wagtail = {"x": "fx", "y": "fy", "width": "fw", "height": "fh", "units": "pixels"}
    renditions = {"square": {"mode": "crop", "width": 150, "height": 150, "format": "png"}}
    config = make_config(pg_dsn, media, tmp_path / "out", renditions=renditions, focal_point=wagtail)
    counters, _, _ = await generate(config)
    assert counters.written == 1 and not counters.failed
    (row,) = (await registry_rows(pg_dsn)).values()
    assert brightness((tmp_path / "out" / row["object_key"]).read_bytes()) > 200
