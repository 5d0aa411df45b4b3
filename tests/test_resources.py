"""Sized by its container: CPUs and memory read from cgroup files as a container runtime writes
them (v1 and v2), under a test root, and ``render_workers = "auto"`` / ``limits.memory`` following."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchthumb.config import LimitsConfig
from batchthumb.errors import ConfigError
from batchthumb.resources import ContainerLimits, parse_bytes
from tests.helpers import make_config

GIB = 1024**3

V2_MOUNTINFO = "29 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw\n"
V1_MOUNTINFO = (
    "31 23 0:28 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755\n"
    "32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct\n"
    "35 31 0:32 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory\n"
)


def write(root: Path, path: str, text: str) -> None:
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)


def v2_pod(root: Path, cpu_max: str, memory_max: str, node_cpu_max: str = "max") -> None:
    """A Kubernetes pod on cgroup v2: the container's cgroup under the pod's, under kubepods."""
    pod = "/kubepods.slice/kubepods-pod1.slice"
    write(root, "/proc/self/mountinfo", V2_MOUNTINFO)
    write(root, "/proc/self/cgroup", f"0::{pod}/cri-containerd-abc.scope\n")
    write(root, "/sys/fs/cgroup/kubepods.slice/cpu.max", f"{node_cpu_max} 100000\n")
    write(root, f"/sys/fs/cgroup{pod}/cpu.max", "max 100000\n")
    write(root, f"/sys/fs/cgroup{pod}/cri-containerd-abc.scope/cpu.max", f"{cpu_max} 100000\n")
    write(root, f"/sys/fs/cgroup{pod}/memory.max", "max\n")
    write(root, f"/sys/fs/cgroup{pod}/cri-containerd-abc.scope/memory.max", f"{memory_max}\n")


def test_cgroup_v2_quota_sets_the_render_workers(tmp_path: Path) -> None:
    # limited to 4 CPUs on a 64-core node: 4 renders (5 threads), not 65
    v2_pod(tmp_path, "400000", str(2 * GIB))
    limits = ContainerLimits.read(tmp_path, affinity=64)
    assert limits.cpu_quota == 4.0
    assert limits.cpus == 4
    assert LimitsConfig().render_worker_count(limits) == 5
    assert LimitsConfig(render_pool="process").render_worker_count(limits) == 4
    assert LimitsConfig(render_workers=3).render_worker_count(limits) == 3  # an explicit count wins
    assert limits.memory_limit == 2 * GIB
    assert LimitsConfig().memory_budget(limits) == GIB  # half the container's memory
    assert LimitsConfig(memory=parse_bytes("512MiB")).memory_budget(limits) == 512 * 1024**2
    assert limits.describe_cpus() == "cgroup CPU quota 4 of 64 CPUs"


def test_cgroup_v2_fractions_round_up_and_ancestors_limit_too(tmp_path: Path) -> None:
    v2_pod(tmp_path, "150000", "max")
    assert ContainerLimits.read(tmp_path, affinity=64).cpus == 2  # 1.5 CPUs: two renders share them
    v2_pod(tmp_path, "max", "max", node_cpu_max="300000")
    limits = ContainerLimits.read(tmp_path, affinity=64)
    assert (limits.cpu_quota, limits.cpus) == (3.0, 3)  # the kubepods slice's quota holds
    assert limits.memory_limit is None
    assert limits.memory == limits.machine_memory
    v2_pod(tmp_path, "800000", "max")
    assert ContainerLimits.read(tmp_path, affinity=2).cpus == 2  # never above the affinity


def test_cgroup_v1_quota_and_memory_limit(tmp_path: Path) -> None:
    # a v1 container without a cgroup namespace: /proc/self/cgroup names the host's path,
    # the mount shows the container's own cgroup
    write(tmp_path, "/proc/self/mountinfo", V1_MOUNTINFO)
    write(tmp_path, "/proc/self/cgroup", "4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n")
    write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "200000\n")
    write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n")
    write(tmp_path, "/sys/fs/cgroup/memory/memory.limit_in_bytes", f"{3 * GIB}\n")
    limits = ContainerLimits.read(tmp_path, affinity=64)
    assert (limits.cpus, limits.memory_limit) == (2, 3 * GIB)
    assert LimitsConfig().render_worker_count(limits) == 3
    # with a namespace, the path is relative to the mount's root; -1 is no quota, and v1's
    # "unlimited" is a number near 2**63
    write(tmp_path, "/proc/self/cgroup", "4:memory:/\n3:cpu,cpuacct:/\n")
    write(tmp_path, "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n")
    write(tmp_path, "/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
    limits = ContainerLimits.read(tmp_path, affinity=64)
    assert (limits.cpu_quota, limits.cpus, limits.memory_limit) == (None, 64, None)


def test_no_cgroup_files_means_the_affinity_and_the_machine(tmp_path: Path) -> None:
    limits = ContainerLimits.read(tmp_path, affinity=6)
    assert (limits.cpu_quota, limits.memory_limit, limits.cpus) == (None, None, 6)
    assert LimitsConfig().memory_budget(limits) == limits.machine_memory // 2


def test_memory_sizes_in_the_config(tmp_path: Path) -> None:
    assert parse_bytes("1GiB") == GIB
    assert parse_bytes("512Mi") == 512 * 1024**2
    assert parse_bytes("2G") == 2 * 10**9
    assert parse_bytes("1.5GiB") == int(1.5 * GIB)
    dsn = "postgresql://x@127.0.0.1/db"
    assert make_config(dsn, tmp_path, tmp_path / "out", limits={"memory": "1GiB"}).limits.memory == GIB
    for bad in ("lots", "1 parsec", "1MiB", -5):
        with pytest.raises(ConfigError, match=r"limits\.memory"):
            make_config(dsn, tmp_path, tmp_path / "out", limits={"memory": bad})
