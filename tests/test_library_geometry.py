"""batchthumb's pure geometry and name functions against each library's own code, on random
inputs (hypothesis): a disagreement of one pixel, or one character of a name, fails here
before any site sees it.

The libraries are imported in this process with a minimal Django configuration (no database,
no storage): sorl-thumbnail's engine arithmetic (``EngineBase.scale``/``crop``/``padding`` on
a stand-in image that only has a size), its parsers and ``tokey``; pilkit's processors on a
real Pillow image of the drawn size (1 px tall where only the width matters is not allowed:
the sizes are small instead); easy-thumbnails' ``scale_and_crop`` on a Pillow image and its
namer; versatileimagefield's crop box and names; django_advance_thumbnail's name.
"""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from batchthumb.django import advance_thumbnail as bt_advance
from batchthumb.django import easy_thumbnails as bt_easy
from batchthumb.django import imagekit as bt_imagekit
from batchthumb.django import sorl as bt_sorl
from batchthumb.django import versatileimagefield as bt_versatile
from batchthumb.errors import RenderError
from tests.django_in_process import configure

configure()

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SIZES = st.integers(min_value=1, max_value=900)
BOXES = st.integers(min_value=1, max_value=600)


# -- sorl-thumbnail ---------------------------------------------------------------------------


class SizeOnlyEngine:
    """sorl's ``EngineBase`` arithmetic on an image that is only a size: what it scales to, the
    window and offsets it crops at, and the canvas it pads to."""

    def __init__(self) -> None:
        from sorl.thumbnail.engines.base import EngineBase

        class Engine(EngineBase):  # type: ignore[misc]
            def get_image_size(self, image: dict[str, Any]) -> tuple[int, int]:
                return image["size"]

            def _flip_dimensions(self, image: dict[str, Any]) -> bool:
                return False

            def _scale(self, image: dict[str, Any], width: int, height: int) -> dict[str, Any]:
                return {**image, "size": (width, height)}

            def _crop(self, image: dict[str, Any], width: int, height: int, x: int, y: int) -> dict[str, Any]:
                return {**image, "size": (width, height), "offset": (x, y)}

            def _padding(self, image: dict[str, Any], geometry: Any, options: Any) -> dict[str, Any]:
                return {**image, "pad": tuple(geometry)}

        self.engine = Engine()

    def run(self, width: int, height: int, geometry: str, options: dict[str, Any]) -> dict[str, Any]:
        from sorl.thumbnail.parsers import parse_geometry

        opts = {"crop": False, "upscale": True, "padding": False, **options}
        box = parse_geometry(geometry, width / height)
        image: dict[str, Any] = {"size": (width, height)}
        image = self.engine.scale(image, box, opts)
        scaled = image["size"]
        image = self.engine.crop(image, box, opts)
        image = self.engine.padding(image, box, opts)
        return {**image, "scaled": scaled}


CROPS = st.sampled_from([None, "center", "left top", "right bottom", "top", "left", "30% 70%", "10px 5px"])


@EXAMPLES
@given(
    width=SIZES,
    height=SIZES,
    box_w=BOXES,
    box_h=BOXES,
    form=st.sampled_from(["WxH", "W", "xH"]),
    crop=CROPS,
    upscale=st.booleans(),
    padding=st.booleans(),
)
@example(width=800, height=600, box_w=300, box_h=300, form="WxH", crop=None, upscale=True, padding=False)
def test_sorl_geometry_is_sorls(
    width: int, height: int, box_w: int, box_h: int, form: str, crop: str | None, upscale: bool, padding: bool
) -> None:
    geometry = {"WxH": f"{box_w}x{box_h}", "W": f"{box_w}", "xH": f"x{box_h}"}[form]
    options: dict[str, Any] = {"upscale": upscale, "padding": padding}
    if crop:
        options["crop"] = crop
    theirs = SizeOnlyEngine().run(width, height, geometry, options)
    ours = bt_sorl.sorl_geometry(width, height, geometry, options)
    assert (ours.width, ours.height) == theirs["size"]
    if crop:
        # the window's offset in the scaled image, as sorl cuts it
        assert ours.crop is not None
        scale_x, scale_y = theirs["scaled"][0] / width, theirs["scaled"][1] / height
        offset = (round(ours.crop[0] * scale_x), round(ours.crop[1] * scale_y))
        assert offset == theirs.get("offset", (0, 0))
    assert ours.pad == theirs.get("pad")


@EXAMPLES
@given(
    source=st.text(alphabet="abcdefghij/._- XYZ", min_size=1, max_size=40),
    geometry=st.sampled_from(["300x300", "x150", "200", "100x100"]),
    quality=st.one_of(st.integers(1, 100), st.sampled_from(["85", "95"])),
    crop=st.sampled_from([None, "center", "smart"]),
)
def test_sorl_names_are_sorls(source: str, geometry: str, quality: Any, crop: str | None) -> None:
    from sorl.thumbnail.helpers import tokey

    storage = "django.core.files.storage.filesystem.FileSystemStorage"
    options = {
        "format": "JPEG",
        "quality": quality,
        "colorspace": "RGB",
        "upscale": True,
        "crop": crop or False,
        "cropbox": None,
        "rounded": None,
        "padding": False,
        "padding_color": "#ffffff",
    }
    assert bt_sorl.sorl_tokey(source, storage) == tokey(source, storage)
    key = tokey(tokey(source, storage), geometry, json.dumps(options, sort_keys=True))
    expected = f"cache/{key[:2]}/{key[2:4]}/{key}.jpg"
    assert bt_sorl.sorl_name(source, storage, geometry, options, "cache/") == expected


# -- pilkit (imagekit) ------------------------------------------------------------------------


def _pil(width: int, height: int) -> Any:
    from PIL import Image

    return Image.new("RGB", (width, height))


def _size_or_zero(process: Any) -> tuple[int, int] | None:
    """The size a processor makes, or ``None`` where Pillow refuses the 0 px side it computed
    (batchthumb must compute a 0 px side there too: the source then fails to render)."""
    try:
        size: tuple[int, int] = process().size
    except ValueError as error:
        if "must be > 0" not in str(error):
            raise
        return None
    return size


@EXAMPLES
@given(
    width=SIZES,
    height=SIZES,
    box_w=BOXES,
    box_h=BOXES,
    upscale=st.booleans(),
    only=st.sampled_from(["", "w", "h"]),
)
def test_pilkit_resize_to_fit_is_pilkits(
    width: int, height: int, box_w: int, box_h: int, upscale: bool, only: str
) -> None:
    from pilkit.processors import ResizeToFit

    w = None if only == "h" else box_w
    h = None if only == "w" else box_h
    theirs = _size_or_zero(lambda: ResizeToFit(w, h, upscale=upscale).process(_pil(width, height)))
    ours = bt_imagekit.pilkit_fit(width, height, w, h, upscale)
    if theirs is None:
        assert min(ours.width, ours.height) == 0
    else:
        assert (ours.width, ours.height) == theirs


ANCHORS = st.sampled_from(["tl", "t", "tr", "l", "c", "r", "bl", "b", "br"])


@EXAMPLES
@given(width=SIZES, height=SIZES, box_w=BOXES, box_h=BOXES, upscale=st.booleans(), anchor=ANCHORS)
def test_pilkit_resize_to_fill_is_pilkits(
    width: int, height: int, box_w: int, box_h: int, upscale: bool, anchor: str
) -> None:
    from pilkit.processors import ResizeToFill

    fill = ResizeToFill(box_w, box_h, anchor=anchor, upscale=upscale)
    theirs = _size_or_zero(lambda: fill.process(_pil(width, height)))
    ours = bt_imagekit.pilkit_fill(width, height, box_w, box_h, upscale, bt_imagekit.pilkit_anchor(anchor))
    if theirs is None:
        assert min(ours.width, ours.height) == 0
    else:
        assert (ours.width, ours.height) == theirs


# -- easy-thumbnails --------------------------------------------------------------------------


@EXAMPLES
@given(
    width=SIZES,
    height=SIZES,
    box_w=st.integers(0, 600),
    box_h=st.integers(0, 600),
    crop=st.sampled_from([None, True, "scale", ",0", "-10,", "0,-0"]),
    upscale=st.booleans(),
    zoom=st.sampled_from([None, 20, 40]),
    target=st.sampled_from([None, "20,80", "100,0"]),
)
def test_easy_thumbnails_scale_and_crop_is_easy_thumbnails(
    width: int,
    height: int,
    box_w: int,
    box_h: int,
    crop: Any,
    upscale: bool,
    zoom: int | None,
    target: str | None,
) -> None:
    assume(box_w or box_h)
    largest = max(box_w / width, box_h / height) * (1 + (zoom or 0) / 100)
    assume(not upscale or width * height * largest * largest < 4_000_000)  # a picture Pillow will make
    from easy_thumbnails.processors import scale_and_crop

    options: dict[str, Any] = {"size": (box_w, box_h), "upscale": upscale}
    if crop is not None:
        options["crop"] = crop
    if zoom:
        options["zoom"] = zoom
    if target:
        options["target"] = target
    theirs = _size_or_zero(lambda: scale_and_crop(_pil(width, height), **options))
    if theirs is None:  # the library cannot make it: neither does batchthumb, in one line
        with pytest.raises(RenderError, match="a side of 0 px"):
            bt_easy.easy_geometry(width, height, options)
        return
    ours = bt_easy.easy_geometry(width, height, options)
    assert (ours.width, ours.height) == theirs


@EXAMPLES
@given(
    folder=st.sampled_from(["", "images/", "images/2024/"]),
    stem=st.text(alphabet="abcXYZ019 -_", min_size=1, max_size=20),
    extension=st.sampled_from(["jpg", "JPG", "png", "webp"]),
    size=st.tuples(st.integers(0, 600), st.integers(1, 600)),
    quality=st.integers(1, 100),
    crop=st.sampled_from([None, True, "smart", "-0,0"]),
    transparent=st.booleans(),
)
def test_easy_thumbnails_names_are_its_namers(
    folder: str, stem: str, extension: str, size: tuple[int, int], quality: int, crop: Any, transparent: bool
) -> None:
    from easy_thumbnails.namers import default as namer
    from easy_thumbnails.options import ThumbnailOptions

    source = f"{folder}{stem}.{extension}"
    options: dict[str, Any] = {"size": size, "quality": quality}
    if crop is not None:
        options["crop"] = crop
    prepared = ThumbnailOptions(options).prepared_options()
    assert bt_easy.easy_prepared_options(ThumbnailOptions(options)) == prepared
    ext = "png" if transparent else "jpg"

    class Thumbnailer:  # the settings the default namer reads off the thumbnailer
        thumbnail_basedir = ""
        thumbnail_subdir = ""

    theirs = namer(
        thumbnailer=Thumbnailer(),
        source_filename=os.path.basename(source),
        thumbnail_extension=ext,
        thumbnail_options=options,
        prepared_options=prepared,
    )
    assert os.path.basename(bt_easy.easy_name(source, prepared, ext)) == theirs


# -- versatileimagefield ----------------------------------------------------------------------


@EXAMPLES
@given(
    width=SIZES,
    height=SIZES,
    box_w=BOXES,
    box_h=BOXES,
    ppoi=st.tuples(
        st.sampled_from([0.0, 0.1, 0.3, 0.5, 0.7, 1.0]), st.sampled_from([0.0, 0.25, 0.5, 0.9, 1.0])
    ),
)
def test_versatile_crop_box_is_versatileimagefields(
    width: int, height: int, box_w: int, box_h: int, ppoi: tuple[float, float]
) -> None:
    from versatileimagefield.versatileimagefield import CroppedImage

    captured: dict[str, Any] = {}

    class Recording:
        size = (width, height)

        def crop(self, region: tuple[int, int, int, int]) -> Recording:
            captured["box"] = region
            return self

        def resize(self, size: tuple[int, int], *args: Any) -> Recording:
            captured["size"] = size
            return self

    CroppedImage.crop_on_centerpoint(None, Recording(), box_w, box_h, ppoi)  # type: ignore[arg-type]
    ours = bt_versatile.versatile_crop(width, height, box_w, box_h, ppoi)
    assert ours.crop is not None
    assert tuple(int(side) for side in ours.crop) == tuple(captured["box"])
    assert (ours.width, ours.height) == tuple(captured["size"])


# -- django_advance_thumbnail -----------------------------------------------------------------


@EXAMPLES
@given(
    folder=st.sampled_from(["", "images/", "a/b/"]),
    stem=st.text(alphabet="abcXYZ019 -_.", min_size=1, max_size=20),
    extension=st.sampled_from([".jpg", ".png", ".JPEG", ""]),
    upload_to=st.sampled_from(["thumbnails/", "thumbs", "media/thumbs/"]),
)
def test_advance_thumbnail_name_is_the_fields(folder: str, stem: str, extension: str, upload_to: str) -> None:
    from django.db.models import FileField

    source = f"{folder}{stem}{extension}"
    assume(stem.strip(".") and os.path.basename(source) not in (".", ".."))
    # the field's own naming (fields.py), then the FileField's upload_to and the storage's name
    filename, ext = os.path.splitext(os.path.basename(source))
    expected = FileField(upload_to=upload_to).generate_filename(None, f"{filename}_thumbnail{ext}")
    assert bt_advance.advance_thumbnail_name(source, upload_to) == expected
