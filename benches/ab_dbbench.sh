#!/usr/bin/env bash
# A/B of two `dbbench` builds against RocksDB's db_bench, in the same run, alternating
# RocksDB / A / B each round, so a change to the write or read path is judged by ratios
# taken minutes apart on the same machine.
#
#   benches/ab_dbbench.sh A_BINARY B_BINARY
#
# Environment: NUM (default 500000), ROUNDS (default 3), BENCHMARKS (default
# fillseq,fillrandom). Same flags as compare_rocksdb.sh. Prints one Markdown row per
# benchmark and round: RocksDB ops/s, A and B ops/s with their ratio to RocksDB, and B/A.
set -euo pipefail
A="${1:?usage: ab_dbbench.sh A_BINARY B_BINARY}"
B="${2:?usage: ab_dbbench.sh A_BINARY B_BINARY}"
NUM="${NUM:-500000}"
ROUNDS="${ROUNDS:-3}"
BENCHMARKS="${BENCHMARKS:-fillseq,fillrandom}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
log() { echo "[ab_dbbench] $*" >&2; }
# shellcheck source=benches/ensure_db_bench.sh
source "$ROOT/benches/ensure_db_bench.sh"
COMMON=("--benchmarks=$BENCHMARKS" "--num=$NUM" --key_size=24 --value_size=100
    --compression_type=lz4 --sync=0 --disable_wal=0 --threads=1)
WORK="$(mktemp -d "${TMPDIR:-/tmp}/ab_dbbench.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
declare -A OPS
for r in $(seq 1 "$ROUNDS"); do
    for who in rocksdb a b; do
        case $who in rocksdb) bin="$DB_BENCH" ;; a) bin="$A" ;; b) bin="$B" ;; esac
        log "round $r: $who"
        rm -rf "$WORK/db"
        while read -r name ops; do
            OPS["$r/$who/$name"]="$ops"
        done < <("$bin" "${COMMON[@]}" --db="$WORK/db" 2>/dev/null |
            awk '/ops\/sec/ {for (i = 1; i <= NF; i++) if ($i ~ /^ops\/sec/) print $1, $(i-1)}')
    done
done
echo "| benchmark | round | RocksDB ops/s | A ops/s (×RocksDB) | B ops/s (×RocksDB) | B/A |"
echo "|---|---:|---:|---:|---:|---:|"
IFS=, read -ra names <<<"$BENCHMARKS"
for name in "${names[@]}"; do
    for r in $(seq 1 "$ROUNDS"); do
        awk -v n="$name" -v r="$r" -v k="${OPS[$r/rocksdb/$name]:-0}" \
            -v a="${OPS[$r/a/$name]:-0}" -v b="${OPS[$r/b/$name]:-0}" 'BEGIN {
            printf "| %s | %d | %.0f | %.0f (%.2f×) | %.0f (%.2f×) | %.3f |\n",
                n, r, k, a, (k ? a / k : 0), b, (k ? b / k : 0), (a ? b / a : 0) }'
    done
done
