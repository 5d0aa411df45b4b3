"""``manage.py batchthumb config``'s TOML: it loads to what the site runs with, ``settings.BATCHTHUMB``
laid over what is derived, whatever tables the overlay touches."""

from __future__ import annotations

import json
import tomllib
from typing import Any

import pytest

from batchthumb.config import config_from_dict
from batchthumb.django.site import Rendition, Site, SourceSet, merged


def site() -> Site:
    derived = Site(
        database={"dsn": "postgresql://app@db:5432/app"},
        database_origin="DATABASES['default']",
        store={"url": "file:///srv/media/"},
        store_origin="MEDIA_ROOT",
    )
    table = {
        "name": "gallery-photo-image",
        "table": "gallery_photo",
        "key_column": "id",
        "path_column": "image",
    }
    derived.sets["gallery.Photo.image"] = SourceSet(None, None, table, "gallery.Photo.image")  # type: ignore[arg-type]
    derived.renditions["fill"] = Rendition(
        {"preset": "wagtail", "spec": "fill-300x200"}, ["templates/list.html:3"], ["gallery-photo-image"]
    )
    derived.sections["wagtail"] = {"version": ("8.0", "wagtail.VERSION"), "jpeg_quality": (85, "default")}
    return derived


def normal(value: Any) -> Any:
    return json.loads(json.dumps(value))  # tuples as lists, as TOML reads them


OVERLAYS = [
    {},
    {"limits": {"render_workers": 4, "memory": "1GiB"}},
    {"django": {"wagtail": {"cache": "redis://cache:6379/1", "version": "7.3"}}},
    {"renditions": {"fill": {"spec": "fill-320x200"}, "extra": {"preset": "wagtail", "spec": "width-400"}}},
    {"database": {"pool_size": 8}, "stores": {"source": {"region": "eu-west-1"}}},
    {"cdn": {"public_base_url": "https://cdn.example.com/"}, "uploads": {"prefix": "original_images/"}},
    {
        "sources": [
            {"name": "photos", "table": "gallery_photo", "path_column": "image", "renditions": ["fill"]}
        ]
    },
]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=[",".join(o) or "none" for o in OVERLAYS])
def test_the_printed_config_loads_to_the_one_the_site_runs_with(overlay: dict[str, Any]) -> None:
    derived = site()
    text = derived.toml(overlay)
    assert tomllib.loads(text) == normal(merged(derived.config_data(), overlay)), text
    config_from_dict(tomllib.loads(text), environ={})  # and it validates
    for key in overlay:
        assert f"settings.BATCHTHUMB['{key}']" in text  # each overlaid entry says where it came from
