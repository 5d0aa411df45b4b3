"""Run the test suite while other processes burn the CPU: a test that fails only here has a bug.

    python -m tests.under_load                 # 2 burners, the suite 3 times in a row
    python -m tests.under_load --burners 4 --runs 1 -- -k purge

Each burner is a separate process spinning on one core; they start before the first run and
are killed after the last, whatever happens. Exits non-zero as soon as one run fails.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

BURN = "while True: pass"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burners", type=int, default=2, help="CPU-bound processes to run beside the suite")
    parser.add_argument("--runs", type=int, default=3, help="times in a row the suite must pass")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args()
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(args.burners)]
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            print(f"== under load ({args.burners} burners): run {run} of {args.runs}", flush=True)
            result = subprocess.run([sys.executable, "-m", "pytest", *args.pytest_args], check=False)
            took = time.monotonic() - started
            print(f"== run {run}: exit {result.returncode} in {took:.0f}s", flush=True)
            if result.returncode != 0:
                return result.returncode
        return 0
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


if __name__ == "__main__":
    sys.exit(main())
