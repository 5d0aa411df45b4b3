"""A config derived from the running Django site: ``python manage.py batchthumb ...``.

Everything comes from the objects Django has loaded (settings, models, storages, the
template loaders' directories), never from parsing settings or models: the database from
``DATABASES["default"]``, the store from the image fields' storage, one source set per
concrete ``ImageField`` (or subclass), and each installed library's renditions from its own
settings, fields and templates (each library module's :meth:`Library.derive`). What cannot be
mapped is reported by name with the reason (:attr:`Site.refusals`) and left out, never
approximated. Credentials are never read from the site: the database password and the S3
keys come from the environment (``PGPASSWORD``, ``AWS_ACCESS_KEY_ID``, ...), as for the CLI.

Only the management command and the tests import this module (it imports Django).
"""

from __future__ import annotations

import ast
import json
import os
import re
import sysconfig
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import models
from pydantic import ValidationError

from batchthumb.django.sitetools import class_path, slug
from batchthumb.errors import ConfigError

SITE_PACKAGES = tuple({str(Path(sysconfig.get_paths()[name]).resolve()) for name in ("purelib", "platlib")})


@dataclass
class SourceSet:
    """One concrete image field: a ``[[sources]]`` entry and the renditions made of it."""

    model: type[models.Model]
    field: models.Field[Any, Any]
    table: dict[str, Any]
    origin: str
    renditions: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        """``app.Model.field``."""
        return f"{self.model._meta.label}.{self.field.name}"


@dataclass
class Rendition:
    table: dict[str, Any]
    origins: list[str]
    sets: list[str]


@dataclass
class TemplateTag:
    """A ``{% tag ... %}`` of one of the site's templates: its words, as the tag reads them."""

    where: str
    """``templates/gallery/list.html:12``."""
    library: str
    """The module of the tag library that defines it (``sorl.thumbnail.templatetags.thumbnail``)."""
    bits: list[str]
    text: str


@dataclass
class Site:
    """What the derivation found: the config's tables, where each came from, what it refused."""

    database: dict[str, Any] = field(default_factory=dict)
    database_origin: str = ""
    store: dict[str, Any] = field(default_factory=dict)
    store_origin: str = ""
    sets: dict[str, SourceSet] = field(default_factory=dict)
    renditions: dict[str, Rendition] = field(default_factory=dict)
    sections: dict[str, dict[str, tuple[Any, str]]] = field(default_factory=dict)
    refusals: list[str] = field(default_factory=list)
    """One line each: what is not derived, by name, and why."""
    notes: list[str] = field(default_factory=list)
    """What the derivation read that is worth saying (the specs a rendition table holds)."""
    fatal: list[str] = field(default_factory=list)
    """Refusals that leave nothing to run (the database, the storage)."""

    # -- what the library modules call -------------------------------------------------

    def refuse(self, what: str, why: str) -> None:
        self.refusals.append(f"{what}: {why}")

    def setting(self, library: str, key: str, value: Any, origin: str) -> None:
        """One key of ``[django.<library>]``, with where it came from."""
        self.sections.setdefault(library, {})[key] = (value, origin)

    def image_sets(self, kind: type | tuple[type, ...] | None = None) -> list[SourceSet]:
        """The source sets whose field is a ``kind`` (any image field when ``None``)."""
        return [s for s in self.sets.values() if kind is None or isinstance(s.field, kind)]

    def sets_named(self, target: str) -> list[SourceSet]:
        """easy-thumbnails' alias targets: ``""`` every set, ``"app"``, ``"app.Model"``,
        ``"app.Model.field"`` (the app's label, the model's name in any case)."""
        parts = target.split(".") if target else []
        found = []
        for source_set in self.sets.values():
            meta = source_set.model._meta
            mine = [meta.app_label, meta.model_name or "", source_set.field.name]
            if [p.lower() for p in parts] == [m.lower() for m in mine[: len(parts)]]:
                found.append(source_set)
        return found

    def add_rendition(
        self, library: str, name: str, table: dict[str, Any], origin: str, sets: list[SourceSet]
    ) -> str | None:
        """A ``[renditions.<name>]`` table of ``library``, made for these sets, validated by the
        library's own model (a refusal, naming ``origin``, when it does not hold); the name it
        got (the same table asked twice is one rendition)."""
        from batchthumb.django import LIBRARIES

        table = {"preset": library, **table}
        try:
            LIBRARIES[library].rendition_model.model_validate(table)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in error.errors()
            )
            self.refuse(origin, f"not a rendition batchthumb makes as {library} does ({problems})")
            return None
        if not sets:
            self.refuse(origin, "no image field of the site's models it applies to")
            return None
        for existing, rendition in self.renditions.items():
            if rendition.table == table:
                rendition.origins.append(origin)
                rendition.sets += [s.table["name"] for s in sets if s.table["name"] not in rendition.sets]
                return existing
        base = slug(name)
        chosen, number = base, 2
        while chosen in self.renditions:
            chosen, number = f"{base}-{number}", number + 1
        self.renditions[chosen] = Rendition(table, [origin], [s.table["name"] for s in sets])
        return chosen

    # -- what the site has ---------------------------------------------------------------

    def own_paths(self) -> list[Path]:
        """The site's own apps' directories (not the installed packages')."""
        return [Path(config.path) for config in apps.get_app_configs() if is_own(config.path)]

    def template_tags(self, names: set[str]) -> Iterator[TemplateTag]:
        """The ``{% name ... %}`` tags of the site's own templates (those its loaders find
        outside the installed packages), each with the tag library it is from."""
        from django.template import engines
        from django.template.backends.django import DjangoTemplates
        from django.template.base import Lexer, TokenType

        for engine in engines.all():
            if not isinstance(engine, DjangoTemplates):
                continue
            libraries: dict[str, str] = dict(engine.engine.libraries)  # name -> module path
            builtins = list(engine.engine.builtins)
            for path in template_files(engine.template_dirs):
                loaded: dict[str, str] = {}
                for module_name in builtins:
                    loaded.update(dict.fromkeys(tags_of(module_name), module_name))
                try:
                    text = path.read_text(encoding="utf-8")
                except (OSError, UnicodeDecodeError) as error:
                    self.refuse(shown(path), f"template not read ({error})")
                    continue
                for token in Lexer(text).tokenize():
                    if token.token_type != TokenType.BLOCK:
                        continue
                    bits = token.split_contents()
                    if bits and bits[0] == "load":
                        taken = bits[1:]
                        if "from" in taken:  # {% load tag1 tag2 from library %}
                            at = taken.index("from")
                            module_name = libraries.get(" ".join(taken[at + 1 :]), "")
                            loaded.update(dict.fromkeys(taken[:at], module_name))
                        else:
                            for library in taken:
                                module_name = libraries.get(library, "")
                                loaded.update(dict.fromkeys(tags_of(module_name), module_name))
                    elif bits and bits[0] in names:
                        yield TemplateTag(
                            f"{shown(path)}:{token.lineno}",
                            loaded.get(bits[0], ""),
                            bits,
                            "{% " + token.contents + " %}",
                        )

    def jinja_calls(self, names: set[str]) -> Iterator[tuple[str, str, list[str]]]:
        """``name(expr, "literal", ...)`` calls of the site's Jinja2 templates: (where, name,
        the literal string arguments, ``None`` for any other)."""
        from django.template import engines
        from django.template.backends.jinja2 import Jinja2

        call = re.compile(r"\b(" + "|".join(sorted(names)) + r")\(([^()]*)\)")
        for engine in engines.all():
            if not isinstance(engine, Jinja2):
                continue
            for path in template_files(engine.template_dirs):
                text = path.read_text(encoding="utf-8", errors="replace")
                for match in call.finditer(text):
                    line = text.count("\n", 0, match.start()) + 1
                    arguments = [a.strip() for a in match.group(2).split(",")][1:]
                    yield f"{shown(path)}:{line}", match.group(1), arguments

    def python_calls(self, name: str) -> Iterator[tuple[str, ast.Call]]:
        """The calls of ``name(...)`` (or ``x.name(...)``) in the site's own modules."""
        for folder in self.own_paths():
            for path in sorted(folder.rglob("*.py")):
                if "migrations" in path.parts:
                    continue
                try:
                    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
                except (OSError, SyntaxError, UnicodeDecodeError):
                    continue
                for node in ast.walk(tree):
                    if isinstance(node, ast.Call):
                        func = node.func
                        called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                        if called == name:
                            yield f"{shown(path)}:{node.lineno}", node

    # -- the result ------------------------------------------------------------------------

    def config_data(self) -> dict[str, Any]:
        """The config as a dict (before ``BATCHTHUMB`` and the environment are laid over it)."""
        sets = [
            {
                **s.table,
                "renditions": [r for r in self.renditions if s.table["name"] in self.renditions[r].sets],
            }
            for s in self.sets.values()
        ]
        data: dict[str, Any] = {
            "database": dict(self.database),
            "stores": {"source": dict(self.store)},
            "sources": [s for s in sets if s["renditions"]],
            "renditions": {name: dict(r.table) for name, r in self.renditions.items()},
        }
        if self.sections:
            data["django"] = {
                library: {key: value for key, (value, _) in section.items()}
                for library, section in self.sections.items()
            }
        return data

    def toml(self, overlay: Mapping[str, Any] | None = None) -> str:
        """The config as a commented TOML file, each entry with where it came from:
        ``settings.BATCHTHUMB`` (``overlay``) laid over what is derived, as a run merges them,
        so that the file loads to the config the site runs with."""
        overlay = overlay or {}
        data = merged(self.config_data(), overlay)

        def origin(path: tuple[str, ...], derived: str = "") -> str:
            node: Any = overlay
            for depth, part in enumerate(path):
                if not isinstance(node, Mapping):  # an enclosing value of the overlay replaced it
                    path = path[:depth]
                    break
                if part not in node:
                    return derived
                node = node[part]
            return "settings.BATCHTHUMB" + "".join(f"[{part!r}]" for part in path)

        def table(path: tuple[str, ...], values: Mapping[str, Any], derived: Mapping[str, str]) -> list[str]:
            return [
                entry(key, value, origin((*path, key), derived.get(key, ""))) for key, value in values.items()
            ]

        lines = [
            "# batchthumb config derived from the Django site by `manage.py batchthumb config`",
            f"# (DJANGO_SETTINGS_MODULE={os.environ.get('DJANGO_SETTINGS_MODULE', '')}).",
            "# Credentials are not here: the database password from PGPASSWORD (or",
            "# BATCHTHUMB_DATABASE__DSN), S3 keys from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY.",
        ]
        if self.refusals:
            lines += ["#", "# Not derived (the site renders these itself on a page view):"]
            lines += [f"#   {line}" for line in self.refusals]
        lines += [f"# {note}" for note in self.notes]
        lines += ["", "[database]", *table(("database",), data["database"], {"dsn": self.database_origin})]
        stores = dict(data["stores"])
        lines += ["", "[stores.source]"]
        lines += table(("stores", "source"), stores.pop("source"), {"url": self.store_origin})
        for name, store in stores.items():
            lines += ["", f"[stores.{toml_key(name)}]", *table(("stores", name), store, {})]
        derived_sets = {s.table["name"]: s.origin for s in self.sets.values()}
        for source_set in data["sources"]:
            where = origin(("sources",), derived_sets.get(source_set.get("name", ""), ""))
            lines += ["", f"[[sources]]                               # {where}"]
            lines += [entry(key, value) for key, value in source_set.items()]
        for name, rendition in data["renditions"].items():
            lines += ["", f"[renditions.{toml_key(name)}]"]
            lines += [
                f"# {where}" for where in (self.renditions[name].origins if name in self.renditions else ())
            ]
            lines += table(("renditions", name), rendition, {})
        for library, section in data.get("django", {}).items():
            derived = {key: where for key, (_, where) in self.sections.get(library, {}).items()}
            lines += ["", f"[django.{toml_key(library)}]", *table(("django", library), section, derived)]
        for key, value in data.items():
            if key in ("database", "stores", "sources", "renditions", "django"):
                continue
            if isinstance(value, Mapping):
                lines += ["", f"[{toml_key(key)}]", *table((key,), value, {})]
            else:
                lines.insert(lines.index("[database]") - 1, entry(key, value, origin((key,))))
        return "\n".join(lines) + "\n"


def entry(key: str, value: Any, origin: str = "") -> str:
    text = f"{key} = {toml_value(value)}"
    return f"{text:<40}  # {origin}" if origin else text


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{toml_key(k)} = {toml_value(v)}" for k, v in value.items())
        return "{ " + inner + " }" if inner else "{}"
    raise ConfigError(f"cannot write {value!r} in TOML")


def toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)


def is_own(path: str | Path) -> bool:
    """Whether a directory is the site's own (not an installed package's)."""
    resolved = str(Path(path).resolve())
    return not any(resolved.startswith(prefix + os.sep) for prefix in SITE_PACKAGES)


def template_files(dirs: Any) -> Iterator[Path]:
    for folder in dirs:
        if not is_own(folder) or not Path(folder).is_dir():
            continue
        for path in sorted(Path(folder).rglob("*")):
            if path.is_file() and path.suffix in (".html", ".txt", ".jinja", ".jinja2", ".j2", ".xml"):
                yield path


def shown(path: Path) -> str:
    """A path as the site's people know it: relative to ``BASE_DIR`` (or the working directory)."""
    for base in (getattr(settings, "BASE_DIR", None), os.getcwd()):
        if base is not None:
            try:
                return str(path.resolve().relative_to(Path(base).resolve()))
            except ValueError:
                continue
    return str(path)


def tags_of(module_name: str) -> list[str]:
    """The tag names a template tag library module registers."""
    if not module_name:
        return []
    import importlib

    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return []
    register = getattr(module, "register", None)
    return list(getattr(register, "tags", {}))


# -- the database, the store, the source sets ----------------------------------------------


def derive_database(site: Site) -> None:
    database = settings.DATABASES.get("default", {})
    engine = database.get("ENGINE", "")
    origin = "DATABASES['default']"
    if "postgresql" not in engine and "postgis" not in engine:
        site.fatal.append(f"{origin}['ENGINE'] = {engine!r}: batchthumb runs on PostgreSQL only")
        return
    host, port = str(database.get("HOST") or ""), str(database.get("PORT") or "")
    user, name = database.get("USER") or "", database.get("NAME") or ""
    query = {}
    if host.startswith("/"):
        query["host"] = host
        host = ""
    for key in ("sslmode", "sslrootcert", "application_name"):
        if key in (database.get("OPTIONS") or {}):
            query[key] = str(database["OPTIONS"][key])
    from urllib.parse import quote, urlencode

    netloc = f"{quote(user)}@" if user else ""
    netloc += host + (f":{port}" if port else "")
    dsn = f"postgresql://{netloc}/{quote(name)}" + (f"?{urlencode(query)}" if query else "")
    site.database = {"dsn": dsn}
    site.database_origin = origin + " (NAME, USER, HOST, PORT; no password)"


STORAGE_CLASSES = {
    "django.core.files.storage.filesystem.FileSystemStorage": "file",
    "storages.backends.s3.S3Storage": "s3",
    "storages.backends.s3boto3.S3Boto3Storage": "s3",
}


def derive_store(site: Site, storage: Any, origin: str) -> None:
    kind = STORAGE_CLASSES.get(class_path(storage))
    if kind is None:
        site.fatal.append(
            f"{origin}: {class_path(storage)} is a storage batchthumb does not read or write "
            "(FileSystemStorage and django-storages' S3Storage)"
        )
        return
    if kind == "file":
        site.store = {"url": f"file://{Path(storage.location).resolve()}/"}
        site.store_origin = f"{origin}: FileSystemStorage(location={storage.location!r})"
        return
    location = (storage.location or "").strip("/")
    site.store = {"url": f"s3://{storage.bucket_name}/{location + '/' if location else ''}"}
    if storage.endpoint_url:
        site.store["endpoint_url"] = storage.endpoint_url
    if storage.region_name:
        site.store["region"] = storage.region_name
    if storage.addressing_style in ("path", "virtual"):
        site.store["addressing_style"] = storage.addressing_style
    site.store_origin = f"{origin}: S3Storage(bucket_name, location)"
    if getattr(storage, "custom_domain", None):
        site.notes.append(f"{origin} serves from custom_domain {storage.custom_domain!r}")


def rendition_models() -> set[type[models.Model]]:
    """Models whose image field is a library's rendition, not a source (Wagtail's renditions)."""
    found = set()
    if apps.is_installed("wagtail.images"):
        from wagtail.images.models import AbstractRendition

        found |= {model for model in apps.get_models() if issubclass(model, AbstractRendition)}
    return found


def derive_sets(site: Site) -> None:
    from batchthumb.django import LIBRARIES

    skipped = rendition_models()
    rendition_fields = tuple(kind for library in LIBRARIES.values() for kind in library.rendition_fields())
    storages: dict[str, tuple[Any, str]] = {}
    for model in apps.get_models():
        meta = model._meta
        if meta.abstract or meta.proxy or model in skipped:
            continue
        for image in meta.concrete_fields:
            if not isinstance(image, models.ImageField) or isinstance(image, rendition_fields):
                continue
            name = slug(f"{meta.app_label}-{meta.model_name}-{image.name}")
            table = {
                "name": name,
                "table": meta.db_table,
                "key_column": meta.pk.column,
                "path_column": image.column,
            }
            stamped = [f for f in meta.concrete_fields if getattr(f, "auto_now", False)]
            if stamped:
                table["fingerprint_column"] = stamped[0].column
            site.sets[name] = SourceSet(model, image, table, f"{meta.label}.{image.name}")
            storages.setdefault(class_path(image.storage), (image.storage, f"{meta.label}.{image.name}"))
    if not site.sets:
        site.fatal.append("no model of the site has an ImageField: nothing to derive")
        return
    if len(storages) > 1:
        site.fatal.append(
            "the image fields use different storages ("
            + ", ".join(f"{where}: {path}" for path, (_, where) in storages.items())
            + "): batchthumb reads one source store; write a config per storage"
        )
        return
    from django.core.files.storage import default_storage

    storage, where = next(iter(storages.values()))
    derive_store(site, storage, "STORAGES['default']" if storage is default_storage else f"{where}.storage")


def derive(overlay: Mapping[str, Any] | None = None) -> Site:
    """The site's config, as far as it can be derived."""
    from batchthumb.django import LIBRARIES

    site = Site()
    derive_database(site)
    derive_sets(site)
    for library in LIBRARIES.values():
        if library.installed(apps):
            library.derive(site)
    return site


def merged(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """``overlay``'s tables laid over ``base``'s, key by key (lists and values replaced)."""
    result = dict(base)
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(result.get(key), dict):
            result[key] = merged(result[key], value)
        else:
            result[key] = value
    return result


def overlay() -> dict[str, Any]:
    """``settings.BATCHTHUMB``: the TOML's keys (limits, cdn, ...), laid over what is derived."""
    value = getattr(settings, "BATCHTHUMB", {}) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(
            f"settings.BATCHTHUMB is a {type(value).__name__}, not a dict of the config's tables"
        )
    return dict(json.loads(json.dumps(value, default=list)))  # tuples to lists, as TOML has them
