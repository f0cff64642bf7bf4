# Hooklab: `make run` sets up and starts the server; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
HOST   ?= 127.0.0.1
# Processes the tests run on (pytest-xdist); 0 runs them in this one.
TEST_WORKERS ?= 3
# Hooklab's own modules. An editable install leaves them uncompiled, and where Python may not
# write its cache (PYTHONDONTWRITEBYTECODE, a read-only tree) every start would compile them
# again (~0.2 s of a server's start): compiled here, as pip does for an installed package.
SOURCES := app bin_server cli client sender shared
BYTECODE = $(PY) -m compileall -q $(SOURCES)

.PHONY: run test lint format bench clean install screenshots

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=77" wheel
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

install: $(VENV)/.installed

run: $(VENV)/.installed
	$(BYTECODE)
	$(VENV)/bin/hooklab serve --host $(HOST) --port $(PORT)

test: $(VENV)/.installed
	$(BYTECODE)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest -q -n $(TEST_WORKERS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(VENV)/.installed
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

screenshots: $(VENV)/.installed
	HOOKLAB_SCREENSHOTS=1 $(PY) -m pytest -q tests/browser

bench: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(BYTECODE)
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info hooklab.db hooklab.db-wal hooklab.db-shm
