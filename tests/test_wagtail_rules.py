"""Wagtail's rendition rules (``batchthumb.django.wagtail_rules``) against Wagtail itself.

Two kinds of checks: every rendition Wagtail 8.0.1 made in ``tests/wagtail/vectors.json`` (its
name, size, focal point key and format; names the storage changed, by a collision's random suffix
or a cut at 100 characters, are left out of the name check), and random cases (hypothesis,
1,000 each) compared with Wagtail's own code imported here: ``Filter.expand_spec``, the
operations' parsing, ``Filter.get_transform`` with Willow's crop clamp, ``Filter.get_cache_key``,
``generate_rendition_file`` and ``AbstractRendition.get_upload_to``.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from batchthumb.django import wagtail_rules as rules
from tests.django_in_process import configure

VECTORS = json.loads((Path(__file__).parent / "wagtail" / "vectors.json").read_text())["vectors"]
CONVERSIONS_8_0 = {"bmp": "png", "heic": "jpeg", "gif": "png"}
KIND_FORMATS = {"jpeg": "jpeg", "png": "png", "gif": "gif", "webp": "webp", "avif": "avif"}
THOUSAND = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _focal(vector: dict[str, Any]) -> rules.FocalPoint:
    return rules.FocalPoint(**vector["focal_point"]) if vector["focal_point"] else rules.FocalPoint()


@pytest.mark.parametrize("vector", VECTORS, ids=lambda v: f"{v['n']}-{v['spec']}")
def test_every_rendition_wagtail_made(vector: dict[str, Any]) -> None:
    spec = rules.clean_spec(vector["spec"])
    operations = rules.parse_spec(spec)
    focal = _focal(vector)
    key = rules.focal_point_key(operations, focal)
    plan = rules.transform(operations, tuple(vector["oriented"]), focal)
    original = KIND_FORMATS[vector["kind"].split("-")[0]]
    fmt = rules.output_format(operations, original, CONVERSIONS_8_0)
    assert key == vector["focal_point_key"]
    assert plan.size == (vector["width"], vector["height"])
    assert fmt == vector["format"]
    if vector["storage_changed_name"] is None:
        assert rules.rendition_name(vector["source"], spec, key, fmt) == vector["file"]


def test_the_vectors_cover_every_operation() -> None:
    used = {part.split("-")[0] for vector in VECTORS for part in vector["spec"].split("|")}
    assert used >= set(rules.OPERATIONS) - {"webpquality"} | {"avifquality"}
    assert len(VECTORS) == 74


def test_an_unknown_operation_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown operation 'blur'"):
        rules.parse_spec("width-400|blur-5")
    with pytest.raises(ValueError, match="'fill-300'"):
        rules.parse_spec("fill-300")


def test_preserve_svg_is_removed_and_braces_expand_left_outermost() -> None:
    assert rules.clean_spec("width-400|format-webp|preserve-svg") == "width-400|format-webp"
    assert rules.expand_spec("format-{avif,webp} width-{400,800}") == [
        "format-avif|width-400",
        "format-avif|width-800",
        "format-webp|width-400",
        "format-webp|width-800",
    ]


# -- random cases against Wagtail's own code -----------------------------------------------------

SIDES = st.integers(min_value=1, max_value=2000)


def _wagtail() -> Any:
    configure()
    from wagtail.images import models

    return models


class FakeImage(SimpleNamespace):
    """What ``Filter`` reads of an image: its size, its focal point columns, whether it is an SVG."""

    def is_svg(self) -> bool:
        return False

    def get_focal_point(self) -> Any:
        from wagtail.images.models import AbstractImage

        return AbstractImage.get_focal_point(self)  # type: ignore[arg-type]


def _image(size: tuple[int, int], focal: rules.FocalPoint, name: str = "original_images/a.jpg") -> FakeImage:
    return FakeImage(
        width=size[0],
        height=size[1],
        focal_point_x=focal.x,
        focal_point_y=focal.y,
        focal_point_width=focal.width,
        focal_point_height=focal.height,
        file=SimpleNamespace(name=name),
        pk=1,
    )


def _wagtail_plan(spec: str, size: tuple[int, int], focal: rules.FocalPoint) -> rules.Plan:
    models = _wagtail()
    found = models.Filter(spec=spec).get_transform(_image(size, focal), size)
    left, top, right, bottom = found.get_rect().round()
    crop = (max(0, left), max(0, top), min(right, size[0]), min(bottom, size[1]))  # Willow's crop clamps
    return rules.Plan(crop, tuple(found.size))


@st.composite
def focal_points(draw: Any, size: tuple[int, int]) -> rules.FocalPoint:
    kind = draw(st.sampled_from(["none", "inside", "large", "partial"]))
    if kind == "none":
        return rules.FocalPoint()
    width, height = size
    x, y = draw(st.integers(0, width)), draw(st.integers(0, height))
    if kind == "large":
        return rules.FocalPoint(x, y, draw(st.integers(1, 3 * width)), draw(st.integers(1, 3 * height)))
    point = rules.FocalPoint(x, y, draw(st.integers(1, width)), draw(st.integers(1, height)))
    if kind == "partial":
        return rules.FocalPoint(point.x, point.y, None, point.height)
    return point


TRANSFORMS = st.one_of(
    st.builds(lambda w, h, c: f"fill-{w}x{h}" + (f"-c{c}" if c is not None else ""), SIDES, SIDES,
              st.none() | st.integers(0, 150)),
    st.builds(lambda m, w, h: f"{m}-{w}x{h}", st.sampled_from(["min", "max"]), SIDES, SIDES),
    st.builds(lambda m, n: f"{m}-{n}", st.sampled_from(["width", "height"]), SIDES),
    st.builds(lambda p: f"scale-{p}", st.integers(1, 300) | st.sampled_from(["12.5", "33.3", "150.5"])),
    st.just("original"),
)  # fmt: skip
FILTERS = st.sampled_from(["format-webp", "format-jpeg", "jpegquality-70", "bgcolor-fff", "avifquality-60"])


@THOUSAND
@given(data=st.data(), width=SIDES, height=SIDES, chain=st.lists(TRANSFORMS, min_size=1, max_size=3))
@example(data=None, width=250, height=150, chain=["fill-300x200"])  # 226x150: fill never upscales
def test_geometry_is_wagtails(data: Any, width: int, height: int, chain: list[str]) -> None:
    focal = data.draw(focal_points((width, height))) if data is not None else rules.FocalPoint()
    spec = "|".join(chain)
    ours = rules.transform(rules.parse_spec(spec), (width, height), focal)
    assert ours == _wagtail_plan(spec, (width, height), focal)


@THOUSAND
@given(
    data=st.data(), width=SIDES, height=SIDES, chain=st.lists(TRANSFORMS | FILTERS, min_size=1, max_size=4)
)
def test_focal_point_keys_are_wagtails(data: Any, width: int, height: int, chain: list[str]) -> None:
    focal = data.draw(focal_points((width, height)))
    spec = "|".join(chain)
    theirs = _wagtail().Filter(spec=spec).get_cache_key(_image((width, height), focal))
    assert rules.focal_point_key(rules.parse_spec(spec), focal) == theirs


STEMS = st.text(alphabet="abcXYZ019_-. ", min_size=1, max_size=90)


@THOUSAND
@given(
    stem=STEMS,
    chain=st.lists(TRANSFORMS | FILTERS, min_size=1, max_size=5),
    fmt=st.sampled_from(["jpeg", "png", "webp", "avif", "gif"]),
    focal=st.sampled_from([rules.FocalPoint(), rules.FocalPoint(10, 20, 30, 40)]),
)
def test_names_are_wagtails(stem: str, chain: list[str], fmt: str, focal: rules.FocalPoint) -> None:
    models = _wagtail()
    from django.core.files.storage import Storage

    spec = "|".join(chain)
    source = f"original_images/{stem}.jpg"
    image = _image((100, 100), focal, source)
    wagtail_filter = models.Filter(spec=spec)

    def run(image: Any, output: Any, source: Any = None) -> Any:  # the name, not the pixels
        output.close()
        return SimpleNamespace(format_name=fmt, f=b"")

    wagtail_filter.run = run
    file = models.AbstractImage.generate_rendition_file(image, wagtail_filter)  # type: ignore[arg-type]
    rendition = SimpleNamespace(file=SimpleNamespace(field=SimpleNamespace(storage=Storage())))
    theirs = models.AbstractRendition.get_upload_to(rendition, file.name)  # type: ignore[arg-type]
    key = rules.focal_point_key(rules.parse_spec(spec), focal)
    assert rules.rendition_name(source, spec, key, fmt) == theirs


BRACED = st.builds(
    lambda prefix, options, suffix: prefix + "{" + ",".join(options) + "}" + suffix,
    st.sampled_from(["width-", "format-", "max-"]),
    st.lists(st.sampled_from(["100", "200", "webp", "avif", "300x300"]), min_size=1, max_size=3),
    st.sampled_from(["", "x200"]),
)
SEGMENT = st.sampled_from(["width-400", "fill-300x200", "format-webp", "original"]) | BRACED


@THOUSAND
@given(segments=st.lists(SEGMENT, min_size=1, max_size=4), separator=st.sampled_from([" ", "|"]))
def test_brace_expansion_is_wagtails(segments: list[str], separator: str) -> None:
    text = separator.join(segments)
    assert rules.expand_spec(text) == _wagtail().Filter.expand_spec(text)


PARTS = st.one_of(
    TRANSFORMS,
    FILTERS,
    st.sampled_from(["fill-300", "fill-300x200-x5", "width-abc", "jpegquality-101", "format-tiff"]),
    st.sampled_from(["bgcolor-ff", "scale-", "max-10x", "min-x10", "original-1", "width-1-2", "bgcolor-zzz"]),
)


@THOUSAND
@given(chain=st.lists(PARTS, min_size=1, max_size=3))
def test_what_is_refused_is_what_wagtail_refuses(chain: list[str]) -> None:
    from wagtail.images.exceptions import InvalidFilterSpecError

    spec = "|".join(chain)
    try:
        _wagtail().Filter(spec=spec).operations  # noqa: B018 (it parses them)
    except InvalidFilterSpecError:
        theirs = False
    else:
        theirs = True
    try:
        rules.parse_spec(spec)
    except ValueError:
        ours = False
    else:
        ours = True
    assert ours == theirs, spec


@pytest.mark.parametrize(
    ("version", "source", "expected_format", "jpeg", "avif"),
    [
        ("8.0", "webp", "webp", 76, 61),
        ("8.0", "avif", "avif", 76, 61),
        ("8.0", "gif", "png", 76, 61),
        ("7.4", "webp", "png", 76, 61),
        ("7.3", "avif", "png", 76, 61),
        ("7.2", "webp", "png", 85, 80),
        ("5.2", "jpeg", "jpeg", 85, 80),
    ],
)
def test_the_sites_version_decides_formats_and_qualities(
    version: str, source: str, expected_format: str, jpeg: int, avif: int
) -> None:
    """WAGTAIL-COMPAT.md §9: 8.0 keeps WebP and AVIF; 7.3 lowered JPEG 85 → 76 and AVIF 80 → 61."""
    from batchthumb.django.wagtail import WagtailSettings

    settings = WagtailSettings(version=version)
    operations = rules.parse_spec("width-400")
    assert rules.output_format(operations, source, settings.conversions()) == expected_format
    assert settings.qualities() == {"jpeg": jpeg, "webp": 80, "avif": avif}
    tuned = WagtailSettings(version=version, jpeg_quality=60, format_conversions={"webp": "jpeg"})
    assert rules.output_format(operations, "webp", tuned.conversions()) == "jpeg"
    assert rules.quality(operations, "jpeg", tuned.qualities()) == 60
    assert rules.quality(rules.parse_spec("width-400|jpegquality-40"), "jpeg", tuned.qualities()) == 40
