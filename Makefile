# ferry — the two commands are `make run` and `make test`; everything else is a building block.
SHELL := /bin/bash
# Every service and test starts Python processes: let them keep compiled bytecode (some environments turn it off,
# which makes each backend start recompile every module).
unexport PYTHONDONTWRITEBYTECODE
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.8
STAMP := $(VENV)/.ferry-setup
PY_SOURCES := requirements/dev.lock contract/pyproject.toml importer/pyproject.toml backend/pyproject.toml cli/pyproject.toml
JS_DIR := frontend-bridge
JS_STAMP := $(JS_DIR)/node_modules/.ferry-setup

.PHONY: setup setup-py setup-js system-deps run test test-py test-faults test-js lint lint-py lint-js lock schema bench-import bench-realtime bench-scale bench-e2e clean

setup: setup-py setup-js

setup-py: $(STAMP)

$(STAMP): $(PY_SOURCES)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync -q --compile-bytecode --python $(BIN)/python requirements/dev.lock
	@touch $@

# npm ci only when the lock file changed; the page is rebuilt every time (about a second).
setup-js: $(JS_STAMP)
	@if [ -f $(JS_DIR)/package.json ]; then cd $(JS_DIR) && npm run --silent --if-present build; fi

$(JS_STAMP): $(wildcard $(JS_DIR)/package.json $(JS_DIR)/package-lock.json)
	@if [ -f $(JS_DIR)/package-lock.json ]; then \
	  cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error && mkdir -p node_modules && touch node_modules/.ferry-setup; \
	fi

system-deps:
	@scripts/system-deps.sh

# Recompute the pinned lock files after changing a pyproject (needs network to PyPI).
lock: $(STAMP)
	$(BIN)/uv pip compile -q --python-version 3.11 requirements/dev.in -o requirements/dev.lock
	$(BIN)/uv pip compile -q --python-version 3.11 requirements/importer.in -o requirements/importer.lock

schema: setup-py
	$(BIN)/ferry-contract callback -o $(JS_DIR)/schema/callback.schema.json

run: system-deps setup
	$(BIN)/python scripts/run.py

test: system-deps setup lint test-js test-py

# Fast checks first: they fail in seconds, before the suites start engines and browsers.
PY_PACKAGES := contract/ferry_contract importer/ferry_importer backend/ferry_backend cli/ferry_cli
lint: lint-py lint-js

lint-py: setup-py
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy --config-file mypy.ini $(PY_PACKAGES)

lint-js: setup-js
	@if [ -f $(JS_DIR)/package.json ]; then cd $(JS_DIR) && npm run --silent lint; fi

test-js: setup-js
	@if [ -f $(JS_DIR)/package.json ]; then cd $(JS_DIR) && npm test --silent; fi

test-py: setup-py
	$(BIN)/pytest

# The fault campaign alone (crashes, outages, full disks on real processes); make test runs it too.
test-faults: system-deps setup-py
	$(BIN)/pytest -m fault --durations=0

bench-import: system-deps setup-py
	$(BIN)/python importer/bench/bench_import.py

bench-realtime: system-deps setup-py
	$(BIN)/python backend/bench/bench_realtime.py

# Import while the upload arrives vs after it arrived (BENCH_E2E_ARGS="--sizes 100m" for the short run).
bench-e2e: system-deps setup-py
	$(BIN)/python bench/e2e/bench_e2e.py $(BENCH_E2E_ARGS)

bench-scale: system-deps setup-py
	$(BIN)/python bench/scale/bench_scale.py --rounds 3

clean:
	-python3 scripts/engine.py down --name test
	rm -rf $(VENV) .pytest_cache
