#!/bin/sh
# The container image's install, as a script the Dockerfile runs and the tests run too
# (tests/test_install.py), so what is tested is what the image does.
#
#   docker/install.sh PREFIX [LOCK]
#
# A virtual environment at PREFIX with exactly the locked dependencies (hashes checked, no
# resolution), then batchthumb itself without dependencies. LOCK: requirements/runtime.txt
# (production: no test tools, no embedded Postgres); requirements/demo.txt adds pgserver.
set -eu
prefix=$1
source_dir=$(cd "$(dirname "$0")/.." && pwd)
lock=${2:-$source_dir/requirements/runtime.txt}
python3 -m venv "$prefix"
"$prefix/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r "$lock"
"$prefix/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$source_dir"
"$prefix/bin/python" -m pip check
"$prefix/bin/batchthumb" --version
