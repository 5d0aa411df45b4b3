"""What the process may use: CPUs and memory as its container (cgroup) limits them.

A pod limited to 4 CPUs on a 64-core node sees 64 cores in ``os.cpu_count()`` and in its
affinity; only the cgroup's CPU quota says 4. The same goes for memory. Both cgroup
versions are read the way the kernel exposes them: the mounts in ``/proc/self/mountinfo``,
the process's cgroup in ``/proc/self/cgroup``, and from that cgroup up to the mount's root
the smallest limit (``cpu.max`` and ``memory.max`` on v2; ``cpu.cfs_quota_us`` /
``cpu.cfs_period_us`` and ``memory.limit_in_bytes`` on v1).

Everything is read under ``root`` (``/`` in production), so tests build a container's
files in a directory and read them as it would.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

UNLIMITED_V1 = 1 << 62
"""cgroup v1 writes "no memory limit" as a number near 2**63 (page-rounded)."""


@dataclass(frozen=True)
class Mount:
    root: PurePosixPath
    """The cgroup this mount shows at its mount point (``/`` unless a namespace hides the rest)."""
    mountpoint: PurePosixPath
    version: int
    controllers: frozenset[str]


@dataclass(frozen=True)
class ContainerLimits:
    affinity: int
    """CPUs the process may be scheduled on."""
    cpu_quota: float | None
    """CPUs' worth of time per period the cgroup allows; None: no quota."""
    memory_limit: int | None
    """Bytes the cgroup allows; None: no limit."""
    machine_memory: int

    @classmethod
    def read(cls, root: Path = Path("/"), affinity: int | None = None) -> ContainerLimits:
        reader = _CgroupReader(root)
        return cls(
            affinity=affinity if affinity is not None else _affinity(),
            cpu_quota=reader.cpu_quota(),
            memory_limit=reader.memory_limit(),
            machine_memory=_machine_memory(),
        )

    @property
    def cpus(self) -> int:
        """Whole CPUs to plan work for: the quota rounded up, never above the affinity."""
        if self.cpu_quota is None:
            return self.affinity
        return max(1, min(self.affinity, math.ceil(self.cpu_quota - 1e-9)))

    @property
    def memory(self) -> int:
        """The memory this process may use: the cgroup's limit, else the machine's."""
        if self.memory_limit is None:
            return self.machine_memory
        return min(self.memory_limit, self.machine_memory)

    def describe_cpus(self) -> str:
        if self.cpu_quota is None:
            return f"{self.affinity} CPUs (affinity; no cgroup CPU quota)"
        return f"cgroup CPU quota {self.cpu_quota:g} of {self.affinity} CPUs"

    def describe_memory(self) -> str:
        if self.memory_limit is None or self.memory_limit >= self.machine_memory:
            return f"the machine's {format_bytes(self.machine_memory)}"
        return f"the cgroup memory limit {format_bytes(self.memory_limit)}"


def _affinity() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _machine_memory() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4 << 30  # a platform without sysconf: assume a small machine


class _CgroupReader:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.mounts = self._mounts()
        self.cgroups = self._cgroups()

    def _read(self, path: PurePosixPath | str) -> str | None:
        try:
            return (self.root / str(path).lstrip("/")).read_text()
        except (OSError, UnicodeDecodeError):
            return None

    def _mounts(self) -> list[Mount]:
        mounts = []
        for line in (self._read("/proc/self/mountinfo") or "").splitlines():
            left, sep, right = line.partition(" - ")
            fields, after = left.split(), right.split()
            if not sep or len(fields) < 5 or len(after) < 3:
                continue
            fstype, options = after[0], set(after[2].split(","))
            if fstype == "cgroup2":
                mounts.append(Mount(PurePosixPath(fields[3]), PurePosixPath(fields[4]), 2, frozenset()))
            elif fstype == "cgroup":
                mounts.append(
                    Mount(PurePosixPath(fields[3]), PurePosixPath(fields[4]), 1, frozenset(options))
                )
        return mounts

    def _cgroups(self) -> dict[str, PurePosixPath]:
        """The process's cgroup by controller ("" for v2's unified hierarchy)."""
        found: dict[str, PurePosixPath] = {}
        for line in (self._read("/proc/self/cgroup") or "").splitlines():
            parts = line.split(":", 2)
            if len(parts) != 3:
                continue
            _, controllers, path = parts
            for controller in controllers.split(",") if controllers else [""]:
                found[controller] = PurePosixPath(path)
        return found

    def _directories(self, controller: str) -> list[PurePosixPath]:
        """The process's cgroup directory for ``controller`` and its ancestors up to the mount."""
        for mount in self.mounts:
            if mount.version == 1 and controller not in mount.controllers:
                continue
            cgroup = self.cgroups.get(controller if mount.version == 1 else "")
            if cgroup is None:
                continue
            try:
                relative = cgroup.relative_to(mount.root)
            except ValueError:
                # the cgroup lies outside what the mount shows (a v1 container without a
                # cgroup namespace sees its own cgroup at the mount point)
                relative = PurePosixPath(".")
            directory = mount.mountpoint / relative
            chain = [directory]
            while directory != mount.mountpoint and directory.parent != directory:
                directory = directory.parent
                chain.append(directory)
            return chain
        return []

    def cpu_quota(self) -> float | None:
        quotas = []
        for directory in self._directories("cpu"):
            v2 = self._read(directory / "cpu.max")
            if v2 is not None:
                quota, _, period = v2.strip().partition(" ")
                if quota != "max" and _number(quota) and _number(period) and int(period) > 0:
                    quotas.append(int(quota) / int(period))
                continue
            quota_us, period_us = (
                self._read(directory / "cpu.cfs_quota_us"),
                self._read(directory / "cpu.cfs_period_us"),
            )
            if quota_us is not None and period_us is not None:
                quota, period = quota_us.strip(), period_us.strip()
                if _number(quota) and _number(period) and int(quota) > 0 and int(period) > 0:
                    quotas.append(int(quota) / int(period))
        return min(quotas) if quotas else None

    def memory_limit(self) -> int | None:
        limits = []
        for directory in self._directories("memory"):
            value = self._read(directory / "memory.max")
            if value is None:
                value = self._read(directory / "memory.limit_in_bytes")
            if value is not None and _number(value.strip()) and int(value) < UNLIMITED_V1:
                limits.append(int(value))
        return min(limits) if limits else None


def _number(text: str) -> bool:
    return text.isdigit()


# -- byte sizes ------------------------------------------------------------------------

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1000,
    "kb": 1000,
    "ki": 1024,
    "kib": 1024,
    "m": 1000**2,
    "mb": 1000**2,
    "mi": 1024**2,
    "mib": 1024**2,
    "g": 1000**3,
    "gb": 1000**3,
    "gi": 1024**3,
    "gib": 1024**3,
    "t": 1000**4,
    "tb": 1000**4,
    "ti": 1024**4,
    "tib": 1024**4,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*$")


def parse_bytes(text: str) -> int:
    """``"1GiB"``, ``"512Mi"`` (Kubernetes' spelling), ``"2G"``, ``"1500000"`` -> bytes."""
    match = _SIZE.match(text)
    unit = match.group(2).lower() if match else ""
    if match is None or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a size: a number and a unit such as 512MiB, 1GiB or 2G")
    return int(float(match.group(1)) * _UNITS[unit])


def format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(count) < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")
