#!/usr/bin/env bash
# Sourced by the RocksDB comparison scripts: makes sure RocksDB's `db_bench` exists
# (Debian's rocksdb-tools, installed with apt-get if missing; idempotent) and sets
# DB_BENCH to its path. Needs root or sudo only when it has to install. Uses the caller's
# `log` function.

if ! command -v db_bench >/dev/null 2>&1; then
    log "db_bench not found; installing rocksdb-tools with apt-get"
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        log "need root or sudo to install rocksdb-tools"
        exit 1
    fi
    "${SUDO[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq rocksdb-tools >&2
fi
DB_BENCH="$(command -v db_bench)"
