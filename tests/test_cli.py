"""The command line as a user runs it: a subprocess, a config file, exit statuses, --json."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from batchthumb.queries import migrations
from batchthumb.samples import sample_bytes
from tests.helpers import batchthumb, create_photo_table, sql, write_config, write_sources

RENDITIONS = {
    "thumb": {"mode": "crop", "width": 64, "height": 64, "format": "webp"},
    "medium": {"width": 200},
}


@pytest.fixture
def setup(empty_pg_dsn: str, tmp_path: Path) -> Path:
    """A config file over five sources and a bad one; the registry not yet created."""
    media, out = tmp_path / "media", tmp_path / "out"
    keys = write_sources(
        media,
        [(f"a/{i}.jpg", sample_bytes(320, 240, "jpeg", seed=i)) for i in range(5)]
        + [("bad.jpg", b"GIF89a-no")],
    )
    asyncio.run(create_photo_table(empty_pg_dsn, keys))
    return write_config(tmp_path / "batchthumb.toml", empty_pg_dsn, media, out, RENDITIONS, limits={})


def test_full_cycle_through_the_command_line(setup: Path) -> None:
    init = batchthumb(setup, "init")
    assert init.returncode == 0, init.stderr
    latest = migrations()[-1][0]
    assert f"migrated from version 0 to {latest}" in init.stderr
    assert f"up to date (version {latest})" in batchthumb(setup, "init").stderr

    first = batchthumb(setup, "generate", "--json")
    assert first.returncode == 3, first.stderr  # finished, but one source failed
    summary = json.loads(first.stdout)
    assert summary["command"] == "generate"
    assert (summary["written"], summary["failed"], summary["dry_run"]) == (10, 1, False)
    assert summary["bytes_written"] > 0
    assert "bad.jpg" in first.stderr  # the failure is named, with its reason, in one line
    assert "failed photos: bad.jpg: RenderError: gifload_source: no frames in GIF" in first.stderr

    second = batchthumb(setup, "generate", "--json")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout)["written"] == 0

    status = batchthumb(setup, "status", "--json")
    assert status.returncode == 0, status.stderr
    rows = {row["rendition"]: row for row in json.loads(status.stdout)["renditions"]}
    assert (rows["thumb"]["done"], rows["thumb"]["missing"], rows["thumb"]["failed"]) == (5, 1, 1)

    # a size change through the environment; regenerate --dry-run lists, then the real run rebuilds
    env = {"BATCHTHUMB_RENDITIONS__THUMB__WIDTH": "32"}
    dry = batchthumb(setup, "regenerate", "--dry-run", env=env)
    assert dry.returncode == 0, dry.stderr
    assert dry.stderr.count("would write photos/thumb") == 5
    real = batchthumb(setup, "regenerate", "--json", "--verbose", env=env)
    assert real.returncode == 0, real.stderr
    assert (json.loads(real.stdout)["written"], json.loads(real.stdout)["deleted"]) == (5, 5)
    assert real.stderr.count("deleted superseded") == 5


def test_status_lists_the_failing_sources(setup: Path, empty_pg_dsn: str) -> None:
    assert batchthumb(setup, "init").returncode == 0
    assert batchthumb(setup, "status", "--failures").stdout.strip() == "no failing sources"
    asyncio.run(sql(empty_pg_dsn, "INSERT INTO gallery_photo (image, updated_at) VALUES ('gone.jpg', now())"))
    assert batchthumb(setup, "generate").returncode == 3
    assert batchthumb(setup, "generate").returncode == 3  # the missing source is tried again

    listed = batchthumb(setup, "status", "--failures", "--json")
    assert listed.returncode == 0, listed.stderr
    failures = {f["source_key"]: f for f in json.loads(listed.stdout)["failures"]}
    assert set(failures) == {"bad.jpg", "gone.jpg"}
    bad, gone = failures["bad.jpg"], failures["gone.jpg"]
    assert (bad["source_set"], bad["error_class"], bad["permanent"], bad["attempts"]) == (
        "photos",
        "RenderError",
        True,
        1,  # permanent: the second run did not fetch it again
    )
    assert bad["message"] == "gifload_source: no frames in GIF"
    assert (gone["error_class"], gone["permanent"], gone["attempts"]) == ("ObjectNotFound", False, 2)
    assert gone["last_seen"] > bad["last_seen"]

    newest = batchthumb(setup, "status", "--failures", "1")
    assert newest.returncode == 0, newest.stderr
    assert newest.stdout.splitlines()[0] == "photos: gone.jpg"
    assert "retried each run; 2 attempts" in newest.stdout
    assert "bad.jpg" not in newest.stdout
    assert batchthumb(setup, "status", "--failures", "--runs").returncode == 2


def test_config_errors_exit_2_and_name_the_key(setup: Path) -> None:
    setup.write_text(setup.read_text().replace("width = 200", "widht = 200"))
    result = batchthumb(setup, "generate")
    assert result.returncode == 2
    assert f"error: {setup}: renditions.medium.widht: unknown key" in result.stderr.splitlines()
    assert "Traceback" not in result.stderr


def test_run_aborted_is_exit_1_without_traceback(setup: Path, tmp_path: Path) -> None:
    text = setup.read_text()
    start = text.index('dsn = "') + len('dsn = "')
    end = text.index('"', start)
    setup.write_text(text[:start] + "postgresql://app:topsecret@127.0.0.1:1/app" + text[end:])
    result = batchthumb(setup, "generate")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot connect to postgresql://app:***@127.0.0.1:1/app")
    assert "topsecret" not in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


def test_purges_through_the_command_line(setup: Path) -> None:
    assert batchthumb(setup, "init").returncode == 0
    assert batchthumb(setup, "generate").returncode == 3  # bad.jpg

    refused = batchthumb(setup, "purge", "referenced", "--max-delete", "3")
    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        "error: purge referenced would delete 10 objects, more than --max-delete 3: nothing was deleted"
    )

    dry = batchthumb(setup, "purge", "referenced", "--rendition", "thumb", "--dry-run", "--verbose")
    assert dry.returncode == 0, dry.stderr
    listed = [line for line in dry.stderr.splitlines() if line.startswith("would delete")]
    assert len(listed) == 5
    assert all(line.endswith(" bytes)") for line in listed)

    real = batchthumb(setup, "purge", "referenced", "--keys", "-", "--json", input="a/0.jpg\na/1.jpg\n")
    assert real.returncode == 0, real.stderr
    summary = json.loads(real.stdout)
    assert (summary["command"], summary["deleted"], summary["rows_removed"]) == ("purge referenced", 4, 4)

    cleared = batchthumb(setup, "clear", "--json")
    assert json.loads(cleared.stdout)["rows_removed"] == 6
    orphans = batchthumb(setup, "purge", "orphans", "--older-than", "0s", "--json")
    assert orphans.returncode == 0, orphans.stderr
    assert json.loads(orphans.stdout)["deleted"] == 6  # nothing references them any more

    bad = batchthumb(setup, "purge", "orphans", "--older-than", "soon")
    assert bad.returncode == 2
    assert "--older-than 'soon'" in bad.stderr


def test_cronjob_manifest_is_a_valid_cronjob() -> None:
    import yaml

    path = Path(__file__).parent.parent / "configs" / "cronjob-purge-orphans.yaml"
    manifest = yaml.safe_load(path.read_text())
    assert (manifest["apiVersion"], manifest["kind"]) == ("batch/v1", "CronJob")
    spec = manifest["spec"]
    assert spec["concurrencyPolicy"] == "Forbid"
    assert len(spec["schedule"].split()) == 5
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["args"][2:4] == ["purge", "orphans"]
    assert "--max-delete" in container["args"]
    env = {item["name"]: item for item in container["env"]}
    assert "secretKeyRef" in env["BATCHTHUMB_DATABASE__DSN"]["valueFrom"]
    assert pod["volumes"][0]["configMap"]["name"] == "batchthumb"
