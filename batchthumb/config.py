"""Configuration: a TOML file plus ``BATCHTHUMB_*`` environment overrides, validated once.

Every setting can come from the environment: ``BATCHTHUMB_DATABASE__DSN`` sets
``database.dsn``, ``BATCHTHUMB_RENDITIONS__THUMB__WIDTH`` sets
``renditions.thumb.width`` and ``BATCHTHUMB_SOURCES__0__FILTER`` sets the filter of
the first source set. Values are read as TOML values where they parse as one
(``400``, ``true``, ``[1, 2]``) and as plain strings otherwise. Only variables with
a ``__`` take part, so ``BATCHTHUMB_CONFIG`` and the like are left alone.

The result is frozen. Errors name the file (or the variable) and the key, and
exit with status 2. Secrets (the DSN's password, S3 keys) are ``SecretStr`` and
never printed.
"""

from __future__ import annotations

import copy
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)

from batchthumb.errors import ConfigError
from batchthumb.location import StoreLocation
from batchthumb.presets import sorl_crop_offsets
from batchthumb.resources import ContainerLimits, parse_bytes

ENV_PREFIX = "BATCHTHUMB_"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatabaseConfig(_Frozen):
    dsn: SecretStr
    """A libpq-style URL: ``postgresql://user:password@host:5432/db``."""
    registry_schema: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "batchthumb"
    connect_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    pool_size: Annotated[int, Field(ge=2, le=100)] = 4

    def redacted_dsn(self) -> str:
        """The DSN with its password replaced by ``***``, safe to print."""
        return redact_url(self.dsn.get_secret_value())


class StoreConfig(_Frozen):
    url: str
    """``s3://bucket/prefix/`` or ``file:///absolute/dir/``."""
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None
    session_token: SecretStr | None = None
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    max_attempts: Annotated[int, Field(ge=1, le=20)] = 5
    """botocore's standard retry mode: attempts per request, with backoff and jitter."""
    timeout_s: Annotated[float, Field(gt=0, le=600)] = 60.0
    """Connect and read timeout of one request; a timed-out request is retried."""
    checksums: Literal["when_required", "when_supported"] = "when_required"
    """botocore's flexible checksums (CRC32 of every body, both ways). ``when_supported`` is
    botocore's default since 1.36, which several S3-compatible servers reject and which costs
    CPU on every object; HTTPS already protects the bytes in transit."""

    @field_validator("url")
    @classmethod
    def _parse_url(cls, value: str) -> str:
        StoreLocation.parse(value)  # raises ValueError with the reason
        return value

    @property
    def location(self) -> StoreLocation:
        return StoreLocation.parse(self.url)


class StoresConfig(_Frozen):
    source: StoreConfig
    target: StoreConfig
    """Where renditions go. A drop-in config (preset renditions) may leave it out: its target
    is the source store's root, where the Django libraries write."""

    @model_validator(mode="before")
    @classmethod
    def _target_defaults_to_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and "target" not in data and "source" in data:
            return {**data, "target": data["source"]}
        return data


Filter = Literal["grayscale", "invert", "blur", "sharpen"]
Side = Annotated[int, Field(gt=0, le=10_000)]


class FilterConfig(_Frozen):
    name: Filter
    stage: Literal["before", "after"] = "after"
    """Applied to the decoded source before resizing, or to the resized rendition."""
    sigma: Annotated[float, Field(gt=0, le=100)] = 1.0
    """Strength of ``blur`` and ``sharpen``; ignored by the others."""


class RenditionConfig(_Frozen):
    mode: Literal["fit", "crop", "fill"] = "fit"
    width: Annotated[int, Field(gt=0, le=20_000)] | None = None
    height: Annotated[int, Field(gt=0, le=20_000)] | None = None
    gravity: Literal["centre", "north", "south", "east", "west", "attention", "entropy"] = "centre"
    format: Literal["jpeg", "png", "webp", "avif"] = "jpeg"
    quality: Annotated[int, Field(ge=1, le=100)] = 80
    filters: tuple[FilterConfig, ...] = ()
    strip_metadata: bool = True
    upscale: bool = False
    background: tuple[int, int, int] = (255, 255, 255)
    """Padding colour of ``fill`` and the colour alpha is flattened onto for JPEG."""
    jpeg_alpha: Literal["flatten", "drop"] = "flatten"
    """A source with alpha, written as JPEG: composited onto ``background``, or its alpha
    dropped (the colour under transparent pixels shows: sorl-thumbnail's default)."""
    autorotate: bool | Literal["jpeg-rotations"] = True
    """Turn the source upright by its EXIF orientation first. ``false``: never (django-imagekit);
    ``"jpeg-rotations"``: only JPEGs, only orientations 3, 6 and 8 (django-versatileimagefield)."""
    widths: tuple[Annotated[int, Field(gt=0, le=20_000)], ...] | None = None
    """A width set (``[320, 640, 1280]``): one variant per width, every one from the same
    decode, in place of ``width``. A width the source cannot give without upscaling collapses
    into one variant at the largest width it can (written once)."""
    formats: tuple[Literal["jpeg", "png", "webp", "avif"], ...] | None = None
    """One variant per format (``["avif", "webp", "jpeg"]``), in place of ``format``."""
    aspect_ratio: tuple[Side, Side] | None = None
    """``crop`` and ``fill`` with ``widths``: the box's shape (``"16:9"`` or ``[16, 9]``); each
    variant's height follows from its width."""

    @field_validator("filters", mode="before")
    @classmethod
    def _filter_shorthand(cls, value: Any) -> Any:
        # `filters = ["grayscale", {name = "blur", sigma = 2}]`
        if isinstance(value, list | tuple):
            return [{"name": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("background")
    @classmethod
    def _byte_range(cls, value: tuple[int, int, int]) -> tuple[int, int, int]:
        if any(not 0 <= channel <= 255 for channel in value):
            raise ValueError("each channel must be between 0 and 255")
        return value

    @field_validator("aspect_ratio", mode="before")
    @classmethod
    def _ratio_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = re.fullmatch(r"\s*(\d+)\s*[:x/]\s*(\d+)\s*", value)
            if match is None:
                raise ValueError(f"{value!r} is not a ratio like '16:9'")
            return (int(match.group(1)), int(match.group(2)))
        return value

    @field_validator("widths", "formats")
    @classmethod
    def _distinct(cls, value: tuple[Any, ...] | None) -> tuple[Any, ...] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("must list at least one, or be left out")
        if len(set(value)) != len(value):
            raise ValueError("lists one twice")
        return value

    @model_validator(mode="after")
    def _geometry(self) -> RenditionConfig:
        if self.widths is not None:
            if self.width is not None or self.height is not None:
                raise ValueError("give widths or width and height, not both")
            if self.mode in ("crop", "fill") and self.aspect_ratio is None:
                raise ValueError(f'mode {self.mode!r} with widths needs an aspect_ratio (e.g. "16:9")')
            if self.mode == "fit" and self.aspect_ratio is not None:
                raise ValueError("aspect_ratio applies to crop and fill: a fit keeps the source's")
            return self
        if self.aspect_ratio is not None:
            raise ValueError("aspect_ratio goes with widths (width and height already give the shape)")
        if self.width is None and self.height is None:
            raise ValueError("a rendition needs a width, a height or both")
        if self.mode in ("crop", "fill") and (self.width is None or self.height is None):
            raise ValueError(f"mode {self.mode!r} needs both width and height")
        return self


class PresetRendition(_Frozen):
    """A rendition a Django thumbnail library makes, written in that library's words."""

    column: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_$]{0,62}$")] | None = None
    """A column of the source table (a ``FileField``) that gets the rendition's name."""


class AdvanceThumbnailRendition(PresetRendition):
    """``AdvanceThumbnailField(source_field="image", upload_to=..., size=..., resize_method=...)``."""

    preset: Literal["django_advance_thumbnail"]
    upload_to: Annotated[str, Field(min_length=1)]
    size: tuple[Annotated[int, Field(gt=0, le=20_000)], Annotated[int, Field(gt=0, le=20_000)]] = (300, 300)
    resize_method: Literal["fit", "fill", "cover"] = "fit"

    @field_validator("upload_to")
    @classmethod
    def _plain_directory(cls, value: str) -> str:
        if "%" in value:
            raise ValueError("an upload_to with strftime patterns names files by the date: not supported")
        if value.startswith("/") or ".." in value.split("/"):
            raise ValueError("upload_to must be a relative directory without '..'")
        return value


class VersatileImageRendition(PresetRendition):
    """``image.thumbnail['300x300']`` or ``image.crop['300x300']`` of a ``VersatileImageField``."""

    preset: Literal["versatileimagefield"]
    sizer: Literal["thumbnail", "crop"]
    size: Annotated[str, Field(pattern=r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$")]

    @property
    def box(self) -> tuple[int, int]:
        width, height = self.size.split("x")
        return int(width), int(height)


class ImagekitProcessor(_Frozen):
    """One of pilkit's resize processors, with its arguments: ``ResizeToFit(300, 300)``."""

    processor: Literal["ResizeToFit", "ResizeToFill", "SmartResize", "Thumbnail"]
    width: Annotated[int, Field(gt=0, le=20_000)] | None = None
    height: Annotated[int, Field(gt=0, le=20_000)] | None = None
    upscale: bool | None = None
    """pilkit's default when absent: ``True``, but ``None`` for ``Thumbnail``."""
    anchor: (
        Literal["c", "t", "b", "l", "r", "tl", "tr", "bl", "br", "auto"]
        | tuple[Annotated[int | float, Field(ge=0, le=1)], Annotated[int | float, Field(ge=0, le=1)]]
        | None
    ) = None
    """pilkit's ``Anchor`` (``"tl"`` is ``Anchor.TOP_LEFT``) or ``(x, y)`` fractions, as written:
    the name hashes the value itself; ``"auto"`` (``Thumbnail`` only) crops by entropy."""
    crop: bool | None = None
    """``Thumbnail`` only."""

    @model_validator(mode="after")
    def _arguments(self) -> ImagekitProcessor:
        if self.width is None and self.height is None:
            raise ValueError(f"{self.processor} needs a width, a height or both")
        both = self.width is not None and self.height is not None
        if self.processor in ("ResizeToFill", "SmartResize") and not both:
            raise ValueError(f"{self.processor} needs both width and height")
        if self.processor != "Thumbnail" and self.crop is not None:
            raise ValueError("crop is an argument of Thumbnail only")
        if self.processor == "SmartResize" and self.anchor is not None:
            raise ValueError("SmartResize takes no anchor")
        if self.anchor == "auto" and self.processor != "Thumbnail":
            raise ValueError("anchor 'auto' is an argument of Thumbnail only")
        if self.processor == "Thumbnail" and self.anchor and self.crop is False:
            raise ValueError("Thumbnail takes no anchor when crop is false (pilkit refuses it)")
        return self


class ImagekitRendition(PresetRendition):
    """``ImageSpecField(source="image", processors=[...], format=..., options=...)``."""

    preset: Literal["imagekit"]
    processors: Annotated[tuple[ImagekitProcessor, ...], Field(min_length=1, max_length=1)]
    format: Literal["JPEG", "PNG", "WEBP"] | None = None
    """The spec's ``format``; absent: the source's format, as imagekit keeps it."""
    options: dict[str, int | float | str | bool] | None = None
    """The spec's ``options``: ``{quality = 85}``. Absent is not ``{}``: imagekit hashes ``None``."""
    autoconvert: bool = True


SORL_OPTIONS = ("crop", "quality", "format", "upscale", "padding", "padding_color", "colorspace")
"""The template options batchthumb renders as sorl does; others (``rounded``, ``blur``,
``cropbox``, ...) are refused rather than named right and drawn wrong."""


class SorlRendition(PresetRendition):
    """``{% thumbnail image "300x300" crop="center" quality=85 %}`` / ``get_thumbnail(...)``."""

    preset: Literal["sorl"]
    geometry: Annotated[str, Field(pattern=r"^([1-9][0-9]{0,4}(x[1-9][0-9]{0,4})?|x[1-9][0-9]{0,4})$")]
    """The geometry string as the template writes it: ``"300x300"``, ``"300"``, ``"x300"``."""
    options: dict[str, int | bool | str] = Field(default_factory=dict)
    """The template's options as written (``quality = 85`` and ``quality = "85"`` name different files)."""

    @field_validator("options")
    @classmethod
    def _supported(cls, options: dict[str, int | bool | str]) -> dict[str, int | bool | str]:
        for key, value in options.items():
            if key not in SORL_OPTIONS:
                supported = ", ".join(SORL_OPTIONS)
                raise ValueError(f"sorl option {key!r} is not supported (supported: {supported})")
            if key == "format" and value not in ("JPEG", "PNG", "WEBP"):
                raise ValueError("format must be 'JPEG', 'PNG' or 'WEBP'")
            if key == "colorspace" and value != "RGB":
                raise ValueError("only colorspace 'RGB' is supported")
            if key == "crop" and isinstance(value, str) and value != "noop" and value != "smart":
                sorl_crop_offsets(value, (2, 2), (1, 1))  # raises on what sorl would refuse
        return options


EASY_CROP = r"^[-A-Za-z0-9,]+$"
"""``crop``: ``"smart"``, ``"scale"``, edge offsets ``",0"`` / ``"-10,-0"`` (another word crops
around the centre, as easy-thumbnails does; the name keeps the word)."""
HEX_COLOUR = r"^#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})$"


class EasyThumbnailsRendition(PresetRendition):
    """An easy-thumbnails alias: ``THUMBNAIL_ALIASES = {"": {"fit": {"size": (300, 300), ...}}}``.

    Options as the alias writes them; those batchthumb does not render as easy-thumbnails
    does (``bw``, ``sharpen``, ``autocrop``, ``subsampling``, ...) are refused rather than
    named right and drawn wrong.
    """

    preset: Literal["easy_thumbnails"]
    size: tuple[Annotated[int, Field(ge=0, le=20_000)], Annotated[int, Field(ge=0, le=20_000)]]
    """``size``: ``(300, 300)``; a 0 follows the source's aspect (``(300, 0)``)."""
    crop: bool | Annotated[str, Field(pattern=EASY_CROP)] = False
    upscale: bool = False
    quality: Annotated[int, Field(ge=1, le=100)] | None = None
    """Absent: ``THUMBNAIL_QUALITY``."""
    zoom: Annotated[int, Field(ge=0, le=1000)] | None = None
    target: (
        Annotated[str, Field(pattern=r"^(\d+)?,(\d+)?$")]
        | tuple[Annotated[int, Field(ge=0, le=100)], Annotated[int, Field(ge=0, le=100)]]
        | None
    ) = None
    """The focal point a crop keeps centred, in percent: ``"10,20"`` or ``[10, 20]``."""
    background: Annotated[str, Field(pattern=HEX_COLOUR)] | None = None
    """Pads a smaller result to ``size`` on this colour (``"#fff"``)."""

    @model_validator(mode="after")
    def _size(self) -> EasyThumbnailsRendition:
        if not any(self.size):
            raise ValueError("size needs a width, a height or both (easy-thumbnails refuses (0, 0))")
        return self

    def alias_options(self) -> dict[str, Any]:
        """The alias's options as easy-thumbnails reads them (what was left out, left out)."""
        options = self.model_dump(mode="python", exclude={"preset", "column"}, exclude_none=True)
        return {key: value for key, value in options.items() if value is not False}


class EasyThumbnailsSettings(_Frozen):
    """easy-thumbnails' settings, as far as names, rows and output depend on them."""

    basedir: Annotated[str, Field(pattern=r"^([A-Za-z0-9_][A-Za-z0-9_./-]*)?$")] = ""
    """``THUMBNAIL_BASEDIR`` (``%(opts)s`` patterns are not supported)."""
    subdir: Annotated[str, Field(pattern=r"^([A-Za-z0-9_][A-Za-z0-9_./-]*)?$")] = ""
    """``THUMBNAIL_SUBDIR``."""
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]*$")] = ""
    """``THUMBNAIL_PREFIX``."""
    quality: Annotated[int, Field(ge=1, le=100)] = 85
    """``THUMBNAIL_QUALITY``."""
    extension: Literal["jpg", "jpeg", "png", "webp"] = "jpg"
    """``THUMBNAIL_EXTENSION``: the format of every thumbnail without transparency."""
    transparency_extension: Literal["jpg", "jpeg", "png", "webp"] = "png"
    """``THUMBNAIL_TRANSPARENCY_EXTENSION``."""
    preserve_extensions: bool | tuple[Annotated[str, Field(pattern=r"^[a-z0-9]+$")], ...] = ()
    """``THUMBNAIL_PRESERVE_EXTENSIONS``: ``true``, or the source extensions kept (``["png"]``)."""
    storage: Annotated[str, Field(min_length=1)] = "django.core.files.storage.filesystem.FileSystemStorage"
    """The class path of the sources' storage (``STORAGES["default"]``'s ``BACKEND``): its md5
    is the sources' ``storage_hash``."""
    thumbnail_storage: Annotated[str, Field(min_length=1)] | None = None
    """The class path of ``STORAGES["easy_thumbnails"]``, where the site has that alias (the
    thumbnails' ``storage_hash``); absent: the sources' storage."""
    cache_dimensions: bool = False
    """``THUMBNAIL_CACHE_DIMENSIONS``: a ``thumbnaildimensions`` row per thumbnail."""
    source_table: str = "easy_thumbnails_source"
    thumbnail_table: str = "easy_thumbnails_thumbnail"
    dimensions_table: str = "easy_thumbnails_thumbnaildimensions"

    @property
    def thumbnail_storage_class(self) -> str:
        return self.thumbnail_storage or self.storage


class SorlSettings(_Frozen):
    """sorl-thumbnail's settings, as far as names, rows and output depend on them."""

    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*/$")] = "cache/"
    """``THUMBNAIL_PREFIX``."""
    format: Literal["JPEG", "PNG", "WEBP"] = "JPEG"
    """``THUMBNAIL_FORMAT``."""
    preserve_format: bool = False
    """``THUMBNAIL_PRESERVE_FORMAT``: the source's format (by its extension) instead."""
    quality: Annotated[int, Field(ge=1, le=100)] = 95
    """``THUMBNAIL_QUALITY``."""
    upscale: bool = True
    """``THUMBNAIL_UPSCALE``."""
    padding: bool = False
    """``THUMBNAIL_PADDING``."""
    padding_color: Annotated[str, Field(pattern=HEX_COLOUR)] = "#ffffff"
    """``THUMBNAIL_PADDING_COLOR``."""
    flatten: bool = False
    """``THUMBNAIL_FLATTEN``: a transparent source written as JPEG is composited onto white
    (or the padding colour); without it, its alpha is dropped."""
    storage: Annotated[str, Field(min_length=1)] = "django.core.files.storage.filesystem.FileSystemStorage"
    """The class path of the storage the sources and thumbnails live on (``STORAGES["default"]``'s
    ``BACKEND``; ``storages.backends.s3.S3Storage`` on S3): it is hashed into every name."""
    storage_alias: Annotated[str, Field(min_length=1)] = "default"
    """What the key value rows name as their storage: the ``STORAGES`` alias."""
    key_prefix: Annotated[str, Field(pattern=r"^[^|%_]+$")] = "sorl-thumbnail"
    """``THUMBNAIL_KEY_PREFIX``."""
    kvstore_table: str = "thumbnail_kvstore"
    """The key value store's table (sorl's model ``KVStore``), in the sources' database."""
    key_column: str = "key"
    """``THUMBNAIL_KEY_DBCOLUMN``."""
    cache: SecretStr | None = None
    """The site's shared cache that sorl's ``cached_db`` key value store reads through
    (``CACHES[THUMBNAIL_CACHE]``, else ``CACHES["default"]``), as a Redis URL
    (``redis://cache:6379/0``; credentials in it stay secret): the keys of every row a run
    writes or deletes are deleted there, as sorl deletes them. Without it, a site whose cache
    is shared keeps serving what the cache holds (ten years by default). Not in the spec hash."""
    cache_key_prefix: str = ""
    """That cache's ``KEY_PREFIX``."""
    cache_version: int = 1
    """That cache's ``VERSION``."""

    @field_validator("cache")
    @classmethod
    def _redis_only(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None:
            scheme = value.get_secret_value().partition("://")[0]
            if scheme not in ("redis", "rediss", "unix"):
                raise ValueError(
                    f"{scheme!r}: only a Redis cache can be reached from outside the site "
                    "(redis://host:6379/0); a LocMemCache lives inside each web process"
                )
        return value


class VersatileImageSettings(_Frozen):
    """``VERSATILEIMAGEFIELD_SETTINGS`` as far as names depend on it."""

    jpeg_resize_quality: Annotated[int, Field(ge=1, le=100)] = 70
    webp_resize_quality: Annotated[int, Field(ge=1, le=100)] = 70
    sized_directory_name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")] = "__sized__"


class ImagekitSettings(_Frozen):
    """``IMAGEKIT_CACHEFILE_DIR`` (with the default ``source_name_as_path`` namer)."""

    cachefile_dir: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")] = "CACHE/images"


class DjangoConfig(_Frozen):
    """What the site's ``settings.py`` says that changes the libraries' names."""

    versatileimagefield: VersatileImageSettings = VersatileImageSettings()
    imagekit: ImagekitSettings = ImagekitSettings()
    sorl: SorlSettings = SorlSettings()
    easy_thumbnails: EasyThumbnailsSettings = EasyThumbnailsSettings()


def _rendition_kind(value: Any) -> str:
    preset = value.get("preset") if isinstance(value, dict) else getattr(value, "preset", None)
    return preset if preset in PRESETS else "generic"


PRESETS = ("django_advance_thumbnail", "versatileimagefield", "imagekit", "sorl", "easy_thumbnails")
AnyRendition = Annotated[
    Annotated[RenditionConfig, Tag("generic")]
    | Annotated[AdvanceThumbnailRendition, Tag("django_advance_thumbnail")]
    | Annotated[VersatileImageRendition, Tag("versatileimagefield")]
    | Annotated[ImagekitRendition, Tag("imagekit")]
    | Annotated[SorlRendition, Tag("sorl")]
    | Annotated[EasyThumbnailsRendition, Tag("easy_thumbnails")],
    Discriminator(_rendition_kind),
]
"""A rendition: batchthumb's own (``mode``, ``width``, ...) or a Django library's (``preset``)."""


class PlaceholderColumns(_Frozen):
    """Columns of the source table that get a source's placeholders, written as they are made
    (text columns of batchthumb's own: whatever they held is replaced)."""

    blurhash: str | None = None
    color: str | None = None
    lqip: str | None = None

    def chosen(self) -> dict[str, str]:
        """Placeholder -> column, for the ones given."""
        return {name: column for name, column in self.model_dump().items() if column is not None}


class FocalPointColumns(_Frozen):
    """Where each source's subject is: columns of the source table a crop keeps in frame.

    ``units = "fraction"``: ``x`` and ``y`` between 0 and 1 (0.5, 0.5 is the centre);
    ``"pixels"``: wagtail's ``focal_point_x``/``_y`` (the subject's centre, in pixels of the
    upright original) with ``focal_point_width``/``_height``. A row whose columns are NULL is
    cropped by the rendition's gravity.
    """

    x: str
    y: str
    width: str | None = None
    height: str | None = None
    units: Literal["fraction", "pixels"] = "fraction"

    @model_validator(mode="after")
    def _box_in_pixels(self) -> FocalPointColumns:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        if self.width is not None and self.units != "pixels":
            raise ValueError("width and height are wagtail's box, in pixels: set units = 'pixels'")
        return self


class SourceSetConfig(_Frozen):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    table: str
    """The table (or view) that lists the sources; ``schema.table`` or a bare name."""
    key_column: str = "id"
    """A unique, sortable column: the keyset the listing pages on."""
    path_column: str
    """The column holding the source key (a Django ``FileField``'s value)."""
    fingerprint_column: str | None = None
    """A column that changes when the source is replaced (``updated_at``, a checksum)."""
    object_fingerprint: bool = False
    """Take the fingerprint from the stored file instead: its size and ETag on S3, its size and
    modification time on disk, from one listing of ``listing_prefix`` per run (no HEAD per
    source). For a site whose edited images keep their name (django-storages'
    ``AWS_S3_FILE_OVERWRITE``) and whose table has no column that changes with them."""
    filter: str | None = None
    """A SQL boolean expression over the table's columns (trusted: it is the operator's)."""
    renditions: tuple[str, ...] | None = None
    """The renditions made for this source set; all configured ones when absent."""
    ppoi_column: str | None = None
    """versatileimagefield's ``PPOIField`` column (``"0.3x0.7"``): where its ``crop`` centres."""
    focal_point: FocalPointColumns | None = None
    """Columns that place each source's subject: crops keep it in frame, and moving it makes
    the crops stale (not the fits). ``ppoi_column`` is the other way to say it."""
    placeholders: bool = False
    """Make each source's placeholders from the decode its renditions come from: a BlurHash,
    its dominant colour and a ~20 px WebP as a data URI, recorded in the registry (and listed by
    ``manifest``); a source whose renditions are done gets them from one small decode."""
    placeholder_columns: PlaceholderColumns | None = None
    """Also write them to these columns of the table (``{ blurhash = "blurhash", lqip = "lqip" }``)."""
    listing_prefix: Annotated[str, Field(pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.=-]*/)*$")] = ""
    """Where this set's files live in the source store (``"photos/"``; empty: anywhere): what
    ``purge orphans --missing-sources`` and ``object_fingerprint`` list. A source key outside
    it is never judged missing."""

    @model_validator(mode="after")
    def _one_fingerprint(self) -> SourceSetConfig:
        if self.object_fingerprint and self.fingerprint_column:
            raise ValueError("give fingerprint_column or object_fingerprint, not both")
        if self.focal_point is not None and self.ppoi_column is not None:
            raise ValueError("give focal_point or ppoi_column, not both")
        if self.placeholder_columns is not None and not self.placeholders:
            raise ValueError("placeholder_columns needs placeholders = true")
        return self


class UploadReference(_Frozen):
    """A column that holds names of files under the upload prefix (another model's ``FileField``)."""

    table: str
    """``schema.table`` or a bare name."""
    column: str


class UploadsConfig(_Frozen):
    """``purge uploads``: where the originals are uploaded, and everything that references them.

    Every ``[[sources]]`` table's path column counts as a reference; list here every other
    column that can name a file under the prefix. A file none of them names is an orphan.
    """

    prefix: Annotated[str, Field(pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.=-]*/)+$")]
    """The upload folder in the source store (``"photos/"``): only files under it are deleted."""
    references: tuple[UploadReference, ...] = ()


class LimitsConfig(_Frozen):
    render_pool: Literal["thread", "process"] = "thread"
    """Where libvips runs. Threads: the default, measured 12% faster than processes on 2 cores
    (processes pay for piping every source and rendition through pickle). Processes: no GIL
    shared between renders, for machines with many cores (not measured there yet)."""
    render_workers: int | Literal["auto"] = "auto"
    """Images rendered at once. ``auto``: one process per CPU the container may use (its cgroup
    CPU quota, rounded up, and its affinity); with threads, one more, which measured 6% faster
    than one per core on 2 cores (a thread holding the GIL leaves a core idle)."""
    memory: int | Literal["auto"] = "auto"
    """The memory budget of the sources in flight: each source reserves its bytes and what its
    decode will cost (from its header, at its shrink-on-load scale) before it is read, and
    waits while the budget is spent; one that alone costs more fails. Bytes or a size
    (``"1GiB"``, ``"512Mi"``); ``auto``: half the cgroup's memory limit, else the machine's."""
    vips_threads: Annotated[int, Field(ge=1, le=64)] = 1
    """libvips worker threads per render. The pool already spreads renders across cores;
    one thread each avoids oversubscribing them (measured 4% faster than libvips' default)."""
    io_concurrency: Annotated[int, Field(ge=1, le=1024)] = 64
    """Store requests in flight at once, per stage."""
    max_pixels: Annotated[int, Field(ge=1)] = 100_000_000
    """Sources whose header declares more pixels are failed before decoding."""
    max_source_bytes: Annotated[int, Field(ge=1)] = 200 * 1024 * 1024
    page_size: Annotated[int, Field(ge=1, le=100_000)] = 1000
    """Rows per keyset page of the listing."""
    record_batch: Annotated[int, Field(ge=1, le=10_000)] = 500
    """Registry rows written per statement."""
    record_interval_s: Annotated[float, Field(gt=0)] = 1.0
    """A partial batch is written after this long."""
    max_consecutive_store_errors: Annotated[int, Field(ge=1)] = 10
    """Store requests failing in a row (after their retries) that stop the run: an outage is an
    error to stop on, not a reason to mark every source failed."""
    block_untrusted: bool = True
    """Block the libvips loaders that libvips itself marks untrusted."""
    blocked_loaders: tuple[
        Literal["svg", "heif", "gif", "tiff", "webp", "png", "jpeg", "csv", "matrix", "vips"], ...
    ] = ()
    """Formats never decoded, whatever libvips trusts: e.g. ``["svg"]`` where uploads need no SVG."""

    @field_validator("render_workers")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 1 <= value <= 256:
            raise ValueError("must be between 1 and 256, or 'auto'")
        return value

    @field_validator("memory", mode="before")
    @classmethod
    def _size(cls, value: object) -> object:
        if isinstance(value, str) and value != "auto":
            value = parse_bytes(value)
        if isinstance(value, int) and not isinstance(value, bool) and value < 16 * 1024**2:
            raise ValueError("must be at least 16MiB, or 'auto'")
        return value

    def render_worker_count(self, limits: ContainerLimits | None = None) -> int:
        """``auto``: the CPUs the container may use (its cgroup quota, its affinity)."""
        if self.render_workers != "auto":
            return self.render_workers
        limits = limits or ContainerLimits.read()
        return limits.cpus + (1 if self.render_pool == "thread" else 0)

    def memory_budget(self, limits: ContainerLimits | None = None) -> int:
        """``auto``: a share of the container's memory (its cgroup limit, else the machine's)."""
        if self.memory != "auto":
            return self.memory
        limits = limits or ContainerLimits.read()
        return int(limits.memory * MEMORY_SHARE)


MEMORY_SHARE = 0.5
"""``limits.memory = "auto"``: the share of the container's memory that decoded images and
the sources' bytes may take; the rest is the interpreter, libvips' caches, the encoded
renditions and the store clients' buffers."""


class CdnConfig(_Frozen):
    """Where the renditions are served from, and the CDN to tell when they change."""

    public_base_url: str | None = None
    """The URL the target prefix is served under (``https://cdn.example.com/renditions/``):
    what ``manifest`` and ``--changed-urls`` print; the target store's URL when absent."""
    cloudfront_distribution_id: Annotated[str, Field(pattern=r"^[A-Z0-9]{1,64}$")] | None = None
    """Invalidate the changed URLs' paths on this CloudFront distribution after each run."""
    cloudfront_path_prefix: Annotated[str, Field(pattern=r"^/[^*?]*$")] = "/"
    """The path the target prefix has on the distribution (``/renditions/``)."""
    endpoint_url: str | None = None
    """CloudFront's API endpoint (tests point it at a mock)."""
    region: str = "us-east-1"
    access_key_id: SecretStr | None = None
    secret_access_key: SecretStr | None = None

    @field_validator("public_base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is not None:
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError(f"{value!r} is not an http(s) URL")
            if not value.endswith("/"):
                value += "/"
        return value

    @field_validator("cloudfront_path_prefix")
    @classmethod
    def _slash(cls, value: str) -> str:
        return value if value.endswith("/") else value + "/"


class Config(_Frozen):
    database: DatabaseConfig
    stores: StoresConfig
    sources: Annotated[tuple[SourceSetConfig, ...], Field(min_length=1)]
    renditions: Annotated[dict[str, AnyRendition], Field(min_length=1)]
    limits: LimitsConfig = LimitsConfig()
    django: DjangoConfig = DjangoConfig()
    uploads: UploadsConfig | None = None
    """``purge uploads`` deletes nothing without this section."""
    cdn: CdnConfig = CdnConfig()

    @field_validator("renditions")
    @classmethod
    def _rendition_names(cls, value: dict[str, AnyRendition]) -> dict[str, AnyRendition]:
        for name in value:
            if not re.match(NAME_PATTERN, name):
                raise ValueError(f"rendition name {name!r} must be lowercase letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _cross_references(self) -> Config:
        seen: set[str] = set()
        for source_set in self.sources:
            if source_set.name in seen:
                raise ValueError(f"source set {source_set.name!r} is defined twice")
            seen.add(source_set.name)
            for rendition in source_set.renditions or ():
                if rendition not in self.renditions:
                    raise ValueError(
                        f"source set {source_set.name!r} names rendition {rendition!r}, "
                        "which is not configured"
                    )
        self._check_layout()
        return self

    @property
    def drop_in(self) -> bool:
        """Renditions named as a Django library names them, beside the sources."""
        return any(isinstance(r, PresetRendition) for r in self.renditions.values())

    def _check_layout(self) -> None:
        source, target = self.stores.source.location, self.stores.target.location
        if not self.drop_in:
            try:
                target.check_target_against(source)
            except ValueError as exc:
                raise ValueError(f"stores.target: {exc}") from None
            return
        generic = [name for name, r in self.renditions.items() if not isinstance(r, PresetRendition)]
        if generic:
            raise ValueError(
                f"renditions {', '.join(map(repr, generic))} have no preset, but others do: a drop-in "
                "config writes beside the sources, under the libraries' names only; put batchthumb's "
                "own renditions in a config of their own"
            )
        if target != source:
            raise ValueError(
                f"stores.target: a drop-in config writes where its library does, at the source store's root "
                f"({source.url}): leave [stores.target] out, or make it the same"
            )

    def source_set(self, name: str) -> SourceSetConfig:
        for source_set in self.sources:
            if source_set.name == name:
                return source_set
        known = ", ".join(s.name for s in self.sources)
        raise ConfigError(f"no source set named {name!r} (configured: {known})")

    def renditions_for(self, source_set: SourceSetConfig) -> dict[str, AnyRendition]:
        names = source_set.renditions or tuple(self.renditions)
        return {name: self.renditions[name] for name in names}

    def variant_names(self, names: Sequence[str]) -> list[str]:
        """The names rows are recorded under, for these configured renditions (all when empty):
        a width set's or format set's variants (``hero@640w.webp``), the others' own."""
        selected = names or tuple(self.renditions)
        return [variant for name in selected for variant in variant_names(name, self.renditions[name])]


def variant_names(name: str, rendition: AnyRendition) -> list[str]:
    """``hero`` with widths [320, 640] and formats [webp, jpeg]: ``hero@320w.webp``,
    ``hero@320w.jpeg``, ``hero@640w.webp``, ``hero@640w.jpeg``; without either list, ``hero``."""
    if not isinstance(rendition, RenditionConfig) or (rendition.widths is None and rendition.formats is None):
        return [name]
    widths: tuple[int | None, ...] = rendition.widths or (None,)
    formats: tuple[str | None, ...] = rendition.formats or (None,)
    return [
        name + "@" + ".".join(part for part in (f"{w}w" if w else "", fmt or "") if part)
        for w in widths
        for fmt in formats
    ]


def redact_url(url: str) -> str:
    """Replace the password of a URL with ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def _env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _apply_env(data: dict[str, Any], environ: Mapping[str, str]) -> dict[tuple[str | int, ...], str]:
    """Merge ``BATCHTHUMB_A__B__C`` variables into ``data``; return path -> variable name."""
    origins: dict[tuple[str | int, ...], str] = {}
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX) or "__" not in variable:
            continue
        parts = [part.lower() for part in variable[len(ENV_PREFIX) :].split("__")]
        if any(not part for part in parts):
            raise ConfigError(f"environment variable {variable}: empty key segment")
        node: Any = data
        path: list[str | int] = []
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            key: str | int = part
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"environment variable {variable}: {'.'.join(map(str, path))} has no item {part}"
                    )
                key = int(part)
            path.append(key)
            if last:
                node[key] = _env_value(environ[variable])
            else:
                if isinstance(node, dict) and key not in node:
                    node[key] = {}
                node = node[key]
                if not isinstance(node, dict | list):
                    raise ConfigError(
                        f"environment variable {variable}: {'.'.join(map(str, path))} is not a table"
                    )
        origins[tuple(path)] = variable
    return origins


def _describe(error: ValidationError, origin: str, env_origins: Mapping[tuple[Any, ...], str]) -> str:
    lines = []
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if not str(part).startswith("function-"))
        if len(loc) > 2 and loc[0] == "renditions" and loc[2] in ("generic", *PRESETS):
            loc = loc[:2] + loc[3:]  # the union's tag says which kind was read, not where the key is
        key = ".".join(str(part) for part in loc) or "(top level)"
        where = origin
        for length in range(len(loc), 0, -1):
            if loc[:length] in env_origins:
                where = f"environment variable {env_origins[loc[:length]]}"
                break
        message = item["msg"].removeprefix("Value error, ")
        named = re.match(r"^([a-z_]+(?:\.[a-z_]+)+): (.*)$", message, re.S)
        if not loc and named:  # a check across sections names the key it is about
            key, message = named.group(1), named.group(2)
        if item["type"] == "extra_forbidden":
            message = "unknown key"
        lines.append(f"{where}: {key}: {message}")
    return "\n".join(lines)


def load_config(path: Path | str, environ: Mapping[str, str] | None = None) -> Config:
    """Read, merge and validate the configuration; raise :class:`ConfigError` naming the key."""
    path = Path(path)
    environ = os.environ if environ is None else environ
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return config_from_dict(data, origin=str(path), environ=environ)


def config_from_dict(
    data: dict[str, Any], origin: str = "config", environ: Mapping[str, str] | None = None
) -> Config:
    """Validate an already-parsed configuration (the TOML file's contents)."""
    data = copy.deepcopy(data)
    env_origins = _apply_env(data, os.environ if environ is None else environ)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, origin, env_origins)) from None
