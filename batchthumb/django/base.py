"""The protocol every Django library's module implements, and what several of them share.

:class:`Library` holds what differs between the libraries batchthumb stands in for: the
rendering rules of their output, the settings their spec hash covers, the quality and format
they write for a source, their geometry, their names (object key, namespace, pattern, and what
a name says of its source), and how they name transparent output. A
:class:`~batchthumb.specs.RenditionSpec` holds one library object (for a preset rendition) and
each of its dispatching methods is a line. Library objects hold no state: they are pickled
into render worker processes with the specs.

Adding a library: one module here with a :class:`Library` subclass, and one line in
``batchthumb/django/__init__.py``'s registry.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import Field

from batchthumb.models import Frozen

if TYPE_CHECKING:
    from batchthumb.caches import SiteCache
    from batchthumb.database import Database
    from batchthumb.models import DjangoSettings, RenditionConfig
    from batchthumb.presets import Geometry
    from batchthumb.stores import Store

Format = Literal["jpeg", "png", "webp", "avif"]

PIL_QUALITY = 75
"""Pillow's JPEG and WebP quality when none is given (imagekit, and a quality sorl refuses)."""


class PresetRendition(Frozen):
    """A rendition a Django thumbnail library makes, written in that library's words."""

    column: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")] | None = None
    """A column of the source table (a ``FileField``) that gets the rendition's name."""

    if TYPE_CHECKING:
        preset: str
        """Each library's model has it: ``Literal["<its name>"]``, the registry's key."""


HEX_COLOUR = r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"


class RenditionSpec(Protocol):
    """What a library reads of a rendition spec (:class:`batchthumb.specs.RenditionSpec`, which
    this package never imports: the generic code calls the libraries, not the reverse)."""

    @property
    def preset(self) -> Any: ...
    @property
    def django(self) -> DjangoSettings | None: ...
    @property
    def config(self) -> RenditionConfig: ...
    @property
    def source_key(self) -> str | None: ...
    @property
    def ppoi(self) -> tuple[float, float]: ...
    @property
    def focal_text(self) -> str | None: ...

    def owns(self, object_key: str) -> bool: ...

    def for_name(self, source_key: str) -> RenditionSpec:
        """The same spec, resolved for this source's name (its options may depend on it)."""
        ...


@dataclass(frozen=True)
class Encoding:
    """How one output is written."""

    format: Format
    transparent: bool
    """Whether it keeps an alpha band (its name may say so)."""
    jpeg_alpha: Literal["flatten", "drop"]
    """What a JPEG does with an alpha band: composited onto the background, or dropped."""
    flatten: bool = False
    """Composited onto the background whatever the format (Wagtail's ``bgcolor``)."""
    progressive: bool = False
    """A progressive JPEG (Wagtail's)."""
    lossless: bool = False
    """Lossless WebP or AVIF (Wagtail's ``format-webp-lossless``)."""
    effort: int | None = None
    """The AVIF encoder's CPU effort (libvips' 0-9); ``None``: libvips' default."""


class DerivedSite(Protocol):
    """What a library's :meth:`Library.derive` is given (``batchthumb.django.site.Site``): the
    running site's source sets, and where its renditions, settings and refusals go."""

    sets: dict[str, Any]
    notes: list[str]

    def refuse(self, what: str, why: str) -> None: ...
    def setting(self, library: str, key: str, value: Any, origin: str) -> None: ...
    def image_sets(self, kind: type | tuple[type, ...] | None = None) -> list[Any]: ...
    def sets_named(self, target: str) -> list[Any]: ...
    def add_rendition(
        self, library: str, name: str, table: dict[str, Any], origin: str, sets: list[Any]
    ) -> str | None: ...
    def template_tags(self, names: set[str]) -> Iterator[Any]: ...
    def jinja_calls(self, names: set[str]) -> Iterator[tuple[str, str, list[str]]]: ...
    def python_calls(self, name: str) -> Iterator[tuple[str, Any]]: ...


class Library(ABC):
    """One Django thumbnail library, as far as batchthumb must reproduce it."""

    name: ClassVar[str]
    """The ``preset`` value that names it in a config."""
    rendition_model: ClassVar[type[PresetRendition]]
    """A ``[renditions.X]`` table with ``preset = <name>``, in the library's words."""
    settings_model: ClassVar[type[Frozen] | None] = None
    """Its ``[django.<name>]`` section: the site's settings its names and output depend on."""
    hashed_sections: ClassVar[frozenset[str]]
    """The ``[django]`` sections its spec hash covers (its own library's settings)."""
    unturned: ClassVar[bool] = False
    """Its output keeps a source as stored (no EXIF rotation): the hash carries that fix."""
    pillow_alpha: ClassVar[bool] = False
    """A source has an alpha band only where Pillow gives it one (the output's name says so)."""
    keeps_up_with_source: ClassVar[bool] = False
    """It serves a file on disk only while it is not older than its source."""
    unhashed_settings: ClassVar[dict[str, frozenset[str]]] = {}
    """Settings of its sections that change no output nor name: never in a hash."""

    django_app: ClassVar[str]
    """Its Django app (``"sorl.thumbnail"``): a site derives its renditions when it is installed."""

    def installed(self, apps: Any) -> bool:
        """Whether the running site has it (``django.apps.apps``)."""
        return bool(apps.is_installed(self.django_app))

    @abstractmethod
    def derive(self, site: DerivedSite) -> None:
        """Add what the running site asks of it (its settings, fields, templates) to ``site``:
        renditions, its ``[django.<name>]`` section, and a refusal for whatever does not map
        (``manage.py batchthumb``; Django is set up)."""

    def rendition_fields(self) -> tuple[type, ...]:
        """Model field classes that hold its renditions, not sources (an ``ImageField`` subclass)."""
        return ()

    def variants(self, name: str, preset: Any) -> list[tuple[str, Any]]:
        """The renditions one configured rendition stands for, each with its name and its own
        preset (Wagtail's brace sets: one per filter spec); most libraries: itself."""
        return [(name, preset)]

    def focal(self, ppoi: str | None) -> tuple[float, float]:
        """A source's focal point column as the library reads it, as fractions (``ValueError``:
        not one); a library that reads it itself (Wagtail's pixels) has it as ``focal_text``."""
        from batchthumb import presets

        return presets.parse_ppoi(ppoi)

    def skips(self, spec: RenditionSpec, source_key: str) -> str | None:
        """Why it makes no rendition of this source at all (Wagtail serves an SVG as it is), or
        ``None``: the run reports the source as skipped, not failed."""
        return None

    def site_cache(self, django: DjangoSettings) -> tuple[str, str, int] | None:
        """The site's shared cache it reads its rows through (URL, key prefix, version), if the
        config names one: a run deletes the keys of the rows it changes there."""
        return None

    @abstractmethod
    def rendering(self, preset: Any, django: DjangoSettings) -> RenditionConfig:
        """The rendering rules its output follows (sizes come from its geometry)."""

    @abstractmethod
    def quality(self, spec: RenditionSpec, fmt: Format) -> int:
        """The quality it writes this format at."""

    @abstractmethod
    def format_for(self, spec: RenditionSpec, source_key: str) -> Format:
        """The format it writes for this source."""

    @abstractmethod
    def geometry(self, spec: RenditionSpec, width: int, height: int) -> Geometry | None:
        """Its output for an upright (or stored, without autorotate) source of this size."""

    @abstractmethod
    def object_key(self, spec: RenditionSpec, source_key: str, ppoi: str | None, transparent: bool) -> str:
        """The name it looks for, at the storage root."""

    @abstractmethod
    def namespace(self, spec: RenditionSpec) -> str:
        """The prefix under which its objects live."""

    @abstractmethod
    def pattern(self, spec: RenditionSpec) -> str:
        """A regular expression every name of this rendition matches (and nothing of a source's)."""

    # -- with defaults ------------------------------------------------------------------------

    def owns(self, spec: RenditionSpec, object_key: str) -> bool:
        return re.fullmatch(self.pattern(spec), object_key) is not None

    def crops_about_focal(self, spec: RenditionSpec) -> bool:
        """Whether its output depends on the source's focal point (its PPOI)."""
        return False

    def encoding(self, spec: RenditionSpec, alpha: bool, geometry: Geometry | None) -> Encoding:
        """How an output with (or without) an alpha band is written."""
        return Encoding(spec.config.format, False, spec.config.jpeg_alpha)

    def candidate_keys(self, spec: RenditionSpec, source_key: str, ppoi: str | None) -> list[str]:
        """Every name this rendition of the source may have."""
        return [self.object_key(spec, source_key, ppoi, False)]

    def derived_source(
        self, spec: RenditionSpec, object_key: str
    ) -> tuple[Literal["stem", "compact"], str] | None:
        """For a library that keeps no metadata, which source a name is of (see ``specs``)."""
        return None

    def metadata(
        self,
        db: Database,
        django: DjangoSettings,
        specs: Sequence[RenditionSpec],
        target: Store | None,
        cache: SiteCache | None,
    ) -> LibraryStore | None:
        """What it keeps besides the file (rows in the site's database), for these renditions
        (``target``: the storage root, where it may look at the files themselves; ``cache``: the
        site's shared cache); ``None``: nothing."""
        return None


@dataclass(frozen=True)
class Written:
    """A rendition stored and recorded: what the library's metadata says of it."""

    spec: RenditionSpec
    source_key: str
    source_size: tuple[int, int]
    """The source as decoded, before EXIF rotation (sorl records it so)."""
    object_key: str
    size: tuple[int, int]
    """The size written."""
    read_at: datetime | None = None
    """When the source version it shows was read: easy-thumbnails' ``modified`` (``None``: now)."""
    row_key: str | None = None
    """The source row's key (Wagtail's ``image_id``)."""
    ppoi: str | None = None
    """The source's focal point columns, as planned (Wagtail's ``focal_point_key``)."""
    replaces: str | None = None
    """The name this rendition had before, where the registry had one."""


@dataclass(frozen=True)
class Gone:
    """An object a purge deleted, with its source when the registry knew it."""

    object_key: str
    source_key: str | None


class LibraryStore(Protocol):
    """One library's metadata: checked, written, forgotten, read for ``adopt``."""

    async def check(self) -> None: ...

    def owns(self, object_key: str) -> bool: ...

    async def record(self, written: Sequence[Written]) -> dict[str, str] | None:
        """Write the rows; a library whose rows are insert-only returns the names it did not
        record because a row of the site's names another object (ours → the site's)."""
        ...

    async def forget(self, gone: Sequence[Gone]) -> None: ...

    async def in_use(self, names: Sequence[str]) -> dict[str, str | None]: ...

    async def adoptable(self, found: Sequence[tuple[str, str]]) -> dict[str, tuple[int, int]]: ...


@runtime_checkable
class DeleteNotes(Protocol):
    """A library whose site may go on serving rows a run deleted (Wagtail's renditions cache)."""

    def after_deletes(self) -> str | None:
        """What the run's summary says about the rows it deleted, if any were."""
        ...


@runtime_checkable
class NameClaims(Protocol):
    """A library whose names may be taken by another row (Wagtail's): each rendition's name is
    claimed before its object is written, and may come back changed."""

    async def claim(self, wanted: Sequence[Written]) -> list[str]: ...


def kept_format(library: str, source_key: str) -> Format:
    """The source's format (by its extension), for a library that keeps it; refused where
    batchthumb does not write it."""
    from batchthumb import presets
    from batchthumb.errors import RenderError

    kept = presets.source_format(source_key)
    if kept not in presets.BATCHTHUMB_FORMATS:
        raise RenderError(
            f"{library} keeps the source's format ({kept or 'unknown, by its extension'}), "
            "which batchthumb does not write (JPEG, PNG and WebP only)"
        )
    return presets.BATCHTHUMB_FORMATS[kept]


def ppoi_or_centre(ppoi: str | None) -> tuple[float, float]:
    """The PPOI for a name; one that does not parse fails in ``RenditionSpec.for_source``."""
    from batchthumb import presets

    try:
        return presets.parse_ppoi(ppoi)
    except ValueError:
        return (0.5, 0.5)


def hex_colour(text: str) -> tuple[int, int, int]:
    """``#rgb`` or ``#rrggbb`` as a tuple."""
    digits = text.lstrip("#")
    if len(digits) == 3:
        digits = "".join(digit * 2 for digit in digits)
    red, green, blue = bytes.fromhex(digits)
    return (red, green, blue)
