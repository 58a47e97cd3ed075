# Targets mirror CI: .ci/run calls `make ci`, which is `make test`.
CARGO ?= cargo
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
PY_TOOLS := maturin==1.16.0 pytest==9.2.0 mypy==2.4.1 "moto[server]==5.2.5"
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# The Python and Node suites start this Linear-compatible server.
export LINEAR_OAUTH_TESTSERVER := $(TARGET_DIR)/debug/linear-oauth-testserver

.PHONY: all setup venv build smoke test test-rust test-python test-node bench lint ci

all: build

setup:
	rustup target add wasm32-wasip2

# One venv for the Python host's build and tests and for moto.
venv:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(PY_TOOLS)

build: setup
	$(CARGO) build

# The main job: `linear-oauth smoke` on the embedded default (file store,
# local Linear-compatible server).
smoke: setup
	$(CARGO) run -p linear-oauth-cli -- smoke

# Every test. moto (the AWS emulator) runs on 127.0.0.1 for the whole run.
test: setup venv
	VENV=$(VENV) tests/with-moto.sh $(MAKE) --no-print-directory test-rust test-python test-node

test-rust:
	$(CARGO) test

# `pip install ./hosts/python` builds the extension with the component
# embedded (release by default; here the dev profile, which reuses what
# `cargo test` built). stubtest checks the hand-written .pyi against it.
test-python:
	$(CARGO) build -p linear-oauth-testserver
	MATURIN_PEP517_ARGS="--profile dev" $(PY) -m pip install --quiet --disable-pip-version-check ./hosts/python
	cd hosts/python && $(PY) -m mypy.stubtest linear_oauth
	cd hosts/python && $(PY) -m mypy -p linear_oauth
	cd hosts/python && $(PY) -m pytest -q

test-node:
	$(CARGO) build -p linear-oauth-testserver
	cd hosts/node && npm ci --no-audit --no-fund && npm run build:debug && npm test
	git diff --exit-code -- hosts/node/index.d.ts  # the committed types match the build

bench: setup venv
	$(CARGO) build -p linear-oauth-testserver
	$(CARGO) build --release -p linear-oauth-host --example bench
	VENV=$(VENV) tests/with-moto.sh $(TARGET_DIR)/release/examples/bench
	$(PY) -m pip install --quiet --disable-pip-version-check ./hosts/python
	$(PY) hosts/python/bench.py
	cd hosts/node && npm ci --no-audit --no-fund && npm run build && npm run bench

lint:
	$(CARGO) clippy --all-targets -- -D warnings

ci: test
