# flare-ml: the two commands a new user needs are `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# medspaCy without its dependencies: its pin spacy<3.8 (Python < 3.12) conflicts with
# numpy 2; pyproject.toml lists what it needs at run time (docs/reports.md)
MEDSPACY := medspacy==1.3.1 medspacy_quickumls==3.2
# test processes (pytest-xdist); each starts its own session fixtures (Spark, a REST
# server, PostgreSQL), so more than the cores rarely helps. `make test WORKERS=0`: one process
WORKERS ?= 2

.PHONY: demo test test-wheel lint bench install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev,spark]"
	$(BIN)/python -m pip install --quiet --no-deps $(MEDSPACY)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/flare-ml demo

test: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m "not wheel" -n $(WORKERS)

# the package as a wheel, installed outside the source tree (tests/test_wheel.py)
test-wheel: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m wheel

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

bench: $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
