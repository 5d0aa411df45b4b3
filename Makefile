# batchthumb — everything a fresh machine needs beyond Python itself is installed here.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed
DEMO_STAMP = $(VENV)/.installed-demo
# Installs come from the lock files in requirements/ (exact versions, hashes checked):
# dev.txt for the tests, lint and bench; demo.txt for `make demo` (what running needs, plus
# the embedded Postgres); runtime.txt for production and the container image.
PIP     = $(BIN)/python -m pip install --quiet --disable-pip-version-check
LOCKED  = $(PIP) --require-hashes --no-deps -r
COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes --universal --python-version 3.11

.PHONY: install demo demo-stop test test-unit test-loaded lint docs reference bench bench-quick lock clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements/dev.txt
	@# the tests' Redis server (the site's shared cache in the live-site tests): Debian's package
	command -v redis-server >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq redis-server; }
	$(PYTHON) -m venv $(VENV)
	$(LOCKED) requirements/dev.txt
	$(PIP) --no-deps -e .
	$(BIN)/python -m pip check
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml requirements/demo.txt
	$(PYTHON) -m venv $(VENV)
	$(LOCKED) requirements/demo.txt
	$(PIP) --no-deps -e .
	touch $(DEMO_STAMP)

demo: $(DEMO_STAMP)
	$(BIN)/batchthumb demo --workdir demo-output --keep-running

demo-stop:
	$(BIN)/batchthumb demo --workdir demo-output --stop

# After a change to the dependencies in pyproject.toml: the three lock files, consistent
# (runtime and demo are resolved within dev's versions).
lock: install
	$(COMPILE) --extra dev --extra demo -o requirements/dev.txt
	$(COMPILE) --extra demo -c requirements/dev.txt -o requirements/demo.txt
	$(COMPILE) -c requirements/dev.txt -o requirements/runtime.txt

test: install docs
	$(BIN)/python -m pytest

# The documentation site, into site/: --strict fails on a broken link or anchor, or a page
# left out of the navigation. The generated reference pages are checked by tests/test_docs.py.
docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The reference pages generated from the code (config keys, commands, exit statuses, the
# registries), after changing a model, an option or a migration: on BATCHTHUMB_TEST_DSN's
# Postgres, else an embedded one.
reference: install
	$(BIN)/python -m tools.reference

# The tests that need neither Postgres nor S3 nor Redis: under a minute on 2 cores.
test-unit: install
	$(BIN)/python -m pytest -m unit

# The suite three times in a row while two other processes burn the CPU.
test-loaded: install
	$(BIN)/python -m tests.under_load --burners 2 --runs 3

lint: install
	$(BIN)/hadolint Dockerfile
	$(BIN)/ruff check batchthumb tests bench tools
	$(BIN)/ruff format --check batchthumb tests bench tools
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench
	$(BIN)/python -m bench.dropin
	$(BIN)/python -m bench.listings
	$(BIN)/python -m bench.srcset
	$(BIN)/python -m bench.wagtail

bench-quick: install
	$(BIN)/python -m bench --quick
	$(BIN)/python -m bench.dropin --quick
	$(BIN)/python -m bench.listings --quick
	$(BIN)/python -m bench.srcset --quick
	$(BIN)/python -m bench.wagtail --quick

clean:
	rm -rf $(VENV) build site *.egg-info .pytest_cache .mypy_cache .ruff_cache
