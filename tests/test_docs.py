"""The documentation: its generated reference is the code's, its config blocks load, the quick
start's commands run, and the README is a front door to every page.

``make docs`` (run by ``make test``) builds the site with ``mkdocs build --strict``: broken
links and anchors fail there, not here.
"""

from __future__ import annotations

import asyncio
import copy
import os
import re
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import click
import pytest
from pydantic import BaseModel

from batchthumb.config import Config, LimitsConfig, config_from_dict
from batchthumb.django import LIBRARIES
from batchthumb.errors import ConfigError, ExitStatus
from tests.helpers import create_photo_table, files, source_files, write_sources
from tools import reference

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"
BIN = Path(sys.executable).parent
QUICK_START = [
    "getting-started/demo.md",
    "getting-started/first-config.md",
    "getting-started/first-backfill.md",
]


def pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def expand_snippets(text: str) -> str:
    """pymdownx.snippets' ``--8<-- "path"`` lines, as the site shows them (paths from the root)."""
    return re.sub(
        r'^--8<-- "([^"]+)"$', lambda m: (ROOT / m.group(1)).read_text().rstrip("\n"), text, flags=re.M
    )


def blocks(text: str, language: str) -> list[tuple[str, str]]:
    """(info string, body) of each fenced block in ``language``."""
    pattern = rf"^( *)```{language}([^\n]*)\n(.*?)^\1```$"  # a block in a list item is indented
    found = re.finditer(pattern, expand_snippets(text), re.M | re.S)
    return [(m.group(2).strip(), textwrap.dedent(m.group(3))) for m in found]


# -- the generated reference ----------------------------------------------------------------


def test_the_committed_reference_is_what_the_code_generates(pg_dsn: str) -> None:
    """Renaming a config key, an option or a status, or adding a migration, without running
    ``make reference`` fails here."""
    generated = reference.pages(pg_dsn)
    assert set(generated) == set((DOCS / "reference").glob("*.md"))
    for path, text in generated.items():
        assert path.read_text() == text, f"{path.relative_to(ROOT)} is out of date: run `make reference`"


def test_a_renamed_config_key_changes_the_reference(monkeypatch: pytest.MonkeyPatch) -> None:
    """The drift check above can fail: the page follows the models' field names."""
    page = (DOCS / "reference" / "configuration.md").read_text()
    assert reference.configuration_page() == page
    fields = LimitsConfig.__pydantic_fields__
    monkeypatch.setitem(fields, "rows_per_page", fields["page_size"])
    monkeypatch.delitem(fields, "page_size")
    renamed = reference.configuration_page()
    assert renamed != page
    assert "| `rows_per_page` |" in renamed and "BATCHTHUMB_LIMITS__ROWS_PER_PAGE" in renamed
    assert "| `page_size` |" not in renamed


def test_every_command_and_option_says_what_it_does() -> None:
    """The commands reference is the commands' help: an option without one fails."""
    from batchthumb.cli import main
    from batchthumb.django.cli import config_command

    walked = [*reference.walk(main, ["batchthumb"]), (config_command, ["batchthumb", "config"])]
    assert len(walked) >= 16
    bare = [
        f"{' '.join(words)} {param.opts[0]}"
        for command, words in walked
        for param in command.params
        if isinstance(param, click.Option) and not param.help
    ]
    assert bare == []
    assert all(command.help for command, _ in walked)


def _models() -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    roots: list[type[BaseModel]] = [Config, *(lib.rendition_model for lib in LIBRARIES.values())]
    roots += [lib.settings_model for lib in LIBRARIES.values() if lib.settings_model is not None]
    for root in roots:
        for _path, model, _keys in reference.model_keys(root, "", ""):
            if model not in found:
                found.append(model)
    return found


def test_every_config_key_is_documented_in_its_model() -> None:
    """The reference's descriptions are the fields' docstrings: a key without one fails."""
    models = _models()
    assert len(models) >= 20  # the walk reaches the nested sections and every library's
    missing = [
        f"{m.__name__}.{name}" for m in models for name, f in m.model_fields.items() if not f.description
    ]
    assert missing == []


def test_every_registry_table_is_described() -> None:
    from batchthumb.queries import migrations

    created = {
        name
        for _version, sql in migrations()
        for name in re.findall(r"CREATE TABLE IF NOT EXISTS \{schema\}\.(\w+)", sql)
    }
    assert created <= set(reference.TABLES) and created


def test_the_exit_statuses_agree_in_the_code_the_help_the_reference_and_the_readme() -> None:
    from batchthumb.cli import main

    help_text = main.get_help(click.Context(main))
    table = dict(
        re.findall(
            r"^\| `(\d+(?:\+N)?)` \| `\w+` \| (.+?) \|$",
            (DOCS / "reference/exit-statuses.md").read_text(),
            re.M,
        )
    )
    codes = {f"{s.value}+N" if s is ExitStatus.SIGNALLED else str(s.value) for s in ExitStatus}
    assert set(table) == codes
    summary = README.read_text().split("## Exit statuses", 1)[1]
    for code in codes:
        assert re.search(rf"^\s+{re.escape(code)}\s+\S", help_text, re.M), f"--help lacks {code}"
        assert f"`{code}`" in summary, f"the README's exit statuses lack {code}"


# -- config blocks ----------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "database": {"dsn": "postgresql://app@127.0.0.1:5432/app"},
    "stores": {"source": {"url": "file:///srv/media/"}, "target": {"url": "file:///srv/renditions/"}},
    "sources": [{"name": "photos", "table": "gallery_photo", "path_column": "image"}],
    "renditions": {"thumb": {"width": 100}},
}


def _merge(base: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(base)
    for key, value in part.items():
        if key == "sources":  # a fragment's [[sources]] adds keys to the base's source sets
            merged[key] = [
                {**(base[key][i] if i < len(base[key]) else {}), **item} for i, item in enumerate(value)
            ]
        elif key == "renditions":
            merged[key] = value  # a fragment's renditions are the config's
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_block(body: str) -> Config:
    """A whole config as it is, a fragment on a minimal config (a drop-in's: on the source
    store alone, where the libraries write)."""
    data = tomllib.loads(body)
    if {"database", "stores", "sources", "renditions"} <= set(data):
        return config_from_dict(data, environ={})
    base = copy.deepcopy(BASE)
    renditions = data.get("renditions", {})
    if any(isinstance(r, dict) and "preset" in r for r in renditions.values()):
        del base["stores"]["target"]
    return config_from_dict(_merge(base, data), environ={})


def toml_blocks() -> list[tuple[str, str]]:
    found = []
    for document in [README, *pages()]:
        for number, (_info, body) in enumerate(blocks(document.read_text(), "toml")):
            found.append((f"{document.relative_to(ROOT)}#{number}", body))
    return found


@pytest.mark.parametrize(("where", "body"), toml_blocks(), ids=[where for where, _ in toml_blocks()])
def test_every_toml_block_in_the_docs_loads(where: str, body: str) -> None:
    config = load_block(body)
    assert config.renditions


def test_the_block_loader_refuses_a_misspelt_key() -> None:
    """The test above can fail: a typo in a documented block is an unknown key."""
    body = dict(toml_blocks())["docs/getting-started/first-config.md#0"]
    with pytest.raises(ConfigError, match=r"renditions.thumb.widht: unknown key"):
        load_block(body.replace("width = 300", "widht = 300"))
    with pytest.raises(ConfigError, match=r"limits.page_size"):
        load_block("[limits]\npage_size = 0\n")


# -- the README ---------------------------------------------------------------------------------

OLD_README_SECTIONS = {
    # every section of the README before it became a front door -> where it lives now
    "Two commands": "README.md",
    "Development": "docs/contributing.md",
    "Install": "docs/operations/container.md",
    "Container image": "docs/operations/container.md",
    "Configuration": "docs/getting-started/first-config.md",
    "Object keys": "docs/jobs/backfill.md",
    "Responsive images": "docs/jobs/responsive.md",
    "`manifest`": "docs/jobs/responsive.md",
    "From `manage.py`": "docs/django/index.md",
    "Drop-in for Django sites": "docs/django/drop-in.md",
    "Drop-in for Wagtail": "docs/django/wagtail.md",
    "Commands": "docs/reference/commands.md",
    "`init`": "docs/jobs/backfill.md",
    "`generate`": "docs/jobs/backfill.md",
    "`regenerate`": "docs/jobs/regenerate.md",
    "`purge referenced`": "docs/jobs/purges.md",
    "`purge orphans`": "docs/jobs/purges.md",
    "`purge prefix`": "docs/jobs/purges.md",
    "`clear`": "docs/jobs/purges.md",
    "`adopt`": "docs/django/drop-in.md",
    "`verify`": "docs/jobs/verify.md",
    "`purge uploads`": "docs/jobs/uploads.md",
    "Sources replaced in place": "docs/jobs/regenerate.md",
    "Beside a live site": "docs/operations/live-site.md",
    "How purges stay safe": "docs/jobs/purges.md",
    "Scheduled purges": "docs/jobs/purges.md",
    "`status`": "docs/jobs/status.md",
    "Observability": "docs/operations/observability.md",
    "`demo`": "docs/getting-started/demo.md",
    "Scale-out and scheduling": "docs/operations/shards-and-locks.md",
    "Reliability": "docs/operations/reliability.md",
    "Least privilege": "docs/operations/least-privilege.md",
    "Performance": "docs/performance.md",
    "A srcset from one decode": "docs/performance.md",
    "Listings instead of a request per object": "docs/performance.md",
    "How it works": "docs/design/modules.md",
}


def test_the_readme_is_a_front_door_to_every_page() -> None:
    text = README.read_text()
    assert len(text.splitlines()) <= 200
    linked = {
        (ROOT / target).resolve() for target in re.findall(r"\]\(((?:docs/)[^)#\s]+)(?:#[^)]*)?\)", text)
    }
    unlinked = [str(page.relative_to(ROOT)) for page in pages() if page.resolve() not in linked]
    assert unlinked == [], "pages the README does not link to"
    for title, where in OLD_README_SECTIONS.items():
        assert (ROOT / where).exists(), title
        assert where == "README.md" or (ROOT / where).resolve() in linked, title
    assert "## Two commands" in text and "make demo" in text and "make test" in text


def test_every_page_is_in_the_navigation() -> None:
    import yaml

    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]

    def leaves(node: Any) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, list):
            return [leaf for item in node for leaf in leaves(item)]
        return [leaf for value in node.values() for leaf in leaves(value)]

    assert sorted(leaves(nav)) == sorted(str(page.relative_to(DOCS)) for page in pages())


# -- the quick start --------------------------------------------------------------------------


def commands(page: str) -> list[str]:
    lines = []
    for _info, body in blocks((DOCS / page).read_text(), "sh"):
        for line in body.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def run(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_demo_page_runs_as_written() -> None:
    """`make demo`, the commands it prints, `make demo-stop`: in the repository, as a newcomer would."""
    lines = commands("getting-started/demo.md")
    assert lines[0] == "make demo" and lines[-1] == "make demo-stop"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env = {key: value for key, value in env.items() if not key.startswith("BATCHTHUMB_")}
    try:
        for line in lines:
            result = run(line, ROOT, env)
            assert result.returncode == 0, (line, result.stdout[-2000:], result.stderr[-2000:])
            if line == "make demo":
                printed = [
                    cmd.strip() for cmd in result.stdout.splitlines() if cmd.startswith("  .venv/bin/")
                ]
                assert set(printed[:2]) <= set(lines), "the page lists what the demo prints"
    finally:
        run("make demo-stop", ROOT, env)


def test_the_first_config_and_backfill_pages_run_as_written(pg_dsn: str, tmp_path: Path) -> None:
    """Every command of the two pages, in order, on the page's own batchthumb.toml (the
    database and the directories pointed at this test's through the environment)."""
    keys = write_sources(tmp_path / "media", source_files())
    asyncio.run(create_photo_table(pg_dsn, keys))
    (config,) = [
        body
        for info, body in blocks((DOCS / QUICK_START[1]).read_text(), "toml")
        if "batchthumb.toml" in info
    ]
    work = tmp_path / "work"
    work.mkdir()
    (work / "batchthumb.toml").write_text(config)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BATCHTHUMB_")}
    env |= {
        "PATH": f"{BIN}:{os.environ['PATH']}",
        "BATCHTHUMB_DATABASE__DSN": pg_dsn,
        "BATCHTHUMB_STORES__SOURCE__URL": (tmp_path / "media").as_uri() + "/",
        "BATCHTHUMB_STORES__TARGET__URL": (tmp_path / "out").as_uri() + "/",
    }
    backfill = (DOCS / QUICK_START[2]).read_text()
    assert "`width = 320` and `height = 320` for `thumb`" in backfill
    ran = []
    for page in QUICK_START[1:]:
        for line in commands(page):
            if "docker/install.sh" in line or line.startswith("export PATH="):
                # the install: tests/test_install.py runs docker/install.sh into a fresh prefix
                assert '"docker" / "install.sh"' in (ROOT / "tests" / "test_install.py").read_text()
                continue
            if line.endswith("regenerate --dry-run"):  # the page's edit: thumb 300 -> 320
                edited = (
                    (work / "batchthumb.toml")
                    .read_text()
                    .replace("width = 300\nheight = 300", "width = 320\nheight = 320")
                )
                (work / "batchthumb.toml").write_text(edited)
            result = run(line, work, env)
            assert result.returncode == 0, (line, result.stdout[-2000:], result.stderr[-2000:])
            ran.append(
                (line, result.stdout, {n for n in files(tmp_path / "out") if n.startswith("photos/thumb/")})
            )
    assert [line for line, *_ in ran][:2] == [
        "batchthumb --version",
        "batchthumb --config batchthumb.toml init",
    ]
    written = files(tmp_path / "out")
    thumbs = {name for name in written if name.startswith("photos/thumb/")}
    large = {name for name in written if name.startswith("photos/large/")}
    assert len(thumbs) == len(large) == len(keys)
    before = next(made for line, _, made in ran if line.endswith(" generate"))  # the first backfill
    assert len(before) == len(keys) and not before & thumbs  # regenerate replaced every thumb...
    assert {name.split("/")[2] for name in thumbs} != {name.split("/")[2] for name in before}  # (a new hash)
    status = next(out for line, out, _ in ran if line.endswith(" status"))
    assert re.search(r"photos\s+thumb\s+4\s+0", status), status  # ...and the re-run before it had done all 4
