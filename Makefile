# Targets mirror CI (.ci/run calls `make ci`).
CARGO ?= cargo

.PHONY: all build test smoke bench lint ci setup

all: build

setup:
	rustup target add wasm32-wasip2

build: setup
	$(CARGO) build

# Every Rust test; the aws store's tests run against moto on 127.0.0.1.
test: setup
	tests/with-moto.sh $(CARGO) test

smoke: setup
	$(CARGO) run -p linear-oauth-cli -- smoke

lint:
	$(CARGO) clippy --all-targets -- -D warnings

bench: setup
	$(CARGO) run --release -p linear-oauth-host --example bench

ci: test
