"""The ``batchthumb`` CLI as ``manage.py batchthumb``: the same commands on the site's own config,
and ``config`` (the derived config as commented TOML; ``--check FILE`` compares a file with it)."""

from __future__ import annotations

import copy
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from batchthumb.cli import Context, guarded, main
from batchthumb.config import config_from_dict
from batchthumb.errors import ConfigError

if TYPE_CHECKING:
    from batchthumb.django.site import Site


def derived_config() -> Any:
    """The running site's config, its refusals said on stderr first (one line each)."""
    from batchthumb.django.site import derive

    site = derive()
    if site.fatal:  # nothing can run: that line alone
        raise ConfigError(site.fatal[0])
    for line in site.refusals:
        click.echo(f"warning: not derived: {line}", err=True)
    return site_config(site)


@click.command("config")
@click.option(
    "--check",
    "check_path",
    type=click.Path(dir_okay=False, exists=True),
    metavar="FILE",
    help="Compare FILE with the site: exit 0 when every rendition of the site is in it with the "
    "same spec hash, 1 with a line per difference.",
)
@click.option("--verbose", "-v", is_flag=True, help="Tracebacks on errors.")
@click.pass_obj
@guarded
def config_command(obj: Context, check_path: str | None, verbose: bool) -> int:
    """Print the config derived from this site as commented TOML (for the standalone CLI), or
    --check a TOML file against the site."""
    from batchthumb.config import load_config
    from batchthumb.django.site import derive, overlay

    site = derive()
    if site.fatal:
        raise ConfigError(site.fatal[0])
    for line in site.refusals:
        click.echo(f"warning: not derived: {line}", err=True)
    if check_path is None:
        site_config(site)  # what would run: validated as a file is
        click.echo(site.toml(overlay()), nl=False)
        return 0
    differences = compare(
        site_config(site, environ={}), load_config(Path(check_path), environ={}), check_path
    )
    for line in differences:
        click.echo(line)
    if not differences:
        click.echo(f"{check_path}: every rendition of the site, with the same spec hash", err=True)
    return 1 if differences else 0


def compare(site: Any, file: Any, path: str) -> list[str]:
    """One line per difference between the site's config and a file's: a rendition missing
    from the file, one the site does not have, one whose spec differs (which field)."""
    from batchthumb.specs import specs_for

    def hashes(config: Any) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for name in config.renditions:
            specs = specs_for({name: config.renditions[name]}, config.django)
            found[name] = {spec.spec_hash for spec in specs}
        return found

    ours, theirs = hashes(site), hashes(file)
    lines: list[str] = []
    for library in sorted({r.preset for r in site.renditions.values() if hasattr(r, "preset")}):
        mine = getattr(site.django, library, None)
        other = getattr(file.django, library, None)
        if mine is None or other is None:
            continue
        a, b = mine.model_dump(mode="json"), other.model_dump(mode="json")
        lines.extend(
            f"differs: [django.{library}] {key}: the site has {a[key]!r}, {path} {b.get(key)!r}"
            for key in sorted(a)
            if a[key] != b.get(key)
        )
    every_ours = set().union(*ours.values()) if ours else set()
    every_theirs = set().union(*theirs.values()) if theirs else set()
    section_differs = bool(lines)
    for name, wanted in ours.items():
        if wanted <= every_theirs:  # made by the file, under this name or others (a brace set's)
            continue
        if name not in theirs:
            lines.append(f"missing: renditions.{name} ({describe(site.renditions[name])}) is not in {path}")
            continue
        mine = site.renditions[name].model_dump(mode="json")
        other = file.renditions[name].model_dump(mode="json")
        fields = [key for key in sorted(mine.keys() | other.keys()) if mine.get(key) != other.get(key)]
        if fields:
            shown = ", ".join(
                f"{key} (the site: {mine.get(key)!r}, {path}: {other.get(key)!r})" for key in fields
            )
            lines.append(f"differs: renditions.{name}: {shown}")
        elif not section_differs:
            lines.append(f"differs: renditions.{name}: its spec hash (a setting it is hashed with)")
    for name, found in theirs.items():
        if not found <= every_ours and name not in ours:
            lines.append(f"extra: renditions.{name} is in {path}, not in the site")
    return lines


def describe(rendition: Any) -> str:
    data = rendition.model_dump(mode="json", exclude_none=True, exclude={"column"})
    return ", ".join(f"{key} = {value!r}" for key, value in data.items())


def site_group() -> click.Group:
    """``main`` with ``config`` added, its commands running on the derived config."""
    group = copy.copy(main)
    group.commands = {**main.commands, "config": config_command}
    group.commands.pop("demo", None)
    group.help = (main.help or "").replace(
        "Backfill, regenerate and purge image renditions in bulk.",
        "Backfill, regenerate and purge image renditions in bulk, on a config derived from this "
        "Django site (or --config FILE).",
    )
    return group


def site_main(args: Sequence[str], prog_name: str) -> None:
    """Run a command as the CLI does, exiting with its status."""
    site_group().main(args=list(args), prog_name=prog_name, obj=derived_config)
    sys.exit(0)


def site_config(site: Site | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """The config a ``manage.py batchthumb`` command runs on: derived, ``BATCHTHUMB`` over it,
    then ``BATCHTHUMB_*`` variables, validated as a TOML file is."""
    from batchthumb.django.site import derive, merged, overlay

    site = site or derive()
    if site.fatal:
        raise ConfigError(site.fatal[0])
    if not site.renditions:
        raise ConfigError(
            "the site has no rendition batchthumb can derive"
            + (
                f" ({len(site.refusals)} not derived: run `manage.py batchthumb config`)"
                if site.refusals
                else ""
            )
        )
    return config_from_dict(merged(site.config_data(), overlay()), origin="the Django site", environ=environ)
