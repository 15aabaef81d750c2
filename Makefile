# Two commands on a fresh machine: `make run` and `make test`.
# Both install from the hash-pinned locks in requirements/ (refresh them on purpose with `make lock`).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUN := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
LOCK_RUN := requirements/run.lock
LOCK_TEST := requirements/test.lock
UV_VERSION := 0.13.8
export RULEBILL_HOME ?= $(CURDIR)/var

.PHONY: run test lock lock-check stubs proto-baseline bench clean system-deps

$(BIN)/python:
	$(PY) -m venv $(VENV)

# the locks must have been resolved from today's pyproject.toml (one line and exit 1 otherwise)
lock-check:
	@$(PY) requirements/lock.py --check

$(STAMP_RUN): $(LOCK_RUN) pyproject.toml setup.py engine/mediation/_csvblock.c engine/mediation/_cdrid.c engine/rating/_rowkernel.c engine/rating/_chunkrows.c engine/_replaylines.c engine/billing/_usagecsv.c servers/_wire.c store/_copytext.c engine/_untrack.h | $(BIN)/python lock-check
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(LOCK_RUN)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

$(STAMP_TEST): $(LOCK_TEST) pyproject.toml setup.py engine/mediation/_csvblock.c engine/mediation/_cdrid.c engine/rating/_rowkernel.c engine/rating/_chunkrows.c engine/_replaylines.c engine/billing/_usagecsv.c servers/_wire.c store/_copytext.c engine/_untrack.h | $(BIN)/python lock-check
	$(BIN)/python -m pip install -q --require-hashes --no-deps -r $(LOCK_TEST)
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@ $(STAMP_RUN)

## make system-deps: the Debian libraries PDF bills need (weasyprint: Pango, HarfBuzz subsetting, a font), installed
## with apt-get when missing and when run as root; otherwise it says what to install
SYSTEM_PACKAGES := libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core
system-deps:
	@missing=$$(for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing >/dev/null; \
	else echo "PDF bills need: $$missing (apt-get install them; without them PDF downloads are refused)"; fi

## make run: install, migrate the embedded SQLite database, load plans/ and rules/ and the sample billing accounts,
## serve gRPC on 127.0.0.1:50051 with the billing scheduler on (every 10 minutes)
run: export RULEBILL_BILLING_SCHEDULER_SECONDS ?= 600
run: $(STAMP_RUN) system-deps
	$(BIN)/rulebill db upgrade
	$(BIN)/rulebill bootstrap
	exec $(BIN)/rulebill serve

## make test: install the test lock, start a throw-away PostgreSQL (when its binaries are here), run the whole suite
## on SQLite and PostgreSQL and the integration tests on both event-rule backends (tests/integration/conftest.py),
## stop PostgreSQL by its PID.  The suite runs on PYTEST_WORKERS pytest-xdist workers: `auto` is one per CPU this
## process may use (at most 8, tests/conftest.py), 0 runs it in one process; PYTEST_ARGS go to pytest after it
PYTEST_WORKERS ?= auto
test: $(STAMP_TEST)
	tests/with-postgres.sh $(BIN)/python -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

## make lock: resolve pyproject.toml's ranges again into requirements/*.lock (commit the result)
lock: | $(BIN)/python
	$(BIN)/python -m pip install -q "uv==$(UV_VERSION)"
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python requirements/lock.py

## make stubs: regenerate the gRPC stubs with the locked grpcio-tools
stubs: $(STAMP_TEST)
	$(BIN)/python protos/generate.py

## make proto-baseline REASON="...": accept the current protos/ as the released API that `buf breaking` compares against
proto-baseline: $(STAMP_TEST)
	$(BIN)/python protos/buf.py baseline "$(REASON)"

bench: $(STAMP_TEST)
	$(BIN)/python -m bench.run_all $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache
