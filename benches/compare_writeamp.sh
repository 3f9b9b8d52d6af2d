#!/usr/bin/env bash
# Write amplification of the telemetry workload on our engine (`telemetry_wa`, date-tiered
# and exploring compaction) beside RocksDB db_bench fillrandom's, in the same run, with the
# same number of rows, key size and total user bytes. Prints a Markdown table (stdout);
# progress and the raw outputs' locations go to stderr.
#
#   benches/compare_writeamp.sh                       # scaled default (1000 cars x 1800 s)
#   benches/compare_writeamp.sh --cars 1000 --seconds 86400 --ttl-s 86400   # issue size
#
# Arguments are passed to telemetry_wa unchanged (see `telemetry_wa --help`).
# Environment:
#   FLUSH_MIB   memstore flush size for ours = --write_buffer_size for RocksDB (default 8)
#   KEEP=1      keep the temporary directory (databases and raw outputs)
#
# Definitions (both sides exclude the WAL):
#   ours     WA = (bytes of flushed files + bytes of compaction outputs) / user bytes, where
#            user bytes = row + qualifier + value of every cell (the engine's DbStats).
#   RocksDB  WA = (rocksdb.flush.write.bytes + rocksdb.compact.write.bytes) / (num x
#            (key_size + value_size)); also shown over rocksdb.bytes.written (which adds
#            RocksDB's per-entry write-batch overhead) and the "Sum" line's W-Amp from the
#            compaction stats (written / flushed bytes, RocksDB's own definition).
# db_bench runs fillrandom,flush,waitforcompaction,stats so it is charged for its last flush
# and the compactions it caused, like ours (which flushes and waits for compactions).
# Installs Debian's rocksdb-tools (which ships db_bench) if db_bench is missing.
set -euo pipefail

FLUSH_MIB="${FLUSH_MIB:-8}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { echo "[compare_writeamp] $*" >&2; }

case "$FLUSH_MIB" in
'' | *[!0-9]*)
    log "FLUSH_MIB must be a positive integer, got '$FLUSH_MIB'"
    exit 2
    ;;
esac

# shellcheck source=benches/ensure_db_bench.sh
source "$ROOT/benches/ensure_db_bench.sh"

log "building telemetry_wa (release)"
(cd "$ROOT" && cargo build --release -q -p speedlayer-benches --bin telemetry_wa)
OURS="$TARGET_DIR/release/telemetry_wa"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/compare_writeamp.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then log "keeping $WORK"; else trap 'rm -rf "$WORK"' EXIT; fi

# 1. Ours (both policies unless the arguments choose one).
log "running telemetry_wa --flush-mib $FLUSH_MIB $*  (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$OURS" --flush-mib "$FLUSH_MIB" --db "$WORK/ours" "$@" | tee "$WORK/ours.out" >&2

# field NAME LINE: value of NAME=... in a RESULT line.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }
mapfile -t RESULTS < <(grep '^RESULT ' "$WORK/ours.out")
if [ "${#RESULTS[@]}" -eq 0 ]; then
    log "telemetry_wa printed no RESULT line"
    exit 1
fi
FIRST="${RESULTS[0]}"
ROWS="$(field rows "$FIRST")"
ROW_BYTES="$(field row_bytes "$FIRST")"
KEY_BYTES="$(field key_bytes "$FIRST")"
VALUE_BYTES=$((ROW_BYTES - KEY_BYTES))

# 2. RocksDB: same rows, same key size, same user bytes per row (our mean, rounded), lz4,
#    same write buffer.
ROCKS_ARGS=(
    --benchmarks=fillrandom,flush,waitforcompaction,stats --statistics
    "--num=$ROWS" "--key_size=$KEY_BYTES" "--value_size=$VALUE_BYTES"
    --compression_type=lz4 "--write_buffer_size=$((FLUSH_MIB * 1024 * 1024))"
    --disable_wal=1 --threads=1 "--db=$WORK/rocksdb"
)
log "running db_bench ${ROCKS_ARGS[*]}  (load: $(cut -d' ' -f1-3 /proc/loadavg))"
"$DB_BENCH" "${ROCKS_ARGS[@]}" >"$WORK/rocksdb.out" 2>"$WORK/rocksdb.err"

stat_count() { sed -n "s/^$1 COUNT : \([0-9]*\).*/\1/p" "$WORK/rocksdb.out" | head -n1; }
R_USER_WRITTEN="$(stat_count rocksdb.bytes.written)"
R_FLUSH="$(stat_count rocksdb.flush.write.bytes)"
R_COMPACT="$(stat_count rocksdb.compact.write.bytes)"
if [ -z "$R_USER_WRITTEN" ] || [ -z "$R_FLUSH" ] || [ -z "$R_COMPACT" ]; then
    log "could not find rocksdb statistics in $WORK/rocksdb.out"
    exit 1
fi
# The W-Amp column of the last "Sum" line of the compaction stats (12th field).
R_SUM_WAMP="$(awk '$1 == "Sum" { w = $12 } END { print (w == "" ? "n/a" : w) }' "$WORK/rocksdb.out")"
R_USER=$((ROWS * ROW_BYTES))
R_FILL="$(sed -n 's/^fillrandom *: *\([0-9.]*\) micros\/op \([0-9]*\) ops\/sec.*/\2/p' "$WORK/rocksdb.out")"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print "n/a" }'; }
mib() { awk -v a="$1" 'BEGIN { printf "%.1f", a / 1048576 }'; }

echo
echo "Telemetry write amplification: $ROWS rows, key $KEY_BYTES B, $ROW_BYTES user B/row, lz4, flush/write buffer $FLUSH_MIB MiB, WAL excluded"
echo
echo "| engine / policy | user MiB | flush MiB | compaction MiB | write amp | space amp | get p99 us | compactions |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for r in "${RESULTS[@]}"; do
    echo "| speedlayer $(field policy "$r") | $(mib "$(field user_bytes "$r")") | $(mib "$(field flush_bytes "$r")") | $(mib "$(field compact_bytes "$r")") | $(field wa "$r") | $(field sa "$r") | $(field p99_us "$r") | $(field compactions "$r") ($(field dropped_files "$r") dropped whole) |"
done
echo "| rocksdb fillrandom | $(mib "$R_USER") | $(mib "$R_FLUSH") | $(mib "$R_COMPACT") | $(ratio $((R_FLUSH + R_COMPACT)) "$R_USER") | n/a | n/a | n/a |"
echo
echo "RocksDB: over rocksdb.bytes.written ($(mib "$R_USER_WRITTEN") MiB) WA = $(ratio $((R_FLUSH + R_COMPACT)) "$R_USER_WRITTEN"); compaction stats Sum W-Amp (written / flushed) = $R_SUM_WAMP; fillrandom ${R_FILL:-?} ops/sec"
for r in "${RESULTS[@]}"; do
    if awk -v a="$(field wa "$r")" -v b="$(ratio $((R_FLUSH + R_COMPACT)) "$R_USER")" 'BEGIN { exit !(a <= b) }'; then
        echo "speedlayer $(field policy "$r"): WA $(field wa "$r") <= RocksDB's: goal met"
    else
        echo "speedlayer $(field policy "$r"): WA $(field wa "$r") > RocksDB's: goal NOT met"
    fi
done
