# Speedlayer — one entry point for newcomers and CI.
#   make test   install what is missing, then fmt, clippy, and the whole test suite
#   make run    the region server on loopback ports, data outside the checkout
#               (RUN_DATA_DIR); server flags in ARGS, e.g.
#               make run ARGS="--data-dir /tmp/x --grpc-addr 127.0.0.1:26020 --resp-addr off"
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

# `make run`'s data directory when ARGS names neither --data-dir nor --config (a config
# file's data_dir must not be overridden by this default): outside the checkout.
RUN_DATA_DIR ?= $(or $(XDG_DATA_HOME),$(HOME)/.local/share)/speedlayer/data
# `release` (default) or `dev`: the cargo profile `make run` builds and runs.
RUN_PROFILE ?= release
RUN_DEFAULT_DIR := $(if $(findstring --data-dir,$(ARGS))$(findstring --config,$(ARGS)),,--data-dir $(RUN_DATA_DIR))

# One build for every documented step: `make run`, the README tour and scripts/demo.sh all
# build the whole workspace's binaries with the same command, so whichever runs first
# compiles and the others compile nothing (building one package alone would change
# feature unification and rebuild shared crates).
RUN_BIN_DIR := $(or $(CARGO_TARGET_DIR),target)/$(if $(filter dev,$(RUN_PROFILE)),debug,$(RUN_PROFILE))

run:
	@$(if $(RUN_DEFAULT_DIR),echo "make run: data directory $(RUN_DATA_DIR) (ARGS=\"--data-dir DIR\" to change it)")
	cargo build --profile $(RUN_PROFILE) --workspace --bins
	$(RUN_BIN_DIR)/speedlayer-server $(RUN_DEFAULT_DIR) $(ARGS)

clean:
	cargo clean
