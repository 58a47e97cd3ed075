# Targets mirror CI (.ci/run calls `make ci`).
CARGO ?= cargo

.PHONY: all build test smoke bench lint ci setup

all: build

setup:
	rustup target add wasm32-wasip2

build: setup
	$(CARGO) build

test: setup
	$(CARGO) test

smoke: setup
	$(CARGO) run -p linear-oauth-cli -- smoke

lint:
	$(CARGO) clippy --all-targets -- -D warnings

bench: setup
	$(CARGO) run --release -p linear-oauth-host --example bench

ci: test
