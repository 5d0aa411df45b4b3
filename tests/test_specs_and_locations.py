from __future__ import annotations

import pytest

from batchthumb.config import RenditionConfig
from batchthumb.location import StoreLocation
from batchthumb.specs import RenditionSpec, spec_hash


def test_spec_hash_changes_with_every_output_field() -> None:
    base = RenditionConfig(width=300, height=200)
    variants = [
        {"width": 301},
        {"height": 201},
        {"mode": "crop"},
        {"mode": "fill"},
        {"gravity": "attention"},
        {"format": "webp"},
        {"quality": 81},
        {"filters": ["grayscale"]},
        {"strip_metadata": False},
        {"upscale": True},
        {"background": (0, 0, 0)},
    ]
    hashes = {spec_hash(base)}
    for change in variants:
        hashes.add(
            spec_hash(
                base.model_copy(update=change)
                if "filters" not in change
                else RenditionConfig(width=300, height=200, **change)
            )
        )
    assert len(hashes) == len(variants) + 1


def test_spec_hash_is_stable_and_ignores_spelling() -> None:
    # defaults filled in: an explicit default hashes like an omitted one
    assert spec_hash(RenditionConfig(width=300)) == spec_hash(RenditionConfig(width=300, quality=80))
    assert spec_hash(RenditionConfig(width=300)) == spec_hash(RenditionConfig(width=300))


def test_object_key_is_deterministic_and_distinct() -> None:
    spec = RenditionSpec.from_config("thumb", RenditionConfig(width=100, format="webp"))
    key = spec.object_key("photos", "images/a.jpg")
    assert key == f"photos/thumb/{spec.spec_hash}/images/a.jpg.webp"
    assert spec.object_key("photos", "images/a.png") != key


@pytest.mark.parametrize(
    ("url", "scheme", "root", "prefix"),
    [
        ("s3://media/renditions", "s3", "media", "renditions/"),
        ("s3://media/", "s3", "media", ""),
        ("file:///srv/media/", "file", "/srv/media", ""),
    ],
)
def test_parse_locations(url: str, scheme: str, root: str, prefix: str) -> None:
    location = StoreLocation.parse(url)
    assert (location.scheme, location.root, location.prefix) == (scheme, root, prefix)


@pytest.mark.parametrize(
    "url", ["http://x/", "s3:///nobucket", "file://host/x", "file://relative", "s3://b/../x/"]
)
def test_bad_locations(url: str) -> None:
    with pytest.raises(ValueError):
        StoreLocation.parse(url)


def test_target_inside_source_refuses_source_keys_under_it() -> None:
    source = StoreLocation.parse("s3://media/")
    target = StoreLocation.parse("s3://media/renditions/")
    target.check_target_against(source)  # allowed: a purge of the target never reaches media/images/
    assert target.holds_source_key(source, "renditions/x.jpg")
    assert not target.holds_source_key(source, "images/x.jpg")
    other = StoreLocation.parse("s3://other/renditions/")
    assert not other.holds_source_key(source, "renditions/x.jpg")
