"""``python manage.py batchthumb``: the config derived from the running site, for each library.

Each library's test site (``tests/sites/site_<library>``) is the site its hand-written config in
``configs/`` describes: the same models, settings and template tags. Derived, its renditions
have exactly that file's spec hashes; generated through ``manage.py`` (on disk and on the S3
server), every rendition is served by the library with no render, no save and no source opened.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from batchthumb.config import Config, config_from_dict, load_config
from batchthumb.samples import sample_bytes
from batchthumb.specs import specs_for
from tests.django_site.site import alpha_png
from tests.helpers import S3_CREDENTIALS, registry_rows, sql

ROOT = Path(__file__).parent.parent
MANAGE = ROOT / "tests" / "sites" / "manage.py"

HAND_WRITTEN = {
    "sorl": "django-sorl.toml",
    "easy_thumbnails": "django-easy-thumbnails.toml",
    "imagekit": "django-imagekit.toml",
    "versatileimagefield": "django-versatileimagefield.toml",
    "advance_thumbnail": "django-advance-thumbnail.toml",
    "wagtail": "wagtail.toml",
}
ADMIN_SPECS = ["max-165x165", "max-800x600"]
"""What Wagtail's admin asks of every image (its listing and its edit page)."""


class Site:
    """One test site: its settings module, database, media directory (or bucket)."""

    def __init__(self, library: str, dsn: str, media: Path, s3: dict[str, str] | None = None) -> None:
        self.library, self.dsn, self.media, self.s3 = library, dsn, media, s3
        media.mkdir(parents=True, exist_ok=True)

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("BATCHTHUMB_", "BT_", "AWS_", "DJANGO_"))
        }
        environment.update(
            {
                "DJANGO_SETTINGS_MODULE": f"tests.sites.site_{self.library}.settings",
                "BT_DSN": self.dsn,
                "BT_MEDIA_ROOT": str(self.media),
                "PYTHONPATH": str(ROOT),
                # the credentials come from the environment, never from the site's settings
                "AWS_ACCESS_KEY_ID": S3_CREDENTIALS["aws_access_key_id"],
                "AWS_SECRET_ACCESS_KEY": S3_CREDENTIALS["aws_secret_access_key"],
                **(self.s3 or {}),
                **(extra or {}),
            }
        )
        return environment

    def manage(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(MANAGE), *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env(env),
            cwd=ROOT,
            check=False,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The standalone ``batchthumb`` CLI, from the same environment."""
        return subprocess.run(
            [sys.executable, "-m", "batchthumb", *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env(),
            cwd=ROOT,
            check=False,
        )

    def probe(self, mode: str, request: dict[str, Any]) -> dict[str, Any]:
        result = subprocess.run(
            [sys.executable, "-m", "tests.sites.probe", mode],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=300,
            env=self.env(),
            cwd=ROOT,
            check=False,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        return dict(json.loads(result.stdout.strip().splitlines()[-1]))

    def derived(self, env: dict[str, str] | None = None) -> tuple[Config, str]:
        """``manage.py batchthumb config``: the config it prints, validated as the CLI would, and stderr."""
        result = self.manage("batchthumb", "config", env=env)
        assert result.returncode == 0, result.stderr
        return config_from_dict(tomllib.loads(result.stdout), environ={}), result.stderr


def corpus(library: str) -> list[tuple[str, bytes, int, int]]:
    folder = "original_images" if library == "wagtail" else "images"
    return [
        (f"{folder}/landscape.jpg", sample_bytes(1200, 800, "jpeg", seed=1), 1200, 800),
        (f"{folder}/portrait.jpg", sample_bytes(600, 900, "jpeg", seed=2), 600, 900),
        (f"{folder}/logo.png", alpha_png(640, 480), 640, 480),
    ]


def put_sources(site: Site, s3_client: Any = None) -> list[tuple[str, int, int]]:
    sources = corpus(site.library)
    for key, data, _, _ in sources:
        if site.s3 is not None:
            s3_client.put_object(Bucket=site.s3["BT_S3_BUCKET"], Key=f"media/{key}", Body=data)
        else:
            (site.media / key).parent.mkdir(parents=True, exist_ok=True)
            (site.media / key).write_bytes(data)
    return [(key, width, height) for key, _, width, height in sources]


def hashes(config: Config) -> set[str]:
    return {spec.spec_hash for spec in specs_for(config.renditions, config.django)}


@pytest.mark.parametrize("library", sorted(HAND_WRITTEN))
def test_the_derived_config_has_the_hand_written_configs_spec_hashes(
    library: str, pg_dsn: str, tmp_path: Path
) -> None:
    site = Site(library, pg_dsn, tmp_path / "media")
    if library == "wagtail":  # the specs the admin uses are in the rendition table
        site.probe("setup", {"images": put_sources(site), "admin": ADMIN_SPECS})
    config, _ = site.derived()
    file = ROOT / "configs" / HAND_WRITTEN[library]
    assert hashes(config) == hashes(load_config(file, environ={}))
    assert config.stores.source.url == f"file://{(tmp_path / 'media').resolve()}/"
    derived, given = urlsplit(config.database.dsn.get_secret_value()), urlsplit(pg_dsn)
    assert (derived.path, derived.password) == (given.path, None)  # that database, no password copied
    check = site.manage("batchthumb", "config", "--check", str(file))
    assert check.returncode == 0, check.stdout + check.stderr


def s3_site(library: str, dsn: str, tmp_path: Path, bucket: str, endpoint: str) -> Site:
    return Site(
        library,
        dsn,
        tmp_path / "media",
        {"BT_S3_ENDPOINT": endpoint, "BT_S3_BUCKET": bucket, "BT_S3_LOCATION": "media"},
    )


@pytest.mark.parametrize("store", ["local", "s3"])
@pytest.mark.parametrize("library", sorted(HAND_WRITTEN))
def test_generate_through_manage_py_then_the_library_serves_every_rendition_itself_renders_none(
    library: str, store: str, pg_dsn: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if store == "s3":
        s3_client = request.getfixturevalue("s3_client")
        bucket = request.getfixturevalue("bucket")
        site = s3_site(library, pg_dsn, tmp_path, bucket, request.getfixturevalue("s3_endpoint"))
    else:
        s3_client, site = None, Site(library, pg_dsn, tmp_path / "media")
    sources = put_sources(site, s3_client)
    site.probe("setup", {"images": sources, "admin": ADMIN_SPECS if library == "wagtail" else []})
    result = site.manage("batchthumb", "generate", "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    config, _ = site.derived()
    rows = registry_rows_now(pg_dsn)
    written = {row["object_key"] for row in rows.values()}
    expected = len(sources) * len(hashes(config))
    assert summary["written"] == expected, summary
    served = site.probe("serve", {})
    assert served["missing"] == [], served
    assert served["renders"] == 0 and not served["calls"].get("save"), served["calls"]
    opened = [
        key for key in served["calls"] if key.startswith("open ") and key[5:] in {s[0] for s in sources}
    ]
    assert opened == [], served["calls"]
    names = set(served["names"])
    assert names and names <= written | wagtail_own(pg_dsn, library), sorted(names - written)
    if library != "wagtail":  # every rendition of every photo (Wagtail: the template's, below)
        assert len(names) == expected, sorted(names)
    else:
        page = served["served"]["page"] + served["served"]["srcset"]
        assert len(page) == len(sources) * (2 + 9 + 1), page  # card, body, 9 srcset entries, fallback


def registry_rows_now(dsn: str) -> dict[tuple[str, str], Any]:
    import anyio

    return anyio.run(registry_rows, dsn)


def wagtail_own(dsn: str, library: str) -> set[str]:
    """The rendition files Wagtail made itself (its admin's, in setup)."""
    if library != "wagtail":
        return set()
    import anyio

    async def files() -> set[str]:
        return {row["file"] for row in await sql(dsn, "SELECT file FROM wagtailimages_rendition")}

    return anyio.run(files)


def test_config_check_names_an_added_alias_and_a_changed_processor_argument_until_config_is_rerun(
    pg_dsn: str, tmp_path: Path
) -> None:
    site = Site("imagekit", pg_dsn, tmp_path / "media")
    before = tmp_path / "batchthumb.toml"
    result = site.manage("batchthumb", "config")
    assert result.returncode == 0, result.stderr
    before.write_text(result.stdout)
    changed = {"BT_EASY_ALIAS": "1", "BT_FILL_WIDTH": "250"}
    check = site.manage("batchthumb", "config", "--check", str(before), env=changed)
    assert check.returncode == 1, check.stdout + check.stderr
    lines = check.stdout.splitlines()
    assert [line for line in lines if line.startswith("missing: renditions.small ")], lines
    assert [line for line in lines if line.startswith("differs: renditions.fill: processors")], lines
    assert "250" in next(line for line in lines if "renditions.fill" in line)
    assert len(lines) == 2, lines
    after = site.manage("batchthumb", "config", env=changed)
    before.write_text(after.stdout)
    check = site.manage("batchthumb", "config", "--check", str(before), env=changed)
    assert check.returncode == 0, check.stdout + check.stderr


def refusals(stderr: str, name: str) -> list[str]:
    return [line for line in stderr.splitlines() if name in line]


def test_refusals_are_one_line_naming_the_setting_field_or_template_line(pg_dsn: str, tmp_path: Path) -> None:
    media = tmp_path / "media"
    sqlite = Site("sorl", pg_dsn, media).manage(
        "batchthumb", "generate", "--dry-run", env={"BT_DB_ENGINE": "django.db.backends.sqlite3"}
    )
    assert sqlite.returncode == 2, sqlite.stderr
    assert sqlite.stderr.splitlines() == [
        "error: DATABASES['default']['ENGINE'] = 'django.db.backends.sqlite3': "
        "batchthumb runs on PostgreSQL only"
    ]

    namer = Site("easy_thumbnails", pg_dsn, media).manage(
        "batchthumb", "config", env={"BT_NAMER": "easy_thumbnails.namers.hashed"}
    )
    assert namer.returncode == 2, namer.stdout + namer.stderr  # nothing left to derive
    lines = refusals(namer.stderr, "THUMBNAIL_NAMER")
    assert lines == [
        "warning: not derived: THUMBNAIL_NAMER: 'easy_thumbnails.namers.hashed': batchthumb names and "
        "renders as easy-thumbnails' defaults do"
    ], namer.stderr

    config, stderr = Site("imagekit", pg_dsn, media).derived(env={"BT_ADJUST": "1"})
    lines = refusals(stderr, "gallery.Photo.toned")
    assert (
        len(lines) == 1
        and "processor pilkit.processors.base.Adjust is not one batchthumb renders" in lines[0]
    ), stderr
    assert set(config.renditions) == {"fit", "fill"}  # the others stand

    config, stderr = Site("sorl", pg_dsn, media).derived()
    lines = refusals(stderr, "detail.html")
    assert lines == [
        "warning: not derived: tests/sites/site_sorl/templates/gallery/detail.html:3: "
        '{% thumbnail photo.image size crop="center" as im %}: '
        "the geometry size is not a literal: not derivable"
    ], stderr
    assert len(config.renditions) == 2

    config, stderr = Site("easy_thumbnails", pg_dsn, media).derived(env={"BT_EASY_TAGS": "1"})
    lines = refusals(stderr, "tag_templates")
    assert lines == [
        "warning: not derived: tests/sites/site_easy_thumbnails/tag_templates/gallery/list.html:4: "
        "{% thumbnail photo.image 200x100 crop upscale %}: an easy-thumbnails tag with a size and "
        "options of its own is not derived: name them as a THUMBNAIL_ALIASES alias (the tag takes an "
        "alias's name)"
    ], stderr  # the tag naming the alias "crop" (line 3) is derived already
    assert set(config.renditions) == {"fit", "crop"}


def comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """A --json summary less what differs from one run to the next (times, rates, run ids)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: clean(v) for k, v in value.items() if not k.endswith("_s") and not k.startswith("memory_")
            }
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    return dict(clean(summary))


def test_manage_py_and_the_cli_give_the_same_exit_statuses_and_json_summaries(
    pg_dsn: str, other_pg_dsn: str, tmp_path: Path
) -> None:
    """The same run from the same start (two sites alike: one database and media each):
    ``manage.py batchthumb`` on one, ``batchthumb --config <its config>`` on the other."""
    sites = [
        Site("sorl", dsn, tmp_path / name / "media") for dsn, name in ((pg_dsn, "a"), (other_pg_dsn, "b"))
    ]
    for site in sites:
        sources = put_sources(site)
        (site.media / "images" / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
        site.probe("setup", {"images": [*sources, ("images/broken.jpg", 10, 10)]})
    ours, theirs = sites
    config = tmp_path / "b" / "batchthumb.toml"
    config.write_text(theirs.manage("batchthumb", "config").stdout)
    for args, status in (
        (["generate", "--dry-run", "--json"], 0),
        (["generate", "--json"], 3),  # the broken source fails, the others are written
        (["generate", "--json"], 0),  # nothing left to do (a failed source waits for a change)
        (["purge", "referenced", "--rendition", "sorl-300x300-quality-85", "--json"], 0),
    ):
        mine, other = ours.manage("batchthumb", *args), theirs.cli("--config", str(config), *args)
        assert (mine.returncode, other.returncode) == (status, status), (args, mine.stderr, other.stderr)
        assert comparable(json.loads(mine.stdout)) == comparable(json.loads(other.stdout)), args
    usage = ours.manage("batchthumb", "generate", "--shard", "9/2")
    assert (
        usage.returncode == theirs.cli("--config", str(config), "generate", "--shard", "9/2").returncode == 2
    )
