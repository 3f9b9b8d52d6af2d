#!/usr/bin/env bash
# Where the replica lag sits under a pipelined write load (issue 17: the lag of a redis
# replica behind our master at -P 32 was 2.6-7.3x Redis's own): for our master and for a
# redis-server master, each with a stock redis-server replica, redis-benchmark SADD at
# -P 32 (50 clients, N requests, default 500000) while a sampler reads both offsets and
# the kernel queues of the replication connection (`ss`): the master side's Send-Q (our
# link wrote it, the replica's kernel has not acknowledged it), the replica side's Recv-Q
# (arrived, not yet read by the replica), and the rest, still inside the master process.
# Prints, per master and round: load time, catch-up time, peak and mean lag split so.
#
#   cargo build --release -p speedlayer-server && benches/replication_lag_where.sh
#
# Environment: N (default 500000), ROUNDS (default 2), BIN (default
# target/release/speedlayer-server). Record `uptime` with the figures: on a shared machine
# the replica's scheduling dominates.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500000}
ROUNDS=${ROUNDS:-2}
BIN=${BIN:-target/release/speedlayer-server}
[[ -x $BIN ]] || { echo "build first: cargo build --release -p speedlayer-server" >&2; exit 2; }
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ping() { for _ in $(seq 200); do redis-cli -p "$1" ping 2>/dev/null | grep -q PONG && return; sleep 0.05; done; echo "no PONG on $1" >&2; exit 1; }
wait_up() { for _ in $(seq 400); do redis-cli -p "$1" info replication | grep -q master_link_status:up && return; sleep 0.05; done; echo "replica $1 never up" >&2; exit 1; }

OURS=$(free_port); REDIS=$(free_port); OURS_R=$(free_port); REDIS_R=$(free_port)
mkdir -p "$work/ours" "$work/redis" "$work/r1" "$work/r2"
"$BIN" --only-resp --resp-addr "127.0.0.1:$OURS" --data-dir "$work/ours" --appendfsync everysec \
  >/dev/null 2>"$work/ours.log" &
pids+=("$!")
redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
  --dir "$work/redis" --databases 1 >"$work/redis.log" 2>&1 &
pids+=("$!")
wait_ping "$OURS"; wait_ping "$REDIS"
redis-server --port "$OURS_R" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/r1" \
  --replicaof 127.0.0.1 "$OURS" >"$work/r1.log" 2>&1 &
pids+=("$!")
redis-server --port "$REDIS_R" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/r2" \
  --replicaof 127.0.0.1 "$REDIS" >"$work/r2.log" 2>&1 &
pids+=("$!")
wait_up "$OURS_R"; wait_up "$REDIS_R"
echo "uptime: $(uptime)"
for _ in $(seq "$ROUNDS"); do
  python3 benches/resp/replication_lag_where.py "$OURS" "$OURS_R" ours "$N"
  python3 benches/resp/replication_lag_where.py "$REDIS" "$REDIS_R" redis "$N"
done
echo "uptime: $(uptime)"
