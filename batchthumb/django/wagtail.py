"""Wagtail: ``{% image page.photo fill-300x200-c75 format-webp %}``, ``{% picture %}``, ``srcset_image``.

A rendition is named by the filter spec the template asks for (``spec``), or by a brace set
that ``{% picture %}`` and ``{% srcset_image %}`` expand (``specs``: one variant per filter spec,
left segment outermost). The sources are the image table (``wagtailimages_image``: ``file`` and
the four ``focal_point_*`` columns, as a ``[[sources]]`` set with ``focal_point = {...,
units = "pixels"}``); sizes come from the file, upright. Names, geometry, keys and formats are
Wagtail's own (:mod:`batchthumb.django.wagtail_rules`); the rows are Wagtail's rendition rows
(:class:`WagtailRenditions`), written after the object, insert-only: a row the site wrote first
stands, and the object written for it goes. A name another row holds, or one over the
``file`` column's length, gets a deterministic suffix (never a random one, never an overwrite).
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from batchthumb.caches import SiteCache
from batchthumb.database import Database
from batchthumb.django import wagtail_rules as rules
from batchthumb.django.base import (
    DerivedSite,
    Encoding,
    Format,
    Gone,
    Library,
    LibraryStore,
    PresetRendition,
    RenditionSpec,
    Written,
)
from batchthumb.django.dropin import checked_table
from batchthumb.errors import ConfigError, RenderError
from batchthumb.models import Frozen, RenditionConfig
from batchthumb.presets import Geometry
from batchthumb.queries import quote_identifier

if TYPE_CHECKING:
    from batchthumb.models import DjangoSettings
    from batchthumb.stores import Store

SOURCE_FORMATS = {
    "jpg": "jpeg",
    "jpeg": "jpeg",
    "png": "png",
    "gif": "gif",
    "webp": "webp",
    "avif": "avif",
    "bmp": "bmp",
    "heic": "heic",
    "heif": "heic",
}
"""A source's format by its extension (Wagtail's upload form refuses a file whose bytes are
another format than its extension says)."""
ROW_COLUMNS = {"id", "filter_spec", "file", "width", "height", "focal_point_key", "image_id"}


def _spec_text(text: str, braces: bool) -> list[str]:
    if not re.fullmatch(r"[A-Za-z0-9_\-.{},| ]+", text):
        raise ValueError(
            f"{text!r}: a filter spec has letters, digits, '-', '_', '.', '|' (and braces in specs)"
        )
    if not braces and ("{" in text or "}" in text):
        raise ValueError(f"{text!r} has braces: a brace set ({{% picture %}}) goes in 'specs'")
    expanded = rules.expand_spec(text) if braces else [text.replace(" ", "|")]
    cleaned: list[str] = []
    for spec in expanded:
        spec = rules.clean_spec(spec)
        for part in spec.split("|"):
            if not part:
                raise ValueError(f"{spec!r} has an empty operation")
        for op in rules.parse_spec(spec):
            if op.method == "format" and op.format not in rules.WRITABLE_FORMATS:
                writable = ", ".join(rules.WRITABLE_FORMATS)
                raise ValueError(f"{spec!r}: format-{op.format}: batchthumb writes {writable}")
        if spec not in cleaned:
            cleaned.append(spec)
    return cleaned


class WagtailRendition(PresetRendition):
    """``{% image photo fill-300x200-c75 format-webp %}`` (``spec = "fill-300x200-c75|format-webp"``)
    or ``{% picture photo format-{avif,webp,jpeg} width-{400,800} %}`` (``specs = "format-{avif,
    webp,jpeg} width-{400,800}"``). Operations other than Wagtail's twelve are refused."""

    preset: Literal["wagtail"]
    """``"wagtail"``."""
    spec: str | None = None
    """The tag's arguments joined by ``|`` (or spaces), in the order written."""
    specs: str | None = None
    """A brace set as ``{% picture %}`` / ``{% srcset_image %}`` take it: one rendition per spec."""

    @field_validator("spec")
    @classmethod
    def _one_spec(cls, value: str | None) -> str | None:
        return None if value is None else _spec_text(value, braces=False)[0]

    @field_validator("specs")
    @classmethod
    def _brace_set(cls, value: str | None) -> str | None:
        if value is not None:
            _spec_text(value, braces=True)
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> WagtailRendition:
        if (self.spec is None) == (self.specs is None):
            raise ValueError("give spec (an {% image %} tag's) or specs (a brace set), one of them")
        if self.column is not None:
            raise ValueError("column: Wagtail keeps renditions in its rendition table, not in a column")
        return self

    def filter_specs(self) -> list[str]:
        """Every filter spec this rendition stands for, as Wagtail stores them."""
        if self.spec is not None:
            return [self.spec]
        assert self.specs is not None
        return _spec_text(self.specs, braces=True)

    @property
    def operations(self) -> tuple[rules.Operation, ...]:
        assert self.spec is not None, "a variant has one spec"
        return rules.parse_spec(self.spec)


class WagtailSettings(Frozen):
    """The site's Wagtail version and ``WAGTAILIMAGES_*`` settings, as far as renditions depend on them."""

    version: Annotated[str, Field(pattern=r"^[5-9]\.[0-9]+$")] = "8.0"
    """The site's Wagtail (``5.2`` to ``8.0``): 8.0 keeps WebP and AVIF sources' formats, earlier
    ones write PNG; 7.3 lowered the JPEG (85 → 76) and AVIF (80 → 61) qualities."""
    jpeg_quality: Annotated[int, Field(ge=1, le=100)] | None = None
    """``WAGTAILIMAGES_JPEG_QUALITY``."""
    webp_quality: Annotated[int, Field(ge=1, le=100)] | None = None
    """``WAGTAILIMAGES_WEBP_QUALITY``."""
    avif_quality: Annotated[int, Field(ge=1, le=100)] | None = None
    """``WAGTAILIMAGES_AVIF_QUALITY``."""
    avif_effort: Annotated[int, Field(ge=0, le=9)] = 2
    """libvips' AVIF encoder effort (0 fastest, 9 slowest). Wagtail's Pillow encodes at speed 6,
    which is effort 3; 2 takes half the time for files of the same size (measured on a 1200 px
    photo: 0.16 s and 140 KB at 2, 0.33 s and 143 KB at 3, 1.8 s and 147 KB at libvips' own
    default of 4; 0.3 dB less PSNR to the source at 1 and 0, at 0.07 s)."""
    format_conversions: dict[
        Literal["jpeg", "png", "gif", "webp", "avif", "bmp", "heic"], Literal["jpeg", "png", "webp", "avif"]
    ] = Field(default_factory=dict)
    """``WAGTAILIMAGES_FORMAT_CONVERSIONS`` (``{ webp = "png" }``)."""
    folder: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_./-]*$")] = "images"
    """Where renditions go (``AbstractRendition.get_upload_to``'s folder)."""
    rendition_table: str = "wagtailimages_rendition"
    """The rendition model's table (a custom ``WAGTAILIMAGES_IMAGE_MODEL``'s rendition model)."""
    image_table: str = "wagtailimages_image"
    """The image model's table (the one the ``[[sources]]`` set lists)."""
    extra_columns: dict[Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")], str | int | bool] = (
        Field(default_factory=dict)
    )
    """Values for a custom rendition model's own NOT NULL columns (``{ note = "" }``)."""
    cache: SecretStr | None = None
    """The site's renditions cache (``CACHES["renditions"]``, else ``"default"``), when it is a
    shared Redis: every rendition row a run deletes has its cache entry deleted there too, so the
    site never serves a row that is gone (``manage.py batchthumb`` fills it from ``CACHES``)."""
    cache_key_prefix: str = ""
    """That cache's ``KEY_PREFIX``."""
    cache_version: int = 1
    """That cache's ``VERSION``."""

    def conversions(self) -> dict[str, str]:
        """The formats a source is written in without a ``format-*``."""
        found: dict[str, str] = {"bmp": "png", "heic": "jpeg", "gif": "png"}
        if self.release < (8, 0):
            found |= {"webp": "png", "avif": "png"}
        return found | dict(self.format_conversions)

    def qualities(self) -> dict[str, int]:
        recent = self.release >= (7, 3)
        return {
            "jpeg": self.jpeg_quality or (76 if recent else 85),
            "webp": self.webp_quality or 80,
            "avif": self.avif_quality or (61 if recent else 80),
        }

    @property
    def release(self) -> tuple[int, int]:
        major, minor = self.version.split(".")
        return int(major), int(minor)


def site_settings(django: DjangoSettings | None) -> WagtailSettings:
    """The site's ``[django.wagtail]`` section (its defaults, without a config)."""
    if django is None:
        return WagtailSettings()
    return django.section("wagtail", WagtailSettings)


def focal_point(text: str | None) -> rules.FocalPoint:
    """The image's focal point columns as planned (``px:x,y,width,height``; NULL: none)."""
    if not text:
        return rules.FocalPoint()
    if not text.startswith("px:"):
        raise ValueError(f"focal point {text!r}: Wagtail's is four pixel columns (units = 'pixels')")
    values: list[int | None] = []
    for part in text[3:].split(","):
        if part == "":
            values.append(None)
            continue
        number = float(part)
        values.append(int(number) if number.is_integer() else None)
    while len(values) < 4:
        values.append(None)
    x, y, width, height = values[:4]
    return rules.FocalPoint(x, y, width, height)


def _preset(spec: RenditionSpec) -> WagtailRendition:
    preset = spec.preset
    assert isinstance(preset, WagtailRendition)
    return preset


def suffixed(name: str, identity: str, limit: int) -> str:
    """A name of its own for a rendition whose Wagtail name is taken (or too long): Django's
    ``root_XXXXXXX.suffixes`` shape, the seven characters from the rendition's identity (image,
    spec, focal point key), the root cut so that the whole fits in ``limit``."""
    folder, base = posixpath.split(name)
    root, dot, suffixes = base.partition(".")
    tag = "_" + hashlib.sha1(identity.encode()).hexdigest()[:7]
    room = limit - len(folder) - 1 - len(tag) - len(dot) - len(suffixes)
    if room < 0:
        raise RenderError(
            f"{name!r}: even without its stem the name is over the {limit} characters of the file column"
        )
    return posixpath.join(folder, root[:room] + tag + dot + suffixes)


class Wagtail(Library):
    rendition_model = WagtailRendition
    settings_model = WagtailSettings
    name = "wagtail"
    django_app = "wagtail.images"
    hashed_sections = frozenset({"wagtail"})
    unhashed_settings: ClassVar[dict[str, frozenset[str]]] = {
        "wagtail": frozenset(
            {"rendition_table", "image_table", "extra_columns", "cache", "cache_key_prefix", "cache_version"}
        )
    }

    def derive(self, site: DerivedSite) -> None:
        import wagtail
        from django.conf import settings
        from django.db import DatabaseError, connection
        from wagtail.images import get_image_model

        from batchthumb.django.sitetools import shared_cache, slug

        image_model = get_image_model()
        rendition_model = image_model.get_rendition_model()
        images = image_model._meta
        site.setting(self.name, "version", "{}.{}".format(*wagtail.VERSION[:2]), "the installed Wagtail")
        for key, setting in (
            ("jpeg_quality", "WAGTAILIMAGES_JPEG_QUALITY"),
            ("webp_quality", "WAGTAILIMAGES_WEBP_QUALITY"),
            ("avif_quality", "WAGTAILIMAGES_AVIF_QUALITY"),
        ):
            if hasattr(settings, setting):
                site.setting(self.name, key, getattr(settings, setting), setting)
        conversions = getattr(settings, "WAGTAILIMAGES_FORMAT_CONVERSIONS", None)
        if conversions:
            site.setting(
                self.name,
                "format_conversions",
                {str(k).lower(): str(v).lower() for k, v in conversions.items()},
                "WAGTAILIMAGES_FORMAT_CONVERSIONS",
            )
        site.setting(self.name, "image_table", images.db_table, f"WAGTAILIMAGES_IMAGE_MODEL {images.label}")
        site.setting(
            self.name, "rendition_table", rendition_model._meta.db_table, f"{rendition_model._meta.label}"
        )
        caches = getattr(settings, "CACHES", {}) or {}
        alias = "renditions" if "renditions" in caches else "default"
        shared_cache(site, self.name, alias, "Wagtail's renditions cache")
        sets = [s for s in site.sets.values() if s.model is image_model and s.field.name == "file"]
        for source_set in sets:
            source_set.table["focal_point"] = {
                "x": images.get_field("focal_point_x").column,
                "y": images.get_field("focal_point_y").column,
                "width": images.get_field("focal_point_width").column,
                "height": images.get_field("focal_point_height").column,
                "units": "pixels",
            }
        covered: set[str] = set()

        def wanted(where: str, words: list[str], text: str) -> None:
            joined = "|".join(words)
            key = "specs" if "{" in joined else "spec"
            name = site.add_rendition(
                self.name, slug(f"wagtail-{joined}"), {key: joined}, f"{where}: {text}", sets
            )
            if name is not None:
                covered.update(rules.expand_spec(joined) if key == "specs" else [joined])

        tags = {"image", "srcset_image", "picture"}
        for tag in site.template_tags(tags):
            if not tag.library.startswith("wagtail.images."):
                continue
            words = []
            for bit in tag.bits[2:]:
                if bit == "as" or "=" in bit:
                    break
                words.append(bit)
            unknown = [word for word in words if not re.fullmatch(r"[a-z]+(-[a-z0-9{},.x-]+)*", word)]
            if unknown or not words:
                what = f"{unknown[0]} is not a literal filter spec" if unknown else "no filter spec"
                site.refuse(tag.where, f"{tag.text}: {what}: not derivable")
                continue
            wanted(tag.where, [w for w in words if w != "preserve-svg"], tag.text)
        for where, name, arguments in site.jinja_calls(tags):
            spec = arguments[0] if arguments else ""
            if not re.fullmatch(r"(\"[^\"]*\"|'[^']*')", spec):
                site.refuse(
                    where, f"{name}(...): the filter spec {spec or '(none)'} is not a literal: not derivable"
                )
                continue
            wanted(
                where,
                [w for w in re.split(r"[|\s]+", spec[1:-1].strip()) if w != "preserve-svg"],
                f"{name}({spec})",
            )
        table = rendition_model._meta.db_table
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT filter_spec, count(*) FROM {connection.ops.quote_name(table)}"
                    " GROUP BY 1 ORDER BY 2 DESC, 1"
                )
                found = cursor.fetchall()
        except DatabaseError as error:
            site.notes.append(f"wagtail: {table} not read ({str(error).splitlines()[0]})")
            found = []
        for spec, count in found:
            if spec in covered:
                continue
            site.add_rendition(
                self.name,
                slug(f"wagtail-{spec}"),
                {"spec": spec},
                f"{table}: {count:,} rows have filter_spec {spec!r}",
                sets,
            )

    def site_cache(self, django: DjangoSettings) -> tuple[str, str, int] | None:
        settings = site_settings(django)
        if settings.cache is None:
            return None
        return settings.cache.get_secret_value(), settings.cache_key_prefix, settings.cache_version

    def variants(self, name: str, preset: Any) -> list[tuple[str, Any]]:
        assert isinstance(preset, WagtailRendition)
        if preset.spec is not None:
            return [(name, preset)]
        return [
            (f"{name}@{spec}", preset.model_copy(update={"spec": spec, "specs": None}))
            for spec in preset.filter_specs()
        ]

    def skips(self, spec: RenditionSpec, source_key: str) -> str | None:
        if posixpath.splitext(source_key)[1].lower() == ".svg":
            return "an SVG: Wagtail serves vector images as they are"
        return None

    def focal(self, ppoi: str | None) -> tuple[float, float]:
        focal_point(ppoi)  # refused here when it is not one
        return (0.5, 0.5)

    def rendering(self, preset: WagtailRendition, django: DjangoSettings) -> RenditionConfig:
        colour = rules.background(preset.operations)
        return RenditionConfig(
            # sizes come from Wagtail's geometry; the box here bounds nothing
            mode="fit",
            width=20_000,
            upscale=True,
            background=colour or (255, 255, 255),
            jpeg_alpha="flatten",
            strip_metadata=False,  # Wagtail keeps EXIF, ICC and comments
        )

    def quality(self, spec: RenditionSpec, fmt: Format) -> int:
        return rules.quality(_preset(spec).operations, fmt, site_settings(spec.django).qualities())

    def _format(self, spec: RenditionSpec, source_key: str) -> str:
        extension = posixpath.splitext(source_key)[1].lstrip(".").lower()
        if extension == "svg":
            raise RenderError("an SVG: Wagtail keeps vector images as they are (skipped)")
        original = SOURCE_FORMATS.get(extension)
        if original is None:
            raise RenderError(f"a .{extension or '(none)'} file: not an image format Wagtail renders")
        return rules.output_format(
            _preset(spec).operations, original, site_settings(spec.django).conversions()
        )

    def format_for(self, spec: RenditionSpec, source_key: str) -> Format:
        fmt = self._format(spec, source_key)
        if fmt not in rules.WRITABLE_FORMATS:
            raise RenderError(
                f"Wagtail writes {fmt.upper()} here; batchthumb writes JPEG, PNG, WebP and AVIF"
            )
        return fmt  # type: ignore[return-value]

    def encoding(self, spec: RenditionSpec, alpha: bool, geometry: Geometry | None) -> Encoding:
        operations = _preset(spec).operations
        colour = rules.background(operations)
        return Encoding(
            spec.config.format,
            alpha and colour is None,
            "flatten",
            flatten=colour is not None,
            progressive=True,  # save_as_jpeg(progressive=True, optimize=True)
            lossless=rules.lossless(operations),
            effort=site_settings(spec.django).avif_effort,
        )

    def geometry(self, spec: RenditionSpec, width: int, height: int) -> Geometry | None:
        plan = rules.transform(_preset(spec).operations, (width, height), focal_point(spec.focal_text))
        return Geometry(plan.size[0], plan.size[1], crop=plan.crop)

    def crops_about_focal(self, spec: RenditionSpec) -> bool:
        return any(op.method == "fill" for op in _preset(spec).operations)

    def focal_point_key(self, spec: RenditionSpec, ppoi: str | None) -> str:
        return rules.focal_point_key(_preset(spec).operations, focal_point(ppoi))

    def object_key(self, spec: RenditionSpec, source_key: str, ppoi: str | None, transparent: bool) -> str:
        preset = _preset(spec)
        assert preset.spec is not None
        key = self.focal_point_key(spec, ppoi)
        folder = site_settings(spec.django).folder
        return rules.rendition_name(source_key, preset.spec, key, self._format(spec, source_key), folder)

    def namespace(self, spec: RenditionSpec) -> str:
        return site_settings(spec.django).folder.rstrip("/") + "/"

    def pattern(self, spec: RenditionSpec) -> str:
        preset = _preset(spec)
        assert preset.spec is not None
        tail = re.escape(preset.spec.replace("|", "."))
        extensions = "|".join(ext.lstrip(".") for ext in sorted(set(rules.EXTENSIONS.values())))
        return rf"{re.escape(self.namespace(spec))}[^/]*?\.(?:[0-9a-f]{{8}}\.)?{tail}\.(?:{extensions})"

    def metadata(
        self,
        db: Database,
        django: DjangoSettings,
        specs: Sequence[RenditionSpec],
        target: Store | None,
        cache: SiteCache | None,
    ) -> LibraryStore | None:
        return WagtailRenditions(db, site_settings(django), specs, cache)


def _text(value: str | int | bool) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def _sql_type(data_type: str) -> str:
    """A catalog type name as a cast (``character varying`` → ``varchar``), plain words only."""
    if not re.fullmatch(r"[a-z ]+", data_type):
        raise ConfigError(f"django.wagtail.extra_columns: a column of type {data_type!r} cannot be given")
    return {"character varying": "varchar", "character": "char"}.get(data_type, data_type)


def rendition_cache_key(row: Any) -> str:
    """Wagtail's ``Rendition.construct_cache_key``: ``wagtail-rendition-`` and the image id,
    its ``file_hash``, the focal point key and the filter spec, joined by ``-``."""
    parts = [str(row["image_id"]), row["file_hash"] or "", row["focal_point_key"], row["filter_spec"]]
    return "wagtail-rendition-" + "-".join(parts)


class WagtailRenditions:
    """Wagtail's rendition rows (``wagtailimages_rendition``: ``filter_spec``, ``file``, ``width``,
    ``height``, ``focal_point_key``, ``image_id``), the only thing its lookups read."""

    def __init__(
        self,
        db: Database,
        settings: WagtailSettings,
        specs: Sequence[RenditionSpec],
        cache: SiteCache | None = None,
    ) -> None:
        self.db = db
        self.cache = cache
        self.settings = settings
        self.specs = [spec for spec in specs if isinstance(spec.preset, WagtailRendition)]
        self.identifiers: dict[str, str] = {}
        self.limit = 100
        self.deleted = 0
        """Rows this run deleted (a purge's, or a regenerate's superseded ones)."""
        self.claimed: dict[str, str] = {}
        """Names this run gave out, by the identity they went to: two images whose names
        collide within a run get two names."""

    async def check(self) -> None:
        where = f"django.wagtail.rendition_table {self.settings.rendition_table!r}"
        table = await checked_table(
            self.db, where, self.settings.rendition_table, ROW_COLUMNS, "wagtail.images"
        )
        image = await checked_table(
            self.db,
            "django.wagtail.image_table",
            self.settings.image_table,
            {"id", "file", "file_hash"},
            "wagtail.images",
        )
        extras = dict(self.settings.extra_columns)
        self.identifiers = {"table": table, "image_table": image}
        self.extras = extras
        schema, name = (
            self.settings.rendition_table.split(".", 1)
            if "." in self.settings.rendition_table
            else ("public", self.settings.rendition_table)
        )
        rows = await self.db.fetch(
            "reading the catalog", self.db.q("wagtail_rendition_columns"), schema, name
        )
        required = {row["name"] for row in rows if row["required"]} - ROW_COLUMNS - set(extras)
        if required:
            plural = "s" if len(required) > 1 else ""
            raise ConfigError(
                f"{where}: NOT NULL column{plural} {', '.join(sorted(required))} without a default: "
                "give their values in [django.wagtail] extra_columns"
            )
        unknown = set(extras) - {row["name"] for row in rows}
        if unknown:
            raise ConfigError(f"django.wagtail.extra_columns: {', '.join(sorted(unknown))} not in {table}")
        self.types = {row["name"]: _sql_type(row["type"]) for row in rows if row["name"] in extras}
        lengths = [row["length"] for row in rows if row["name"] == "file" and row["length"]]
        self.limit = lengths[0] if lengths else 100

    def owns(self, object_key: str) -> bool:
        return any(spec.owns(object_key) for spec in self.specs)

    @staticmethod
    def identity(entry: Written) -> tuple[str, str, str]:
        """(image id, filter spec, focal point key): the row's unique key."""
        preset = entry.spec.preset
        assert isinstance(preset, WagtailRendition)
        assert preset.spec is not None
        key = rules.focal_point_key(preset.operations, focal_point(entry.ppoi))
        return (str(entry.row_key), preset.spec, key)

    async def claim(self, wanted: Sequence[Written]) -> list[str]:
        """The name each rendition is written under: Wagtail's, unless a row of another image,
        spec or focal point holds it, this run gave it out already, or it is too long."""
        ours = [entry for entry in wanted if isinstance(entry.spec.preset, WagtailRendition)]
        holders: dict[str, set[tuple[str, str, str]]] = {}
        if ours:
            rows = await self.db.fetch(
                "reading Wagtail's rendition rows",
                self.db.q("wagtail_holders", **self.identifiers),
                [entry.object_key for entry in ours],
            )
            for row in rows:
                holders.setdefault(row["file"], set()).add(
                    (str(row["image_id"]), row["filter_spec"], row["key"])
                )
        names = []
        for entry in wanted:
            if not isinstance(entry.spec.preset, WagtailRendition):
                names.append(entry.object_key)
                continue
            identity = self.identity(entry)
            text = "|".join(identity)
            name = entry.object_key
            others = holders.get(name, set()) - {identity}
            taken = others or self.claimed.get(name, text) != text
            if taken or len(name) > self.limit:
                name = suffixed(name, text, self.limit)
            self.claimed[name] = text
            names.append(name)
        return names

    async def record(self, written: Sequence[Written]) -> dict[str, str]:
        """Insert-only rows, after their objects: what replaced an earlier name of ours is
        updated, a row the site wrote first stands. Returns our names that a row of the site
        keeps another name for (ours → the site's): their objects are not needed."""
        ours = [entry for entry in written if isinstance(entry.spec.preset, WagtailRendition)]
        if not ours:
            return {}
        identities = [self.identity(entry) for entry in ours]
        columns = sorted(self.extras)
        args: tuple[Any, ...] = (
            [int(image) for image, _, _ in identities],
            [spec for _, spec, _ in identities],
            [key for _, _, key in identities],
            [entry.object_key for entry in ours],
            [entry.size[0] for entry in ours],
            [entry.size[1] for entry in ours],
            [entry.replaces or "" for entry in ours],
        )
        extra_names = "".join(f", {quote_identifier(column, 'column')}" for column in columns)
        extra_values = "".join(
            f", ${7 + index}::text::{self.types[column]}" for index, column in enumerate(columns)
        )
        insert = self.db.q(
            "wagtail_insert", **self.identifiers, extra_names=extra_names, extra_values=extra_values
        )
        rows = await self.db.transaction(
            "writing Wagtail's rendition rows",
            [
                (self.db.q("wagtail_update_ours", **self.identifiers), args),
                (insert, args[:6] + tuple(_text(self.extras[column]) for column in columns)),
                (self.db.q("wagtail_standing", **self.identifiers), args[:3]),
            ],
        )
        standing = {(str(row["image_id"]), row["filter_spec"], row["key"]): row["file"] for row in rows[-1]}
        return {
            entry.object_key: standing[identity]
            for entry, identity in zip(ours, identities, strict=True)
            if standing.get(identity, entry.object_key) != entry.object_key
        }

    async def forget(self, gone: Sequence[Gone]) -> None:
        names = [item.object_key for item in gone if self.owns(item.object_key)]
        if not names:
            return
        rows = await self.db.fetch(
            "deleting Wagtail's rendition rows", self.db.q("wagtail_delete", **self.identifiers), names
        )
        self.deleted += len(rows)
        if self.cache is not None and rows:  # Rendition.purge_from_cache, for each row deleted
            await self.cache.delete([rendition_cache_key(row) for row in rows])

    def after_deletes(self) -> str | None:
        if not self.deleted or self.cache is not None:
            return None
        return (
            f"deleted {self.deleted:,} of Wagtail's rendition rows: its renditions cache "
            "(CACHES['renditions'], else 'default') may serve them until their entries expire; keys "
            "wagtail-rendition-{image_id}-{file_hash}-{focal_point_key}-{filter_spec} "
            "(with the cache's KEY_PREFIX and VERSION: ':1:wagtail-rendition-...')"
        )

    async def in_use(self, names: Sequence[str]) -> dict[str, str | None]:
        rows = await self.db.fetch(
            "reading Wagtail's rendition rows", self.db.q("wagtail_in_use", **self.identifiers), list(names)
        )
        return {row["file"]: row["source"] for row in rows}

    async def adoptable(self, found: Sequence[tuple[str, str]]) -> dict[str, tuple[int, int]]:
        rows = await self.db.fetch(
            "reading Wagtail's rendition rows",
            self.db.q("wagtail_sizes", **self.identifiers),
            [name for name, _ in found],
        )
        return {row["file"]: (row["width"], row["height"]) for row in rows}
