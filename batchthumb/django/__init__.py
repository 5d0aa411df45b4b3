"""The Django libraries batchthumb stands in for, one module each, registered by name.

Each module holds what its library does (rendering rules, hashed settings, quality, format,
geometry, names); :class:`~batchthumb.django.base.Library` is the protocol the generic code
(``specs.py``) calls. A new library is one module and one line below.
"""

from __future__ import annotations

from batchthumb.django.advance_thumbnail import AdvanceThumbnail
from batchthumb.django.base import Library
from batchthumb.django.easy_thumbnails import EasyThumbnails
from batchthumb.django.imagekit import Imagekit
from batchthumb.django.sorl import Sorl
from batchthumb.django.versatileimagefield import VersatileImageField
from batchthumb.django.wagtail import Wagtail

LIBRARIES: dict[str, Library] = {
    library.name: library
    for library in (
        AdvanceThumbnail(),
        VersatileImageField(),
        Imagekit(),
        Sorl(),
        EasyThumbnails(),
        Wagtail(),
    )
}
"""The libraries by the ``preset`` value that names them in a config."""


def library(preset: str) -> Library:
    """The library a preset rendition names."""
    return LIBRARIES[preset]


__all__ = ["LIBRARIES", "Library", "library"]
