# batchthumb — everything a fresh machine needs beyond Python itself is installed here.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: install demo test test-loaded lint bench bench-quick clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: install
	$(BIN)/batchthumb demo

test: install
	$(BIN)/python -m pytest

# The suite three times in a row while two other processes burn the CPU.
test-loaded: install
	$(BIN)/python -m tests.under_load --burners 2 --runs 3

lint: install
	$(BIN)/ruff check batchthumb tests bench
	$(BIN)/ruff format --check batchthumb tests bench
	$(BIN)/mypy

bench: install
	$(BIN)/python -m bench
	$(BIN)/python -m bench.dropin
	$(BIN)/python -m bench.listings

bench-quick: install
	$(BIN)/python -m bench --quick
	$(BIN)/python -m bench.dropin --quick
	$(BIN)/python -m bench.listings --quick

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
