from __future__ import annotations

from pathlib import Path

import pytest

from batchthumb.config import load_config, redact_url
from batchthumb.errors import ConfigError

GOOD = """
[database]
dsn = "postgresql://app:s3cret-pass@db.example:5432/app"

[stores.source]
url = "s3://media/"
[stores.target]
url = "s3://media/renditions/"

[[sources]]
name = "photos"
table = "gallery_photo"
path_column = "image"

[renditions.thumb]
mode = "crop"
width = 300
height = 300
format = "webp"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "batchthumb.toml"
    path.write_text(text)
    return path


def test_good_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={})
    assert config.renditions["thumb"].quality == 80
    assert config.sources[0].key_column == "id"
    assert config.limits.render_worker_count() >= 1
    assert config.stores.target.location.prefix == "renditions/"


def test_unknown_key_is_named_with_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace('format = "webp"', 'format = "webp"\nqualty = 70'))
    with pytest.raises(ConfigError) as error:
        load_config(path, environ={})
    assert str(path) in error.value.message
    assert "renditions.thumb.qualty: unknown key" in error.value.message
    assert error.value.exit_status == 2


def test_bad_value_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("width = 300", "width = -3"))
    with pytest.raises(ConfigError, match=r"renditions\.thumb\.width: Input should be greater than 0"):
        load_config(path, environ={})


def test_crop_needs_both_sides(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("height = 300\n", ""))
    with pytest.raises(ConfigError, match="renditions.thumb: mode 'crop' needs both width and height"):
        load_config(path, environ={})


def test_environment_overrides_and_is_named_in_errors(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    config = load_config(
        path,
        environ={
            "BATCHTHUMB_RENDITIONS__THUMB__WIDTH": "400",
            "BATCHTHUMB_DATABASE__DSN": "postgresql://other@h/db",
            "BATCHTHUMB_SOURCES__0__FILTER": "published",
            "BATCHTHUMB_TEST_DSN": "ignored: no double underscore",
        },
    )
    assert config.renditions["thumb"].width == 400
    assert config.database.dsn.get_secret_value() == "postgresql://other@h/db"
    assert config.sources[0].filter == "published"
    with pytest.raises(ConfigError, match="environment variable BATCHTHUMB_LIMITS__IO_CONCURRENCY"):
        load_config(path, environ={"BATCHTHUMB_LIMITS__IO_CONCURRENCY": "lots"})
    with pytest.raises(ConfigError, match="has no item 3"):
        load_config(path, environ={"BATCHTHUMB_SOURCES__3__TABLE": "x"})


def test_target_overlapping_source_is_refused(tmp_path: Path) -> None:
    for source, target in [
        ("s3://media/", "s3://media/"),
        ("s3://media/uploads/", "s3://media/"),
        ("file:///srv/media/uploads", "file:///srv/media"),
        ("file:///srv/media", "file:///"),
    ]:
        text = GOOD.replace('url = "s3://media/"', f'url = "{source}"').replace(
            'url = "s3://media/renditions/"', f'url = "{target}"'
        )
        with pytest.raises(
            ConfigError, match=r"stores(\.target)?: .*(overlaps|whole bucket|filesystem root)"
        ):
            load_config(write(tmp_path, text), environ={})


def test_undefined_rendition_in_source_set(tmp_path: Path) -> None:
    path = write(
        tmp_path, GOOD.replace('path_column = "image"', 'path_column = "image"\nrenditions = ["nope"]')
    )
    with pytest.raises(ConfigError, match="names rendition 'nope'"):
        load_config(path, environ={})


def test_secrets_are_not_printed(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD), environ={})
    assert "s3cret-pass" not in repr(config)
    assert "s3cret-pass" not in config.database.redacted_dsn()
    assert redact_url("postgresql://app:pw@h/db") == "postgresql://app:***@h/db"
    bad = GOOD.replace("width = 300", "width = 0")
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, bad), environ={})
    assert "s3cret-pass" not in error.value.message


def test_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.toml", environ={})
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(tmp_path, "[database\n"), environ={})


@pytest.mark.parametrize("path", sorted(Path(__file__).parent.parent.joinpath("configs").glob("*.toml")))
def test_example_configs_are_valid(path: Path) -> None:
    config = load_config(path, environ={})
    assert config.sources
    assert config.renditions


def test_render_worker_defaults_follow_the_pool() -> None:
    from batchthumb.config import LimitsConfig
    from batchthumb.resources import ContainerLimits

    cpus = ContainerLimits.read().cpus
    assert LimitsConfig().render_worker_count() == cpus + 1  # threads: one spare
    assert LimitsConfig(render_pool="process").render_worker_count() == cpus
    assert LimitsConfig(render_workers=7).render_worker_count() == 7


@pytest.mark.parametrize("store", ["source", "target"])
def test_a_memory_store_url_is_refused(tmp_path: Path, store: str) -> None:
    """RAM is no place for renditions a registry records as done: the in-memory store is the
    unit tests' own, built by them, never named by a config."""
    text = GOOD.replace(
        'url = "s3://media/"' if store == "source" else 'url = "s3://media/renditions/"',
        'url = "memory://default/"',
    )
    with pytest.raises(ConfigError, match=rf"stores\.{store}.*scheme must be s3:// or file://"):
        load_config(write(tmp_path, text), environ={})
