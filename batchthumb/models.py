"""The models the configuration is built of, and what the library plug-ins build on.

:class:`Frozen` is every section's base (a misspelt key is an error, a validated value
never changes); :class:`RenditionConfig` is batchthumb's own rendition, and the rules a
Django library's output follows (``Library.rendering``). :mod:`batchthumb.config` puts them
together with each library's models; this module imports none of them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal, TypeVar
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from batchthumb.location import StoreLocation


class Frozen(BaseModel):
    """A section of the configuration (``extra="forbid"``: a misspelt key is an error)."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


Filter = Literal["grayscale", "invert", "blur", "sharpen"]


Side = Annotated[int, Field(gt=0, le=10_000)]


class FilterConfig(Frozen):
    name: Filter
    """The filter: ``grayscale``, ``invert``, ``blur`` (a Gaussian of ``sigma``) or ``sharpen``."""
    stage: Literal["before", "after"] = "after"
    """Applied to the decoded source before resizing, or to the resized rendition."""
    sigma: Annotated[float, Field(gt=0, le=100)] = 1.0
    """Strength of ``blur`` and ``sharpen``; ignored by the others."""


class RenditionConfig(Frozen):
    mode: Literal["fit", "crop", "fill"] = "fit"
    """``fit``: within the box, keeping the aspect; ``crop``: cover the box, then cut it to the box
    (around the focal point, else ``gravity``); ``fill``: fit, then pad to the box with
    ``background``."""
    width: Annotated[int, Field(gt=0, le=20_000)] | None = None
    """The box's width in pixels; absent: follows from ``height`` and the source's aspect (``fit`` only)."""
    height: Annotated[int, Field(gt=0, le=20_000)] | None = None
    """The box's height in pixels; absent: follows from ``width`` and the source's aspect (``fit`` only)."""
    gravity: Literal["centre", "north", "south", "east", "west", "attention", "entropy"] = "centre"
    """Where a ``crop`` cuts when the source has no focal point: a side, the centre, or libvips'
    ``attention`` / ``entropy`` detection."""
    format: Literal["jpeg", "png", "webp", "avif"] = "jpeg"
    """The encoding written (and the object key's extension)."""
    quality: Annotated[int, Field(ge=1, le=100)] = 80
    """The encoder's quality, 1 to 100 (JPEG, WebP, AVIF; PNG is lossless)."""
    filters: tuple[FilterConfig, ...] = ()
    """Filters in order: a name (``"grayscale"``) or a table (``{ name = "blur", sigma = 2, stage =
    "before" }``)."""
    strip_metadata: bool = True
    """Leave the source's EXIF, XMP and ICC metadata out of the rendition."""
    upscale: bool = False
    """Enlarge a source smaller than the box; otherwise it is written at its own size."""
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


class DatabaseConfig(Frozen):
    dsn: SecretStr
    """A libpq-style URL: ``postgresql://user:password@host:5432/db``."""
    registry_schema: Annotated[str, Field(pattern=r"^[a-z_][a-z0-9_]{0,62}$")] = "batchthumb"
    """The schema that holds batchthumb's registry tables (``init`` creates it)."""
    connect_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    """How long a connection attempt may take before it counts as failed."""
    pool_size: Annotated[int, Field(ge=2, le=100)] = 4
    """Connections in the pool (the run lock holds one more of its own)."""

    def redacted_dsn(self) -> str:
        """The DSN with its password replaced by ``***``, safe to print."""
        return redact_url(self.dsn.get_secret_value())


class StoreConfig(Frozen):
    url: str
    """``s3://bucket/prefix/`` or ``file:///absolute/dir/``."""
    endpoint_url: str | None = None
    """An S3-compatible endpoint (``http://minio:9000``, SeaweedFS, R2); absent: AWS."""
    region: str | None = None
    """The S3 region; absent: the standard chain's (``AWS_REGION``, ``~/.aws/config``)."""
    access_key_id: SecretStr | None = None
    """An S3 access key; absent: the standard chain (environment, ``~/.aws``, instance or pod role)."""
    secret_access_key: SecretStr | None = None
    """The secret of ``access_key_id`` (never printed)."""
    session_token: SecretStr | None = None
    """A temporary credential's session token (never printed)."""
    addressing_style: Literal["auto", "path", "virtual"] = "auto"
    """``path`` (``endpoint/bucket/key``, what most S3-compatible servers want) or ``virtual``
    (``bucket.endpoint/key``); ``auto``: botocore's choice."""
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


def redact_url(url: str) -> str:
    """Replace the password of a URL with ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


SectionT = TypeVar("SectionT", bound=BaseModel)


class DjangoSettings(Frozen):
    """What the site's ``settings.py`` says that changes the libraries' names: one section per
    library (``[django.sorl]``), each its module's ``settings_model``."""

    def section(self, name: str, model: type[SectionT]) -> SectionT:
        """The ``[django.<name>]`` section, as the library's own model."""
        value = getattr(self, name)
        if not isinstance(value, model):
            raise TypeError(f"[django.{name}] is a {type(value).__name__}, not a {model.__name__}")
        return value
