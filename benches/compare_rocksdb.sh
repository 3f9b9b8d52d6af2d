#!/usr/bin/env bash
# Runs RocksDB's db_bench and Speedlayer's db_bench-compatible driver (`dbbench`) with the
# same workloads and flags in the same run, then prints ops/sec of each and their ratio,
# and per run the peak RSS and database size of both, as Markdown (stdout). Progress goes
# to stderr.
#
#   NUM=500000 benches/compare_rocksdb.sh
#   NUM=5000000 benches/compare_rocksdb.sh                  # does not fit the block cache
#   PHASES=main BENCHMARKS=readseq,readrandom NUM=500000 benches/compare_rocksdb.sh
#
# Each tool runs once per phase (a separate process, so each phase has its own peak RSS):
#   main     --benchmarks=$BENCHMARKS --threads=1 on a fresh database
#   seek     seekrandom --seek_nexts=$SEEK_NEXTS --reads=$SEEK_READS --use_existing_db=1
#            (on main's database)
#   threads  $THREADED_BENCHMARKS --threads=$THREADS --use_existing_db=1 (on main's
#            database; each thread does --reads=$THREAD_READS operations)
#   sync     fillrandom --sync=1 --num=$SYNC_NUM on a fresh database of its own
#
# Environment:
#   NUM                 keys (default 1000000)
#   PHASES              comma-separated subset of main,seek,threads,sync (default: all)
#   BENCHMARKS          main's list (default fillseq,fillrandom,readrandom,readseq,overwrite,
#                       readwhilewriting; readwhilewriting = 1 reader + 1 writer)
#   SEEK_NEXTS          default 100;  SEEK_READS  default min(NUM, 100000)
#   THREADS             default 2;    THREADED_BENCHMARKS default readrandom;
#   THREAD_READS        default NUM (per thread, as db_bench)
#   SYNC_NUM            default 10000 (every write is an fsync on both sides)
#   BLOCK_SIZE          if set, --block_size=$BLOCK_SIZE for both tools (default: both use
#                       db_bench's default, 4096; the engine's product default is 65536)
#   KEEP=1              keep the temporary directory (databases and raw outputs)
#   DBBENCH             our driver's binary (default: build it in release from this tree)
# Every run of both tools gets: --key_size=24 --value_size=100 --compression_type=lz4
# --disable_wal=0 and --sync=0 (except phase sync).
# Installs Debian's rocksdb-tools (which ships db_bench) if db_bench is missing.
set -euo pipefail

NUM="${NUM:-1000000}"
PHASES="${PHASES:-main,seek,threads,sync}"
BENCHMARKS="${BENCHMARKS:-fillseq,fillrandom,readrandom,readseq,overwrite,readwhilewriting}"
SEEK_NEXTS="${SEEK_NEXTS:-100}"
THREADS="${THREADS:-2}"
THREADED_BENCHMARKS="${THREADED_BENCHMARKS:-readrandom}"
SYNC_NUM="${SYNC_NUM:-10000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { echo "[compare_rocksdb] $*" >&2; }

number() {
    case "$2" in
    '' | *[!0-9]*)
        log "$1 must be a non-negative integer, got '$2'"
        exit 2
        ;;
    esac
}
number NUM "$NUM"
number SEEK_NEXTS "$SEEK_NEXTS"
number THREADS "$THREADS"
number SYNC_NUM "$SYNC_NUM"
SEEK_READS="${SEEK_READS:-$((NUM < 100000 ? NUM : 100000))}"
THREAD_READS="${THREAD_READS:-$NUM}"
number SEEK_READS "$SEEK_READS"
number THREAD_READS "$THREAD_READS"
for p in ${PHASES//,/ }; do
    case "$p" in
    main | seek | threads | sync) ;;
    *)
        log "unknown phase '$p' in PHASES (main, seek, threads, sync)"
        exit 2
        ;;
    esac
done
has_phase() { [[ ",$PHASES," == *",$1,"* ]]; }
if { has_phase seek || has_phase threads; } && ! has_phase main; then
    log "phases seek and threads read main's database: add main to PHASES"
    exit 2
fi

# 1. RocksDB's db_bench, from Debian's rocksdb-tools (idempotent).
# shellcheck source=benches/ensure_db_bench.sh
source "$ROOT/benches/ensure_db_bench.sh"

# 2. Our driver, in release (or a binary given in DBBENCH, e.g. one built at an earlier
#    commit, for a before/after pair of runs in one session).
if [ -n "${DBBENCH:-}" ]; then
    log "using dbbench at $DBBENCH"
else
    log "building dbbench (release)"
    (cd "$ROOT" && cargo build --release -q -p speedlayer-benches --bin dbbench)
    DBBENCH="$TARGET_DIR/release/dbbench"
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/compare_rocksdb.XXXXXX")"
if [ "${KEEP:-0}" = 1 ]; then
    log "keeping $WORK"
else
    trap 'rm -rf "$WORK"' EXIT
fi

COMMON=(--key_size=24 --value_size=100 --compression_type=lz4 --disable_wal=0)
if [ -n "${BLOCK_SIZE:-}" ]; then
    number BLOCK_SIZE "$BLOCK_SIZE"
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
    LOADS+=("$name $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo n/a)")
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

# phase NAME DBDIR ARGS...: runs both tools, RocksDB first, each on its own DBDIR.
PHASE_LIST=()
phase() {
    local name="$1" db="$2"
    shift 2
    PHASE_LIST+=("$name")
    echo "$*" >"$WORK/$name.flags"
    run "rocksdb-$name" "$DB_BENCH" "${COMMON[@]}" "$@" "--db=$WORK/rocksdb-$db"
    du -sb "$WORK/rocksdb-$db" | cut -f1 >"$WORK/rocksdb-$name.size"
    run "speedlayer-$name" "$DBBENCH" "${COMMON[@]}" "$@" "--db=$WORK/speedlayer-$db"
    du -sb "$WORK/speedlayer-$db" | cut -f1 >"$WORK/speedlayer-$name.size"
}

# Rows of the results table: "phase|benchmark|label".
ROWS=()
if has_phase main; then
    phase main main "--benchmarks=$BENCHMARKS" "--num=$NUM" --sync=0 --threads=1
    IFS=',' read -r -a LIST <<<"$BENCHMARKS"
    for b in "${LIST[@]}"; do ROWS+=("main|$b|$b"); done
fi
if has_phase seek; then
    phase seek main --benchmarks=seekrandom "--num=$NUM" --sync=0 --threads=1 \
        "--seek_nexts=$SEEK_NEXTS" "--reads=$SEEK_READS" --use_existing_db=1
    ROWS+=("seek|seekrandom|seekrandom (seek_nexts=$SEEK_NEXTS, $SEEK_READS seeks)")
fi
if has_phase threads; then
    phase threads main "--benchmarks=$THREADED_BENCHMARKS" "--num=$NUM" --sync=0 \
        "--threads=$THREADS" "--reads=$THREAD_READS" --use_existing_db=1
    IFS=',' read -r -a LIST <<<"$THREADED_BENCHMARKS"
    for b in "${LIST[@]}"; do ROWS+=("threads|$b|$b (threads=$THREADS)"); done
fi
if has_phase sync && [ "$SYNC_NUM" -gt 0 ]; then
    phase sync sync --benchmarks=fillrandom "--num=$SYNC_NUM" --sync=1 --threads=1
    ROWS+=("sync|fillrandom|fillrandom (sync=1, $SYNC_NUM keys)")
fi

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

size_mib() { awk '{ printf "%.1f", $1 / 1048576 }' "$WORK/$1.size" 2>/dev/null || echo "n/a"; }

echo
echo "Machine: $(nproc) cores, $(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)"
echo "RocksDB: $("$DB_BENCH" --version 2>/dev/null | head -n1 || echo unknown) ($DB_BENCH)"
echo "Command: NUM=$NUM PHASES=$PHASES BENCHMARKS=$BENCHMARKS SEEK_NEXTS=$SEEK_NEXTS SEEK_READS=$SEEK_READS THREADS=$THREADS THREADED_BENCHMARKS=$THREADED_BENCHMARKS THREAD_READS=$THREAD_READS SYNC_NUM=$SYNC_NUM${BLOCK_SIZE:+ BLOCK_SIZE=$BLOCK_SIZE} benches/compare_rocksdb.sh"
echo "Flags (both tools): ${COMMON[*]}"
for p in "${PHASE_LIST[@]}"; do echo "  $p: $(cat "$WORK/$p.flags")"; done
grep -E '^WAL:' "$WORK/speedlayer-${PHASE_LIST[0]}.out" | sed 's/^/Speedlayer /' || true
echo
echo "| benchmark | rocksdb ops/s | speedlayer ops/s | ratio | notes |"
echo "|---|---:|---:|---:|---|"
for row in "${ROWS[@]}"; do
    IFS='|' read -r p b label <<<"$row"
    r="$(ops_per_sec "$WORK/rocksdb-$p.out" "$b")"
    s="$(ops_per_sec "$WORK/speedlayer-$p.out" "$b")"
    ratio="n/a"
    if [ -n "$r" ] && [ -n "$s" ] && [ "$r" != 0 ]; then
        ratio="$(awk -v r="$r" -v s="$s" 'BEGIN { printf "%.2fx", s / r }')"
    fi
    note=""
    fr="$(found "$WORK/rocksdb-$p.out" "$b")"
    fs="$(found "$WORK/speedlayer-$p.out" "$b")"
    if [ -n "$fr$fs" ]; then note="rocksdb $fr, speedlayer $fs"; fi
    echo "| $label | ${r:-missing} | ${s:-missing} | $ratio | $note |"
done
echo
echo "| run | rocksdb peak RSS MiB | speedlayer peak RSS MiB | rocksdb DB MiB | speedlayer DB MiB |"
echo "|---|---:|---:|---:|---:|"
for p in "${PHASE_LIST[@]}"; do
    echo "| $p | $(peak_rss_mib "rocksdb-$p") | $(peak_rss_mib "speedlayer-$p") | $(size_mib "rocksdb-$p") | $(size_mib "speedlayer-$p") |"
done
echo
echo "DB size is \`du -sb\` of the database directory after the run (WAL and logs included)."
echo "Load average (1/5/15 min) at the start of each run: $(printf '%s; ' "${LOADS[@]}")"
