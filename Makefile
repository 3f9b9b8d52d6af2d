# Speedlayer — one entry point for newcomers and CI.
#   make test   install what is missing, then fmt, clippy, and the whole test suite
#   make run    the region server on embedded defaults (./data, loopback ports)
SHELL := /bin/bash
export TANSU_BIN ?= $(shell scripts/tansu-path 2>/dev/null)

.PHONY: test deps fmt-check clippy build unit run bench clean

test: deps fmt-check clippy build unit

deps:
	@scripts/install-deps.sh
	$(eval export TANSU_BIN := $(shell scripts/tansu-path))

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

build:
	cargo build --workspace --bins

unit:
	cargo nextest run --workspace --no-tests=warn
	cargo test --workspace --doc

run:
	cargo run --release -p speedlayer-server --bin speedlayer-server

clean:
	cargo clean
