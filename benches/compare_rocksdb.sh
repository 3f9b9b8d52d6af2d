#!/usr/bin/env bash
# Runs RocksDB's db_bench and Speedlayer's db_bench-compatible driver (`dbbench`) with the
# same workloads and flags in the same run, then prints ops/sec of each, their ratio and
# both peak RSS figures as a Markdown table (stdout). Progress goes to stderr.
#
#   NUM=1000000 benches/compare_rocksdb.sh
#
# Environment:
#   NUM            keys per benchmark (default 1000000)
#   BENCHMARKS     comma-separated list (default fillseq,fillrandom,readrandom,readseq)
#   BLOCK_SIZE     if set, --block_size=$BLOCK_SIZE for both tools (default: both use
#                  db_bench's default, 4096; the engine's product default is 65536)
#   KEEP=1         keep the temporary directory (databases and raw outputs)
# Both tools get: --key_size=24 --value_size=100 --compression_type=lz4 --sync=0
# --disable_wal=0 --threads=1 and a fresh --db under one temporary directory.
# Installs Debian's rocksdb-tools (which ships db_bench) if db_bench is missing.
set -euo pipefail

NUM="${NUM:-1000000}"
BENCHMARKS="${BENCHMARKS:-fillseq,fillrandom,readrandom,readseq}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { echo "[compare_rocksdb] $*" >&2; }

case "$NUM" in
'' | *[!0-9]*)
    log "NUM must be a positive integer, got '$NUM'"
    exit 2
    ;;
esac

# 1. RocksDB's db_bench, from Debian's rocksdb-tools (idempotent).
# shellcheck source=benches/ensure_db_bench.sh
source "$ROOT/benches/ensure_db_bench.sh"

# 2. Our driver, in release.
log "building dbbench (release)"
(cd "$ROOT" && cargo build --release -q -p speedlayer-benches --bin dbbench)
DBBENCH="$TARGET_DIR/release/dbbench"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/compare_rocksdb.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then
    log "keeping $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi

COMMON=(
    "--benchmarks=$BENCHMARKS" "--num=$NUM" --key_size=24 --value_size=100
    --compression_type=lz4 --sync=0 --disable_wal=0 --threads=1
)
if [ -n "${BLOCK_SIZE:-}" ]; then
    case "$BLOCK_SIZE" in
    *[!0-9]*)
        log "BLOCK_SIZE must be a number of bytes, got '$BLOCK_SIZE'"
        exit 2
        ;;
    esac
    COMMON+=("--block_size=$BLOCK_SIZE")
fi

if [ -x /usr/bin/time ]; then HAVE_TIME=1; else HAVE_TIME=0; fi
# Load averages when each run starts: the figures are only as quiet as the machine.
LOADS=()

# run NAME BINARY ARGS...: stdout to $WORK/NAME.out, stderr to $WORK/NAME.err,
# /usr/bin/time -v report to $WORK/NAME.time when available.
run() {
    local name="$1"
    shift
    log "running $name: $*"
    LOADS+=("$name start $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)")
    local status=0
    if [ "$HAVE_TIME" = 1 ]; then
        /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || status=$?
    else
        "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" || status=$?
    fi
    if [ "$status" -ne 0 ]; then
        log "$name failed with status $status; last lines of its output:"
        tail -n 20 "$WORK/$name.err" >&2
        exit 1
    fi
    grep -E '^[a-z0-9]+ +: ' "$WORK/$name.out" | sed "s/^/[$name] /" >&2 || true
}

run rocksdb "$DB_BENCH" "${COMMON[@]}" "--db=$WORK/rocksdb"
run speedlayer "$DBBENCH" "${COMMON[@]}" "--db=$WORK/speedlayer"

# ops/sec of benchmark $2 in report file $1 (db_bench line format), or empty.
ops_per_sec() {
    awk -v b="$2" '$1 == b && $2 == ":" {
        for (i = 1; i <= NF; i++) if ($i ~ /^ops\/sec;?$/) { print $(i - 1); exit }
    }' "$1"
}

# "(N of M found)" of benchmark $2, or empty.
found() {
    awk -v b="$2" '$1 == b && $2 == ":" && match($0, /\([0-9]+ of [0-9]+ found\)/) {
        print substr($0, RSTART, RLENGTH); exit
    }' "$1"
}

# Peak RSS in MiB of run $1: /usr/bin/time's maximum resident set size, else the
# driver's own VmHWM line (RocksDB's db_bench prints none).
peak_rss_mib() {
    local kib=""
    if [ -f "$WORK/$1.time" ]; then
        kib="$(awk -F': ' '/Maximum resident set size/ { print $2 }' "$WORK/$1.time")"
    fi
    if [ -z "$kib" ]; then
        kib="$(awk '/^Peak RSS \(VmHWM\):/ { print $4 }' "$WORK/$1.out")"
    fi
    if [ -n "$kib" ]; then awk -v k="$kib" 'BEGIN { printf "%.1f", k / 1024 }'; else echo "n/a"; fi
}

db_size() { du -sh "$WORK/$1" 2>/dev/null | cut -f1 || echo "n/a"; }

echo
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "RocksDB: $("$DB_BENCH" --version 2>/dev/null | head -n1 || echo unknown) ($DB_BENCH)"
echo "Command: NUM=$NUM BENCHMARKS=$BENCHMARKS${BLOCK_SIZE:+ BLOCK_SIZE=$BLOCK_SIZE} benches/compare_rocksdb.sh"
echo "Flags:   ${COMMON[*]}"
grep -E '^WAL:' "$WORK/speedlayer.out" | sed 's/^/Speedlayer /' || true
echo
echo "| benchmark | rocksdb ops/s | speedlayer ops/s | ratio | notes |"
echo "|---|---:|---:|---:|---|"
IFS=',' read -r -a LIST <<<"$BENCHMARKS"
for b in "${LIST[@]}"; do
    r="$(ops_per_sec "$WORK/rocksdb.out" "$b")"
    s="$(ops_per_sec "$WORK/speedlayer.out" "$b")"
    ratio="n/a"
    if [ -n "$r" ] && [ -n "$s" ] && [ "$r" != 0 ]; then
        ratio="$(awk -v r="$r" -v s="$s" 'BEGIN { printf "%.2fx", s / r }')"
    fi
    note=""
    fr="$(found "$WORK/rocksdb.out" "$b")"
    fs="$(found "$WORK/speedlayer.out" "$b")"
    if [ -n "$fr$fs" ]; then note="rocksdb $fr, speedlayer $fs"; fi
    echo "| $b | ${r:-missing} | ${s:-missing} | $ratio | $note |"
done
echo
echo "Peak RSS: rocksdb $(peak_rss_mib rocksdb) MiB, speedlayer $(peak_rss_mib speedlayer) MiB"
echo "DB size at end: rocksdb $(db_size rocksdb), speedlayer $(db_size speedlayer)"
echo "Load average (1/5/15 min) at start: ${LOADS[0]:-n/a}; ${LOADS[1]:-n/a}"
