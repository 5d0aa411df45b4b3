from __future__ import annotations

import threading
from typing import Any

import pytest
import pyvips

from batchthumb.config import RenditionConfig
from batchthumb.errors import ImageTooLarge, RenderError
from batchthumb.render import render, render_source
from batchthumb.samples import sample_bytes, sample_image
from batchthumb.specs import EXTENSIONS, RenditionSpec, specs_for


def spec(name: str, **settings: Any) -> RenditionSpec:
    return RenditionSpec.from_config(name, RenditionConfig(**settings))


def decode(data: bytes) -> Any:
    return pyvips.Image.new_from_buffer(data, "")


class CountingSource:
    """A pyvips SourceCustom over bytes that counts what libvips reads from it."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0
        self.bytes_read = 0
        self.lock = threading.Lock()
        self.source = pyvips.SourceCustom()
        self.source.on_read(self._read)
        self.source.on_seek(self._seek)

    def _read(self, size: int) -> bytes:
        with self.lock:
            chunk = self.data[self.position : self.position + size]
            self.position += len(chunk)
            self.bytes_read += len(chunk)
            return chunk

    def _seek(self, offset: int, whence: int) -> int:
        with self.lock:
            base = {0: 0, 1: self.position, 2: len(self.data)}[whence]
            self.position = base + offset
            return self.position


def test_each_source_is_decoded_once_however_many_renditions() -> None:
    data = sample_bytes(1600, 1200, "jpeg", seed=3)
    one = [spec("a", width=400, height=400)]
    five = [
        spec("a", width=400, height=400),
        spec("b", width=300, height=300, format="webp"),
        spec("c", mode="crop", width=200, height=200),
        spec("d", mode="fill", width=250, height=100, format="png"),
        spec("e", width=100, filters=["grayscale"]),
    ]
    single = CountingSource(data)
    render_source(single.source, one, 10**9)
    multiple = CountingSource(data)
    results = render_source(multiple.source, five, 10**9)
    assert [r.name for r in results] == ["a", "b", "c", "d", "e"]
    # Five renditions read the source exactly as much as one: one decode feeds them all.
    assert multiple.bytes_read == single.bytes_read
    assert single.bytes_read < 2 * len(data)


WIDTHS = [320, 640, 960, 1280, 1920]


def width_set(name: str = "hero", **settings: Any) -> list[RenditionSpec]:
    settings = {"widths": WIDTHS, "formats": ["avif", "webp", "jpeg"], **settings}
    return specs_for({name: RenditionConfig(**settings)})


def test_a_width_set_in_three_formats_is_fifteen_variants_from_one_decode() -> None:
    data = sample_bytes(1600, 1200, "jpeg", seed=3)
    variants = width_set(widths=[160, 240, 320, 480, 640])  # small: AVIF encodes are slow
    assert len(variants) == 15
    single = CountingSource(data)
    (one,) = render_source(single.source, [spec("largest", width=640)], 10**9)
    counting = CountingSource(data)
    results = render_source(counting.source, variants, 10**9)
    # fifteen variants read the source exactly as much as its largest alone: one decode
    assert counting.bytes_read == single.bytes_read
    assert single.bytes_read < 2 * len(data)
    names = ["hero@160w.avif", "hero@160w.webp", "hero@160w.jpeg", "hero@240w.avif"]
    assert [r.name for r in results][:4] == names
    for result in results:
        image = decode(result.data)
        width = int(result.name.split("@")[1].split("w")[0])
        assert (result.width, result.height) == (image.width, image.height) == (width, round(width * 3 / 4))
        assert image.get("vips-loader").startswith(result.name.rsplit(".", 1)[1].replace("avif", "heif"))
    assert (one.width, one.height) == (640, 480)


def test_widths_above_the_source_collapse_into_one_variant_per_format() -> None:
    data = sample_bytes(1000, 750, "jpeg", seed=4)
    variants = width_set()
    results = {r.name: r for r in render(data, variants, 10**9)}
    for fmt in ("avif", "webp", "jpeg"):
        sizes = {w: (results[f"hero@{w}w.{fmt}"].width, results[f"hero@{w}w.{fmt}"].height) for w in WIDTHS}
        collapsed = {1280: (1000, 750), 1920: (1000, 750)}
        assert sizes == {320: (320, 240), 640: (640, 480), 960: (960, 720), **collapsed}
        # not upscaled, and one output: the same bytes, under one name
        assert results[f"hero@1280w.{fmt}"].data is results[f"hero@1920w.{fmt}"].data
        keys = {
            spec.name: spec.object_key("photos", "a/b.jpg", width=results[spec.name].width)
            for spec in variants
            if spec.name.endswith(fmt)
        }
        assert keys[f"hero@1280w.{fmt}"] == keys[f"hero@1920w.{fmt}"]
        assert keys[f"hero@1280w.{fmt}"].endswith(f"a/b.jpg.1000w.{EXTENSIONS[fmt]}")
        assert len(set(keys.values())) == 4


def test_a_cropped_width_set_keeps_its_aspect_ratio_within_the_source() -> None:
    data = sample_bytes(1200, 600, "jpeg", seed=5)
    variants = width_set(mode="crop", aspect_ratio="4:3", formats=["webp"])
    results = {r.name: (r.width, r.height) for r in render(data, variants, 10**9)}
    # 4:3 inside 1200x600 is at most 800x600: every wider width collapses there
    assert results == {
        "hero@320w.webp": (320, 240),
        "hero@640w.webp": (640, 480),
        "hero@960w.webp": (800, 600),
        "hero@1280w.webp": (800, 600),
        "hero@1920w.webp": (800, 600),
    }


def test_adding_a_width_moves_no_existing_variant() -> None:
    before = {s.name: (s.spec_hash, s.object_key("p", "k.jpg")) for s in width_set(widths=[320, 640])}
    after = {s.name: (s.spec_hash, s.object_key("p", "k.jpg")) for s in width_set(widths=[320, 640, 960])}
    assert all(after[name] == value for name, value in before.items())
    changed = {s.name: (s.spec_hash, s.object_key("p", "k.jpg")) for s in width_set(widths=[320], quality=60)}
    assert changed["hero@320w.webp"][0] != before["hero@320w.webp"][0]
    assert changed["hero@320w.webp"][1] != before["hero@320w.webp"][1]


def test_modes_sizes_and_formats() -> None:
    data = sample_bytes(1000, 500, "jpeg", seed=1)
    results = {
        r.name: r
        for r in render(
            data,
            [
                spec("fit", width=200, height=200),
                spec("crop", mode="crop", width=100, height=100, format="webp"),
                spec("fill", mode="fill", width=300, height=300, format="png"),
                spec("north", mode="crop", width=50, height=80, gravity="north", format="avif"),
                spec("wide", width=300),
            ],
            10**9,
        )
    }
    assert (results["fit"].width, results["fit"].height) == (200, 100)
    assert (results["crop"].width, results["crop"].height) == (100, 100)
    assert (results["fill"].width, results["fill"].height) == (300, 300)
    assert (results["north"].width, results["north"].height) == (50, 80)
    assert (results["wide"].width, results["wide"].height) == (300, 150)
    loaders = {name: decode(r.data).get("vips-loader") for name, r in results.items()}
    assert loaders["fit"].startswith("jpeg")
    assert loaders["crop"].startswith("webp")
    assert loaders["fill"].startswith("png")
    assert loaders["north"].startswith("heif")
    for r in results.values():
        image = decode(r.data)
        assert (image.width, image.height) == (r.width, r.height)


def test_no_upscaling_unless_asked() -> None:
    data = sample_bytes(200, 100, "png", seed=2)
    small, big = render(data, [spec("s", width=800), spec("b", width=800, upscale=True)], 10**9)
    assert (small.width, small.height) == (200, 100)
    assert (big.width, big.height) == (800, 400)


def test_exif_orientation_is_applied_and_metadata_stripped() -> None:
    # 400x200 stored, orientation 6 (rotate 90° clockwise): upright it is 200x400.
    data = sample_bytes(400, 200, "jpeg", seed=4, orientation=6)
    (result,) = render(data, [spec("t", width=100, height=100)], 10**9)
    assert (result.width, result.height) == (50, 100)
    image = decode(result.data)
    assert not image.get_typeof("orientation") or image.get("orientation") == 1
    assert not image.get_typeof("exif-data")


@pytest.mark.parametrize("mode", ["fit", "crop"])
def test_autorotate_false_keeps_the_stored_picture_beside_turned_renditions(mode: str) -> None:
    # 400x200 stored, orientation 6; one rendition turned, one as stored, from one decode
    data = sample_bytes(400, 200, "jpeg", seed=4, orientation=6)
    specs = [
        spec("upright", width=100, height=100),
        spec("stored", mode=mode, width=200, height=100, autorotate=False),
    ]
    upright, stored = render(data, specs, 10**9)
    assert (upright.width, upright.height) == (50, 100)
    assert (stored.width, stored.height) == (200, 100)
    # the same pixels as the source as stored, halved: not turned, not squeezed
    expected = decode(data).copy()
    expected.remove("orientation")
    expected = expected.resize(0.5)
    assert (decode(stored.data) - expected).abs().avg() < 6


def test_cmyk_and_16_bit_alpha_come_out_as_srgb() -> None:
    cmyk = sample_image(300, 200, 5).colourspace("cmyk").jpegsave_buffer()
    (result,) = render(cmyk, [spec("t", width=100)], 10**9)
    image = decode(result.data)
    assert image.interpretation == "srgb"
    assert image.bands == 3
    rgb16 = sample_image(300, 200, 6).colourspace("rgb16")
    rgba16 = rgb16.bandjoin(65535).copy(interpretation="rgb16").pngsave_buffer()
    png, jpeg = render(rgba16, [spec("p", width=100, format="png"), spec("j", width=100)], 10**9)
    assert decode(png.data).format == "uchar"
    assert decode(png.data).bands == 4  # alpha kept where the format holds it
    assert decode(jpeg.data).bands == 3  # flattened for JPEG


def test_filters() -> None:
    data = sample_bytes(300, 300, "png", seed=7)
    plain, gray, inverted = render(
        data,
        [
            spec("plain", width=64, format="png"),
            spec("gray", width=64, format="png", filters=["grayscale"]),
            spec("inv", width=64, format="png", filters=[{"name": "invert", "stage": "before"}]),
        ],
        10**9,
    )
    assert decode(gray.data).bands == 1
    original, negative = decode(plain.data), decode(inverted.data)
    assert abs((original.avg() + negative.avg()) - 255) < 3


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"this is a text file, not a jpeg", "unknown format"),
        (sample_bytes(600, 400, "jpeg")[:3000], "premature end"),
    ],
)
def test_bad_sources_raise_a_clear_render_error(data: bytes, reason: str) -> None:
    with pytest.raises(RenderError, match=reason):
        render(data, [spec("t", width=100)], 10**9)


def test_pixel_limit_is_checked_from_the_header() -> None:
    data = sample_bytes(500, 400, "jpeg")
    with pytest.raises(
        ImageTooLarge, match="500x400 = 200,000 pixels, more than limits.max_pixels = 199,999"
    ):
        render(data, [spec("t", width=100)], 199_999)


def test_an_old_libvips_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from batchthumb import render as render_module
    from batchthumb.errors import BatchthumbError

    monkeypatch.setattr(render_module.pyvips, "version", lambda part: (8, 12, 2)[part])
    with pytest.raises(
        BatchthumbError, match=r"libvips 8\.12\.2 is too old: batchthumb needs 8\.15\.0 or later"
    ):
        render_module.check_libvips()


def test_another_threads_attribute_lookup_is_not_a_sources_reason() -> None:
    """libvips has one error buffer per process: pyvips' lookups of ``image.webpsave_buffer`` on
    other threads leave "no property named" lines in it, which are never why a source failed."""
    from batchthumb.render import _reason

    class Failure(Exception):
        detail = "image: no property named `webpsave_buffer'\ngifload_source: no frames in GIF\n"

    assert _reason(Failure()) == "gifload_source: no frames in GIF"

    class OnlyNoise(Exception):
        detail = "image: no property named `jpegsave_buffer'\n"
        message = "unable to call VipsForeignLoadGifSource"

    assert _reason(OnlyNoise()) == "unable to call VipsForeignLoadGifSource"
