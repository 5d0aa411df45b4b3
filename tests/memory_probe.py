"""Runs one ``batchthumb generate`` in this (fresh) process and prints its memory as JSON.

    python -m tests.memory_probe CONFIG

``baseline``: the resident set once everything the run needs is imported and libvips is
started, before the run; ``peak``: the process's high-water mark (VmHWM) after it. Used by
``test_budget.py`` and ``bench.budget``; a fresh process, so that nothing an earlier test
allocated counts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def main(config: str) -> None:
    from batchthumb import render
    from batchthumb.cli import main as cli

    render.configure()
    render.check_libvips()
    baseline = status_kib("VmRSS") * 1024
    try:
        cli(["--config", config, "generate", "--json"], standalone_mode=False)
        code = 0
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    print(json.dumps({"baseline": baseline, "peak": status_kib("VmHWM") * 1024, "exit": code}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
