#!/usr/bin/env bash
# The whole pipeline as one benchmark (issue 16): simulator → collector (tail, file
# channel) → tansu → ingest worker (sync puts, rules, TTL sets) → region server, all on
# this machine at once. Prints progress every 5 s and a summary table: sustained events/s,
# p50/p99/max event-to-queryable latency (probe lines read back with Get), CPU per process
# (/proc/<pid>/stat), the bottleneck, and loss by count and checksum (last line
# `loss: N events (...)`; exit status 1 on any loss).
#
#   benches/pipeline_bench.sh                       # 50,000 lines/s for 300 s, release
#   DURATION=20 RATE=2000 benches/pipeline_bench.sh # a smoke run
#
# Settings (environment, defaults in brackets): RATE [50000] lines/s, DURATION [300] s,
# CARS [2500], PARTITIONS [4], PROBE_EVERY_MS [100], DRAIN_LIMIT [300] s,
# PROFILE [release] (debug: use target/debug, no release build), BENCH_DIR [a temp dir,
# removed]. Record `uptime` next to the figures: other load skews them.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
BIN=${CARGO_TARGET_DIR:-$PWD/target}/$PROFILE
if [ "$PROFILE" = release ]; then
  cargo build --release -p speedlayer-server --bin speedlayer-server \
    -p speedlayer-ingest --bin speedlayer-ingest -p speedlayer-benches --bin pipeline_bench
fi
echo "load before: $(uptime)"
args=(--rate "${RATE:-50000}" --duration "${DURATION:-300}" --cars "${CARS:-2500}"
  --partitions "${PARTITIONS:-4}" --probe-every-ms "${PROBE_EVERY_MS:-100}"
  --drain-limit "${DRAIN_LIMIT:-300}")
if [ -n "${BENCH_DIR:-}" ]; then args+=(--dir "$BENCH_DIR"); fi
status=0
"$BIN/pipeline_bench" "${args[@]}" || status=$?
echo "load after: $(uptime)"
exit "$status"
