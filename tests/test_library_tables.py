"""Each library's cases as a table: source × options → name, output size, crop box.

Where ``test_library_geometry`` draws random inputs for the pure functions, these rows go
through the whole plug-in as a run uses it (``RenditionSpec.from_config`` → ``for_source`` →
``object_key`` / ``geometry``), from a config written as a site writes it. The names are the
vectors ``DJANGO-COMPAT.md`` records from each library; every row's size (and crop box, where
there is one) is also computed by the library's own code in this process, so a row that no
longer says what the library does fails as surely as batchthumb's code going wrong. A new case
is one more row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from batchthumb.config import DjangoConfig
from batchthumb.django import LIBRARIES
from batchthumb.specs import RenditionSpec
from tests.test_library_geometry import SizeOnlyEngine, _pil

Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Row:
    source: str
    size: tuple[int, int]
    rendition: dict[str, Any]
    name: str
    output: tuple[int, int]
    crop: tuple[int, int, int, int] | None = None
    """The crop of the (upright) source, in whole pixels, where the library cuts one."""
    django: dict[str, Any] = field(default_factory=dict)
    ppoi: str | None = None
    transparent: bool = False

    @property
    def id(self) -> str:
        return f"{self.source}-{self.size[0]}x{self.size[1]}-{self.name.rsplit('/', 1)[-1][:24]}"


def ours(row: Row) -> tuple[str, tuple[int, int], tuple[int, int, int, int] | None]:
    """What batchthumb's plug-in makes of a row: the name, the size, the crop box."""
    django = DjangoConfig.model_validate(row.django)
    spec = RenditionSpec.from_config(
        "r", LIBRARIES[row.rendition["preset"]].rendition_model(**row.rendition), django
    )
    spec = spec.for_source(row.source, row.ppoi)
    name = spec.object_key("s", row.source, row.ppoi, transparent=row.transparent)
    geometry = spec.geometry(*row.size)
    assert geometry is not None
    crop = None if geometry.crop is None else tuple(round(side) for side in geometry.crop)
    return name, (geometry.width, geometry.height), crop  # type: ignore[return-value]


def check(row: Row, theirs_output: tuple[int, int], theirs_crop: Box | None = None) -> None:
    """The row says what the library made, and batchthumb makes the same (the crop box too,
    where the library's is known: ``theirs_crop``)."""
    assert theirs_output == row.output, "the table no longer says what the library makes"
    assert theirs_crop == row.crop, "the table's crop box is not the library's"
    name, output, crop = ours(row)
    assert name == row.name
    assert output == row.output
    if theirs_crop is not None:
        assert crop == theirs_crop


class PillowCalls:
    """Records the ``resize`` and ``crop`` calls a library makes on Pillow images and gives the
    part of the source its output shows, in source pixels (``None``: it cut nothing). For
    libraries that scale then cut (easy-thumbnails, pilkit) or cut while scaling
    (``ImageOps.fit``); a smart crop's trial slices would confuse it, so its rows check sizes."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, source: tuple[int, int]) -> None:
        from PIL import Image

        self.whole = self.region = (0.0, 0.0, float(source[0]), float(source[1]))
        self.scale = (1.0, 1.0)
        self.cut = False
        resize, crop, paste = Image.Image.resize, Image.Image.crop, Image.Image.paste

        def resizing(image: Any, size: Any, *args: Any, box: Any = None, **kwargs: Any) -> Any:
            if box is not None:
                self._cut(box)
                width, height = box[2] - box[0], box[3] - box[1]
            else:
                width, height = image.size
            self.scale = (self.scale[0] * width / size[0], self.scale[1] * height / size[1])
            return resize(image, size, *args, box=box, **kwargs)

        def cropping(image: Any, box: Any = None) -> Any:
            if box is not None:
                self._cut(box)
            return crop(image, box)

        def pasting(canvas: Any, image: Any, box: Any = None, *args: Any, **kwargs: Any) -> Any:
            if isinstance(box, tuple) and len(box) == 2:  # pilkit's ResizeCanvas: a cut by pasting
                x, y = -box[0], -box[1]
                self._cut((x, y, x + canvas.size[0], y + canvas.size[1]))
            return paste(canvas, image, box, *args, **kwargs)

        monkeypatch.setattr(Image.Image, "paste", pasting)
        monkeypatch.setattr(Image.Image, "resize", resizing)
        monkeypatch.setattr(Image.Image, "crop", cropping)

    def _cut(self, box: Any) -> None:
        (left, top, _, _), (x, y) = self.region, self.scale
        self.region = (left + box[0] * x, top + box[1] * y, left + box[2] * x, top + box[3] * y)
        self.cut = True

    def box(self) -> Box | None:
        if not self.cut or self.region == self.whole:
            return None
        return tuple(round(side) for side in self.region)  # type: ignore[return-value]


# -- sorl-thumbnail: THUMBNAIL_QUALITY = 85 in the vectors -------------------------------------

SORL_85 = {"sorl": {"quality": 85}}
SORL_CROP = {"preset": "sorl", "geometry": "300x300", "options": {"crop": "center"}}
SORL_S3 = {"sorl": {"quality": 85, "storage": "storages.backends.s3.S3Storage"}}
SORL = [
    Row("images/cat.jpg", (800, 600), {"preset": "sorl", "geometry": "300x300"},
        "cache/18/4c/184cf2ee6b7aff247654880cea9cfe13.jpg", (300, 225), django=SORL_85),
    Row("images/cat.jpg", (800, 600), SORL_CROP,
        "cache/a9/39/a9390dc291382ee46447a5700e365551.jpg", (300, 300), (100, 0, 700, 600), django=SORL_85),
    Row("images/cat.jpg", (800, 600), {"preset": "sorl", "geometry": "300x300"},
        "cache/33/1f/331f8798305b83a22ed50094cac42bc8.jpg", (300, 225), django=SORL_S3),
    Row("images/cat.jpg", (800, 600), SORL_CROP,
        "cache/46/21/462113be1d53a83e2f5193e974765ef7.jpg", (300, 300), (100, 0, 700, 600), django=SORL_S3),
]  # fmt: skip
SORL_SIZES = [  # names checked above; these rows are about sizes sorl gives (it enlarges by default)
    ("1200x1200", {}, (800, 600), (1200, 900)),
    ("x100", {}, (800, 600), (133, 100)),
    ("300x300", {"upscale": False}, (200, 100), (200, 100)),
    ("300x300", {"crop": "left top"}, (1000, 500), (300, 300)),
    ("100x50", {"padding": True}, (300, 300), (100, 50)),
]


@pytest.mark.parametrize("row", SORL, ids=lambda row: row.id)
def test_sorl_rows(row: Row) -> None:
    theirs = SizeOnlyEngine().run(*row.size, row.rendition["geometry"], row.rendition.get("options", {}))
    crop = None
    if "offset" in theirs:  # sorl scales, then cuts at an offset of the scaled image
        (x, y), (width, height) = theirs["offset"], theirs["size"]
        kx, ky = row.size[0] / theirs["scaled"][0], row.size[1] / theirs["scaled"][1]
        crop = (round(x * kx), round(y * ky), round((x + width) * kx), round((y + height) * ky))
    check(row, theirs.get("pad", theirs["size"]), crop)


@pytest.mark.parametrize(("geometry", "options", "source", "expected"), SORL_SIZES)
def test_sorl_sizes(
    geometry: str, options: dict[str, Any], source: tuple[int, int], expected: tuple[int, int]
) -> None:
    theirs = SizeOnlyEngine().run(*source, geometry, options)
    assert theirs.get("pad", theirs["size"]) == expected
    spec = RenditionSpec.from_config(
        "r", LIBRARIES["sorl"].rendition_model(preset="sorl", geometry=geometry, options=options)
    )
    geometry_out = spec.for_source("a.jpg").geometry(*source)
    assert geometry_out is not None
    size = geometry_out.pad or (geometry_out.width, geometry_out.height)
    assert size == expected


# -- django-versatileimagefield: quality 85 in the vectors -------------------------------------

VERSATILE_85 = {"versatileimagefield": {"jpeg_resize_quality": 85}}
V_THUMB = {"preset": "versatileimagefield", "sizer": "thumbnail", "size": "300x300"}
V_CROP = {"preset": "versatileimagefield", "sizer": "crop", "size": "300x300"}
VERSATILE = [
    Row("images/cat.jpg", (800, 600), V_THUMB,
        "__sized__/images/cat-thumbnail-300x300-85.jpg", (300, 225), django=VERSATILE_85),
    Row("images/cat.jpg", (800, 600), V_CROP, "__sized__/images/cat-crop-c0-5__0-5-300x300-85.jpg",
        (300, 300), (100, 0, 700, 600), django=VERSATILE_85),
    Row("images/cat.jpg", (800, 600), V_CROP, "__sized__/images/cat-crop-c0-3__0-7-300x300-85.jpg",
        (300, 300), (0, 0, 600, 600), django=VERSATILE_85, ppoi="0.3x0.7"),
    Row("images/logo.png", (640, 480), V_THUMB,
        "__sized__/images/logo-thumbnail-300x300.png", (300, 225), django=VERSATILE_85),
    Row("images/2024/my cat.JPG", (600, 800), V_THUMB,
        "__sized__/images/2024/mycat-thumbnail-300x300-85.JPG", (225, 300), django=VERSATILE_85),
    Row("images/small.jpg", (200, 100), V_THUMB,
        "__sized__/images/small-thumbnail-300x300-70.jpg", (200, 100)),
]  # fmt: skip


@pytest.mark.parametrize("row", VERSATILE, ids=lambda row: row.id)
def test_versatileimagefield_rows(row: Row) -> None:
    from versatileimagefield.versatileimagefield import CroppedImage

    width, height = (int(side) for side in row.rendition["size"].split("x"))
    if row.rendition["sizer"] == "thumbnail":
        image = _pil(*row.size)
        image.thumbnail((width, height))  # ThumbnailImage.process_image
        check(row, image.size)
        return
    captured: dict[str, Any] = {}

    class Recording:
        size = row.size

        def crop(self, region: tuple[int, int, int, int]) -> Recording:
            captured["box"] = tuple(region)
            return self

        def resize(self, size: tuple[int, int], *args: Any) -> Recording:
            captured["size"] = tuple(size)
            return self

    ppoi = tuple(float(part) for part in (row.ppoi or "0.5x0.5").split("x"))
    CroppedImage.crop_on_centerpoint(None, Recording(), width, height, ppoi)  # type: ignore[arg-type]
    check(row, captured["size"], captured["box"])


# -- easy-thumbnails: THUMBNAIL_QUALITY 85 (its default) ---------------------------------------

EASY = [
    Row("images/cat.jpg", (800, 600), {"preset": "easy_thumbnails", "size": [300, 300]},
        "images/cat.jpg.300x300_q85.jpg", (300, 225)),
    Row("images/cat.jpg", (800, 600), {"preset": "easy_thumbnails", "size": [300, 300], "crop": True},
        "images/cat.jpg.300x300_q85_crop.jpg", (300, 300), (100, 0, 700, 600)),
    Row("images/cat.jpg", (800, 600), {"preset": "easy_thumbnails", "size": [300, 300], "crop": "smart"},
        "images/cat.jpg.300x300_q85_crop-smart.jpg", (300, 300)),
    Row("images/logo.png", (640, 480), {"preset": "easy_thumbnails", "size": [300, 300]},
        "images/logo.png.300x300_q85.png", (300, 225), transparent=True),
    Row("images/small.jpg", (200, 100), {"preset": "easy_thumbnails", "size": [300, 300], "crop": True},
        "images/small.jpg.300x300_q85_crop.jpg", (200, 100)),
    Row("images/cat.jpg", (800, 600), {"preset": "easy_thumbnails", "size": [300, 0], "quality": 60},
        "images/cat.jpg.300x0_q60.jpg", (300, 225)),
]  # fmt: skip


@pytest.mark.parametrize("row", EASY, ids=lambda row: row.id)
def test_easy_thumbnails_rows(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    from easy_thumbnails.processors import scale_and_crop

    options = {key: value for key, value in row.rendition.items() if key in ("size", "crop", "upscale")}
    smart = options.get("crop") == "smart"
    if smart:  # the size is a crop's; which pixels go depends on them (the renderer finds them)
        options["crop"] = True
    image = _pil(*row.size)
    calls = PillowCalls(monkeypatch, row.size)
    theirs = scale_and_crop(image, **{**options, "size": tuple(options["size"])})
    check(row, theirs.size, None if smart else calls.box())


# -- django-imagekit (pilkit) ------------------------------------------------------------------


def _imagekit(processor: str, fmt: str | None = "JPEG", **arguments: Any) -> dict[str, Any]:
    rendition: dict[str, Any] = {"preset": "imagekit", "processors": [{"processor": processor, **arguments}]}
    if fmt:
        rendition |= {"format": fmt, "options": {"quality": 85}}
    return rendition


IMAGEKIT = [
    Row("images/cat.jpg", (800, 600), _imagekit("ResizeToFit", width=300, height=300),
        "CACHE/images/images/cat/d9a5af5f23dfff4976c8476de10c1b0b.jpg", (300, 225)),
    Row("images/cat.jpg", (800, 600), _imagekit("ResizeToFill", width=300, height=300),
        "CACHE/images/images/cat/8be4e878c20816f651c34ad69132805f.jpg", (300, 300), (100, 0, 700, 600)),
]  # fmt: skip
IMAGEKIT_SIZES = [  # pilkit enlarges by default; ResizeToFill covers, then cuts at the anchor
    ("ResizeToFit", {"width": 300, "height": 300}, (200, 100), (300, 150)),
    ("ResizeToFit", {"width": 300, "height": 300, "upscale": False}, (200, 100), (200, 100)),
    ("ResizeToFit", {"width": 300}, (800, 600), (300, 225)),
    ("ResizeToFill", {"width": 300, "height": 100, "anchor": "tl"}, (800, 600), (300, 100)),
    ("Thumbnail", {"width": 300, "height": 300}, (800, 600), (300, 300)),
    ("Thumbnail", {"width": 300, "height": 300, "crop": False}, (800, 600), (300, 225)),
]


def _pilkit_size(processor: str, arguments: dict[str, Any], source: tuple[int, int]) -> tuple[int, int]:
    from pilkit.processors import resize
    from pilkit.processors.base import Anchor

    if "anchor" in arguments:
        arguments = {
            **arguments,
            "anchor": {"tl": Anchor.TOP_LEFT}.get(arguments["anchor"], arguments["anchor"]),
        }
    size: tuple[int, int] = getattr(resize, processor)(**arguments).process(_pil(*source)).size
    return size


@pytest.mark.parametrize("row", IMAGEKIT, ids=lambda row: row.id)
def test_imagekit_rows(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    (processor,) = row.rendition["processors"]
    arguments = {key: value for key, value in processor.items() if key != "processor"}
    _pil(1, 1)  # Pillow loaded before the calls are recorded
    calls = PillowCalls(monkeypatch, row.size)
    size = _pilkit_size(processor["processor"], arguments, row.size)
    check(row, size, calls.box())


@pytest.mark.parametrize(("processor", "arguments", "source", "expected"), IMAGEKIT_SIZES)
def test_imagekit_sizes(
    processor: str, arguments: dict[str, Any], source: tuple[int, int], expected: tuple[int, int]
) -> None:
    assert _pilkit_size(processor, arguments, source) == expected
    rendition = LIBRARIES["imagekit"].rendition_model(**_imagekit(processor, None, **arguments))
    geometry = RenditionSpec.from_config("r", rendition).for_source("a.jpg").geometry(*source)
    assert geometry is not None
    assert (geometry.width, geometry.height) == expected


# -- django_advance_thumbnail ------------------------------------------------------------------

ADVANCE_FILL = {
    "preset": "django_advance_thumbnail",
    "upload_to": "thumbs",
    "size": [200, 200],
    "resize_method": "fill",
}
ADVANCE = [
    Row("images/cat.jpg", (800, 600), {"preset": "django_advance_thumbnail", "upload_to": "thumbnails/"},
        "thumbnails/cat_thumbnail.jpg", (300, 225)),
    Row("images/cat.jpg", (800, 600), ADVANCE_FILL, "thumbs/cat_thumbnail.jpg",
        (200, 200), (100, 0, 700, 600)),
    Row("uploads/a b.png", (200, 100), {"preset": "django_advance_thumbnail", "upload_to": "t/"},
        "t/a_b_thumbnail.png", (200, 100)),
]  # fmt: skip


@pytest.mark.parametrize("row", ADVANCE, ids=lambda row: row.id)
def test_advance_thumbnail_rows(row: Row, monkeypatch: pytest.MonkeyPatch) -> None:
    from PIL import ImageOps

    size = tuple(row.rendition.get("size", (300, 300)))
    image = _pil(*row.size)
    calls = PillowCalls(monkeypatch, row.size)
    if row.rendition.get("resize_method", "fit") in ("fill", "cover"):
        image = ImageOps.fit(image, size)  # the field's _generate_thumbnail_file
    else:
        image.thumbnail(size)
    check(row, image.size, calls.box())


# -- Wagtail: rows from the renditions Wagtail 8.0.1 made (tests/wagtail/vectors.json) --------------

WAGTAIL = [
    Row("original_images/photo.jpg", (1200, 800), {"preset": "wagtail", "spec": "fill-300x200"},
        "images/photo.2e16d0ba.fill-300x200.jpg", (300, 200), (0, 0, 1200, 800)),
    Row("original_images/photo_mxvGJfj.jpg", (1200, 800), {"preset": "wagtail", "spec": "fill-300x200-c75"},
        "images/photo_mxvGJfj.a63643e5.fill-300x200-c75.jpg", (300, 200), (540, 150, 1020, 470),
        ppoi="px:900,250,200,160"),
    Row("original_images/small.jpg", (250, 150), {"preset": "wagtail", "spec": "fill-300x200"},
        "images/small.2e16d0ba.fill-300x200.jpg", (226, 150), (12, 0, 238, 150)),
    Row("original_images/rotated.jpg", (400, 600), {"preset": "wagtail", "spec": "width-300"},
        "images/rotated.width-300.jpg", (300, 450), (0, 0, 400, 600), ppoi="px:100,300,80,80"),
    Row("original_images/photo.webp", (900, 600), {"preset": "wagtail", "spec": "width-400"},
        "images/photo.width-400.webp", (400, 266), (0, 0, 900, 600)),
    Row("original_images/logo.png", (640, 480), {"preset": "wagtail", "spec": "width-400|format-jpeg"},
        "images/logo.width-400.format-jpeg.jpg", (400, 300), (0, 0, 640, 480)),
]  # fmt: skip


@pytest.mark.parametrize("row", WAGTAIL, ids=lambda row: row.id)
def test_wagtail_rows(row: Row) -> None:
    from tests.django_in_process import configure

    configure()
    from types import SimpleNamespace

    from wagtail.images.models import AbstractImage, Filter

    x, y, width, height = (int(v) for v in row.ppoi[3:].split(",")) if row.ppoi else (None,) * 4
    image = SimpleNamespace(
        focal_point_x=x, focal_point_y=y, focal_point_width=width, focal_point_height=height
    )
    image.get_focal_point = lambda: AbstractImage.get_focal_point(image)  # type: ignore[arg-type]
    image.is_svg = lambda: False
    found = Filter(spec=row.rendition["spec"]).get_transform(image, row.size)
    left, top, right, bottom = found.get_rect().round()
    theirs_crop = (max(0, left), max(0, top), min(right, row.size[0]), min(bottom, row.size[1]))
    check(row, tuple(found.size), theirs_crop)


def test_every_library_has_a_table() -> None:
    tables = (SORL, VERSATILE, EASY, IMAGEKIT, ADVANCE, WAGTAIL)
    tabled = {rows[0].rendition["preset"] for rows in tables}
    assert tabled == set(LIBRARIES)
