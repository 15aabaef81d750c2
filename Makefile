# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
export RULEBILL_HOME ?= $(CURDIR)/var

.PHONY: run test stubs bench clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(STAMP_RUN): pyproject.toml setup.py engine/mediation/_csvblock.c | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(STAMP_TEST): pyproject.toml setup.py engine/mediation/_csvblock.c | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@ $(STAMP_RUN)

## make run: install, migrate the embedded SQLite database, load plans/ and rules/, serve gRPC on 127.0.0.1:50051
run: $(STAMP_RUN)
	$(BIN)/rulebill db upgrade
	$(BIN)/rulebill bootstrap
	exec $(BIN)/rulebill serve

## make test: install with test extras and run the whole suite
test: $(STAMP_TEST)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

stubs: $(STAMP_TEST)
	$(BIN)/python protos/generate.py

bench: $(STAMP_TEST)
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
