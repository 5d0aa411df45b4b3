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
from typing import TYPE_CHECKING, Annotated, Any, Literal, Union
from urllib.parse import urlsplit

from pydantic import (
    Discriminator,
    Field,
    SecretStr,
    Tag,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)

from batchthumb.django import LIBRARIES
from batchthumb.django.base import PresetRendition
from batchthumb.errors import ConfigError
from batchthumb.models import DatabaseConfig as DatabaseConfig
from batchthumb.models import DjangoSettings as DjangoSettings
from batchthumb.models import FilterConfig as FilterConfig
from batchthumb.models import Frozen
from batchthumb.models import RenditionConfig as RenditionConfig
from batchthumb.models import StoreConfig as StoreConfig
from batchthumb.models import redact_url as redact_url
from batchthumb.resources import ContainerLimits, parse_bytes

ENV_PREFIX = "BATCHTHUMB_"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class StoresConfig(Frozen):
    source: StoreConfig
    """Where the sources are: the store the path columns' keys are relative to."""
    target: StoreConfig
    """Where renditions go. A drop-in config (preset renditions) may leave it out: its target
    is the source store's root, where the Django libraries write."""

    @model_validator(mode="before")
    @classmethod
    def _target_defaults_to_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and "target" not in data and "source" in data:
            return {**data, "target": data["source"]}
        return data


def _rendition_kind(value: Any) -> str:
    preset = value.get("preset") if isinstance(value, dict) else getattr(value, "preset", None)
    return preset if preset in LIBRARIES else "generic"


PRESETS = tuple(LIBRARIES)
"""The ``preset`` values a rendition may name: the registered libraries."""

if TYPE_CHECKING:
    DjangoConfig = DjangoSettings
    AnyRendition = RenditionConfig | PresetRendition
else:
    DjangoConfig = create_model(
        "DjangoConfig",
        __base__=DjangoSettings,
        __doc__=DjangoSettings.__doc__,
        **{
            name: (
                library.settings_model,
                Field(
                    default=library.settings_model(),
                    description=" ".join((library.settings_model.__doc__ or "").split("\n\n")[0].split()),
                ),
            )
            for name, library in LIBRARIES.items()
            if library.settings_model is not None
        },
    )
    AnyRendition = Annotated[
        Union[  # noqa: UP007 (a union built from the registry)
            tuple(
                [Annotated[RenditionConfig, Tag("generic")]]
                + [Annotated[library.rendition_model, Tag(name)] for name, library in LIBRARIES.items()]
            )
        ],
        Discriminator(_rendition_kind),
    ]
"""A rendition: batchthumb's own (``mode``, ``width``, ...) or a Django library's (``preset``,
one model per registered library)."""


class PlaceholderColumns(Frozen):
    """Columns of the source table that get a source's placeholders, written as they are made
    (text columns of batchthumb's own: whatever they held is replaced)."""

    blurhash: str | None = None
    """The column that gets the BlurHash."""
    color: str | None = None
    """The column that gets the dominant colour (``#rrggbb``)."""
    lqip: str | None = None
    """The column that gets the ~20 px WebP ``data:`` URI."""

    def chosen(self) -> dict[str, str]:
        """Placeholder -> column, for the ones given."""
        return {name: column for name, column in self.model_dump().items() if column is not None}


class FocalPointColumns(Frozen):
    """Where each source's subject is: columns of the source table a crop keeps in frame.

    ``units = "fraction"``: ``x`` and ``y`` between 0 and 1 (0.5, 0.5 is the centre);
    ``"pixels"``: wagtail's ``focal_point_x``/``_y`` (the subject's centre, in pixels of the
    upright original) with ``focal_point_width``/``_height``. A row whose columns are NULL is
    cropped by the rendition's gravity.
    """

    x: str
    """The column of the subject's horizontal position."""
    y: str
    """The column of the subject's vertical position."""
    width: str | None = None
    """The column of the subject's width (Wagtail's ``focal_point_width``), in pixels."""
    height: str | None = None
    """The column of the subject's height (Wagtail's ``focal_point_height``), in pixels."""
    units: Literal["fraction", "pixels"] = "fraction"
    """``fraction``: 0 to 1 of the image; ``pixels``: of the upright original, as Wagtail stores them."""

    @model_validator(mode="after")
    def _box_in_pixels(self) -> FocalPointColumns:
        if (self.width is None) != (self.height is None):
            raise ValueError("give both width and height, or neither")
        if self.width is not None and self.units != "pixels":
            raise ValueError("width and height are wagtail's box, in pixels: set units = 'pixels'")
        return self


class SourceSetConfig(Frozen):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    """The set's name: the first part of every object key it writes, and what ``--source`` selects."""
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


class UploadReference(Frozen):
    """A column that holds names of files under the upload prefix (another model's ``FileField``)."""

    table: str
    """``schema.table`` or a bare name."""
    column: str
    """The column that names a file under the prefix."""


class UploadsConfig(Frozen):
    """``purge uploads``: where the originals are uploaded, and everything that references them.

    Every ``[[sources]]`` table's path column counts as a reference; list here every other
    column that can name a file under the prefix. A file none of them names is an orphan.
    """

    prefix: Annotated[str, Field(pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.=-]*/)+$")]
    """The upload folder in the source store (``"photos/"``): only files under it are deleted."""
    references: tuple[UploadReference, ...] = ()
    """Every other column that can name an upload (``[{ table = "blog_attachment", column = "file" }]``)."""


class LimitsConfig(Frozen):
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
    """Sources larger than this are failed before their bytes are read."""
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


class CdnConfig(Frozen):
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
    """CloudFront's API region."""
    access_key_id: SecretStr | None = None
    """A key for CloudFront's API; absent: the standard chain."""
    secret_access_key: SecretStr | None = None
    """The secret of ``access_key_id`` (never printed)."""

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


class Config(Frozen):
    database: DatabaseConfig
    """The Postgres database that holds the source tables and the registry."""
    stores: StoresConfig
    """Where sources are read from and renditions written to."""
    sources: Annotated[tuple[SourceSetConfig, ...], Field(min_length=1)]
    """The source sets: one table (and path column) each."""
    renditions: Annotated[dict[str, AnyRendition], Field(min_length=1)]
    """The renditions by name: batchthumb's own, or a Django library's (``preset``)."""
    limits: LimitsConfig = LimitsConfig()
    """Concurrency, memory and the guards against hostile images."""
    django: DjangoConfig = DjangoConfig()
    """The Django site's settings that change the libraries' names, rows and output: one section
    per library."""
    uploads: UploadsConfig | None = None
    """``purge uploads`` deletes nothing without this section."""
    cdn: CdnConfig = CdnConfig()
    """The public URL of the renditions, and the CDN to invalidate."""

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
    ``hero@320w.jpeg``, ``hero@640w.webp``, ``hero@640w.jpeg``; without either list, ``hero``;
    a preset: its library's (Wagtail's brace set: ``hero@format-webp|width-400``, ...)."""
    if isinstance(rendition, PresetRendition):
        return [variant for variant, _ in LIBRARIES[rendition.preset].variants(name, rendition)]
    if rendition.widths is None and rendition.formats is None:
        return [name]
    widths: tuple[int | None, ...] = rendition.widths or (None,)
    formats: tuple[str | None, ...] = rendition.formats or (None,)
    return [
        name + "@" + ".".join(part for part in (f"{w}w" if w else "", fmt or "") if part)
        for w in widths
        for fmt in formats
    ]


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
