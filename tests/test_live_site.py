"""A live site beside batchthumb: pages, uploads, in-place replacements and deletes, while
``generate``, ``regenerate`` and the purges run on the same database and media directory.

The site is the test Django site running for about 30 seconds (``probe live``): three
threads serving pages through the library (which renders what it does not find), one admin
thread uploading, replacing photos in place and deleting them. Beside it, batchthumb cycles
through its commands as a user's cron would. Once both stop, a last page view of every photo
must find only thumbnails that exist, are the size the library makes of the **current**
source and show the current picture; no thumbnail the site made for a remaining photo was
deleted by batchthumb; batchthumb never wrote or deleted a source; and every run exited 0
or 3 with its failures explained.

sorl-thumbnail runs with its ``cached_db`` key value store on a real Redis server (the cache
batchthumb deletes keys from); easy-thumbnails with its rows, on disk.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import pyvips
import tomli_w

from batchthumb.config import DjangoConfig
from batchthumb.django.sorl import SorlRendition
from batchthumb.specs import RenditionSpec
from tests.django_site.site import ROOT, SAME_PICTURE, photo_ids, pixel_distance, probe
from tests.helpers import config_data, sql
from tests.test_easy_thumbnails import EASY, easy_site
from tests.test_easy_thumbnails import RENDITIONS as EASY_RENDITIONS
from tests.test_sorl import RENDITIONS as SORL_RENDITIONS
from tests.test_sorl import SORL, sorl_site

pytestmark = pytest.mark.anyio

TRAFFIC_S = 30
SITE_ONLY_SORL = [("small", "100x100", {"quality": 85})]
"""A size the site's templates use that the config does not manage."""
SITE_ONLY_EASY = [("small", {"size": [100, 100], "quality": 85})]
CYCLE = [
    ["generate"],
    ["regenerate"],
    ["purge", "orphans", "--older-than", "8s"],
    ["purge", "referenced", "--rendition", "crop"],
    ["generate"],
]


def cycle(config: Path, until: float, results: list[dict[str, Any]]) -> None:
    """batchthumb's commands in a loop until ``until``, as the CLI runs them; then one generate."""
    commands = iter(CYCLE * 100)
    while time.monotonic() < until:
        args = next(commands)
        run(config, args, results)
    run(config, ["generate"], results)


def run(config: Path, args: list[str], results: list[dict[str, Any]]) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "batchthumb", "--config", str(config), *args, "--verbose", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    results.append(
        {"args": args, "rc": completed.returncode, "stderr": completed.stderr, "json": completed.stdout}
    )


def write_config(path: Path, dsn: str, media: Path, library: str, cache: str | None) -> Path:
    renditions = SORL_RENDITIONS if library == "sorl" else EASY_RENDITIONS
    django: dict[str, Any] = {"sorl": {"cache": cache}} if cache else {}
    data = config_data(dsn, media, None, renditions, extra={"django": django}, fingerprint_column=None)
    data["sources"] = [{k: v for k, v in s.items() if v is not None} for s in data["sources"]]
    path.write_text(tomli_w.dumps(data))
    return path


def site_only_names(library: str, source_keys: list[str]) -> set[str]:
    """The names of the site-only thumbnails of these photos (what batchthumb must never delete)."""
    if library != "sorl":
        return {f"{key}.100x100_q85.jpg" for key in source_keys}
    rendition = SorlRendition.model_validate(
        {"preset": "sorl", "geometry": SITE_ONLY_SORL[0][1], "options": SITE_ONLY_SORL[0][2]}
    )
    spec = RenditionSpec.from_config("small", rendition, DjangoConfig())
    return {spec.object_key("photos", key) for key in source_keys}


def fitted(width: int, height: int, box: int, upscale: bool) -> tuple[int, int]:
    scale = min(box / width, box / height)
    if scale > 1 and not upscale:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


@pytest.mark.parametrize("library", ["sorl", "easy_thumbnails"])
async def test_a_live_site_beside_every_command(
    library: str, pg_dsn: str, tmp_path: Path, site_cache: str
) -> None:
    media = tmp_path / "media"
    if library == "sorl":
        await sorl_site(pg_dsn, media)
        site = {"BT_SORL": json.dumps(SORL[:2] + SITE_ONLY_SORL), "BT_CACHE_URL": site_cache}
        config = write_config(tmp_path / "batchthumb.toml", pg_dsn, media, library, site_cache)
    else:
        await easy_site(pg_dsn, media)
        site = {"BT_EASY": json.dumps(EASY[:2] + SITE_ONLY_EASY)}
        config = write_config(tmp_path / "batchthumb.toml", pg_dsn, media, library, None)
    ever: set[str] = {row["image"] for row in await sql(pg_dsn, "SELECT image FROM gallery_photo")}

    results: list[dict[str, Any]] = []
    started = time.monotonic()
    runner = threading.Thread(target=cycle, args=(config, started + TRAFFIC_S, results))
    runner.start()
    try:
        traffic = probe(pg_dsn, media, "live", library, str(TRAFFIC_S), env=site)
    finally:
        runner.join()

    # the site did what a site does, and batchthumb ran every command beside it
    # the admin goes on after an error of its own (reported here in full if it keeps failing)
    kinds = {action[0] for action in traffic["actions"]}
    assert {"upload", "replace", "delete"} <= kinds, (traffic["actions"], traffic["admin_errors"])
    assert len(traffic["admin_errors"]) < len(traffic["actions"]) / 4, traffic["admin_errors"]
    assert traffic["views"] > 20, traffic
    # A page view can fail on the site's own races (a photo deleted under it; two threads
    # making the same thumbnail, one reading the other's half-written file through Django's
    # non-atomic save): the state once all is quiet, below, is what batchthumb answers for.
    assert len(traffic["errors"]) < traffic["views"] / 10, traffic["errors"]
    assert {" ".join(result["args"][:2]) for result in results} >= {"generate", "purge orphans"}
    for result in results:
        assert result["rc"] in (0, 3), (result["args"], result["stderr"][-3000:])
        summary = json.loads(result["json"].strip().splitlines()[-1])
        if result["rc"] == 3:
            assert summary["failed"] and summary["failure_examples"], result["stderr"][-3000:]  # explained
    ever |= {action[1] for action in traffic["actions"]}

    # batchthumb wrote and deleted no source, and no thumbnail the site made for a remaining photo
    remaining = {row["image"] for row in await sql(pg_dsn, "SELECT image FROM gallery_photo")}
    protected = site_only_names(library, sorted(remaining))
    for result in results:
        for line in result["stderr"].splitlines():
            words = line.split()
            if words and words[0] in ("deleted", "wrote"):
                (name,) = [word for word in words if word.startswith("file://")]
                key = name.split(str(media) + "/", 1)[-1]
                assert key not in ever, line
                assert key not in protected, line

    # a last page view of every photo: what the library returns exists and is current
    ids = await photo_ids(pg_dsn)
    mode = "sorl" if library == "sorl" else "easy"
    served = probe(pg_dsn, media, mode, env=site)
    # upright, as both libraries turn a source by its EXIF orientation
    current = {key: pyvips.Image.new_from_file(str(media / key)).autorot() for key in remaining}
    problems = []
    for key in sorted(remaining):
        source = current[key]
        oriented = (source.width, source.height)
        for rendition, found in served["photos"][str(ids[key])].items():
            if rendition in ("tag", "url"):
                continue
            name, width, height = found
            path = media / name
            if not path.is_file():
                problems.append(f"{key} {rendition}: {name} does not exist")
                continue
            image = pyvips.Image.new_from_file(str(path))
            if (image.width, image.height) != (width, height):
                problems.append(
                    f"{key} {rendition}: {name} is {image.width}x{image.height}, not {width}x{height}"
                )
            if rendition == "fit":
                expected = fitted(*oriented, 300, upscale=library == "sorl")
                if (width, height) != expected:
                    problems.append(f"{key} fit: {width}x{height}, the current source makes {expected}")
                    continue
                reference = media.parent / f"reference-{ids[key]}.png"
                source.thumbnail_image(width, height=height, size="force").pngsave(str(reference))
                distance = pixel_distance(path, reference, 1.0)
                if distance > SAME_PICTURE * 2:
                    problems.append(f"{key} fit: shows another picture ({distance:.1f} levels apart)")
    assert not problems, "\n".join(problems)
