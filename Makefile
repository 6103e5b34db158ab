# Every target sets up what it needs from the lockfiles, so a fresh checkout
# needs nothing but Python 3.11+, make and apt.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
TOOLS := .cache/tools
UV_VERSION := 0.13.8
UV := $(TOOLS)/bin/uv
SYNCED := $(VENV)/.synced
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

export UV_PROJECT_ENVIRONMENT := $(abspath $(VENV))
export UV_PYTHON_DOWNLOADS := never

.PHONY: demo test test-unit lint bench peers venv clean contracts

demo: $(SYNCED)
	$(VENV)/bin/sedis demo

test: $(SYNCED) peers
	$(PY) -m pytest $(PYTEST_ARGS)

test-unit: $(SYNCED)
	$(PY) -m pytest -m "not integration and not slow" $(PYTEST_ARGS)

lint: $(SYNCED)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache

bench: $(SYNCED) peers
	$(PY) -m bench.store
	$(PY) -m bench.ledger
	$(PY) -m bench.audit
	$(PY) -m bench.pipeline
	$(PY) -m bench.watch
	$(PY) -m bench.server

peers:
	bash tools/install-peers.sh

# Rebuilds the committed contract artifact with the pinned npm solc; `make test`
# fails when the committed artifact differs from what the source compiles to.
contracts: peers
	node contracts/compile.cjs

venv: $(SYNCED)

$(UV):
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "sedis needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(SYNCED): uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --extra dev --compile-bytecode --python $(PYTHON) --quiet
	$(PY) -m compileall -q src >/dev/null
	touch $@

clean:
	rm -rf $(VENV) .cache/tools .pytest_cache .mypy_cache .ruff_cache
