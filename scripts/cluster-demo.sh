#!/usr/bin/env bash
# Cluster mode end to end on one machine, on loopback (issue 12):
#   etcd + three speedlayer-servers sharing one storage root
#   simulator → driving.log → collector → tansu (Kafka) → ingest worker → the cluster
# `driving` is pre-split over the three servers; midway through the stream one server is
# killed with kill -9. Its regions reopen on the others (fenced, WAL replayed), the worker
# retries, and at the end every valid line is a row: the script counts and exits 1 if one
# is missing.
#
#   scripts/cluster-demo.sh                 # 100 cars, 120 simulated seconds at 10× speed
#   PROFILE=debug scripts/cluster-demo.sh   # target/debug binaries (no release build)
#
# Settings (environment variables, defaults in brackets):
#   DEMO_DIR     working directory [a new directory under ${TMPDIR:-/tmp}, printed]
#   ETCD_PORT    etcd client port on 127.0.0.1 [12379] (peer port: ETCD_PORT+1)
#   KAFKA_PORT   tansu's port [19192]
#   BASE_PORT    server i listens on BASE_PORT+10i (gRPC), +1 (HTTP), +2 (RESP) [26100]
#   CARS [100], SECONDS_SIM [120], SPEEDUP [10], SEED [7], PROFILE [release],
#   KILL_AFTER   lines stored before the kill [a third of the expected lines]
#   LEASE_TTL    the servers' lease TTL in seconds [3]
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CARS=${CARS:-100}
SECONDS_SIM=${SECONDS_SIM:-120}
SPEEDUP=${SPEEDUP:-10}
SEED=${SEED:-7}
PROFILE=${PROFILE:-release}
ETCD_PORT=${ETCD_PORT:-12379}
KAFKA_PORT=${KAFKA_PORT:-19192}
BASE_PORT=${BASE_PORT:-26100}
LEASE_TTL=${LEASE_TTL:-3}
START=20261122143000
BIN=${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE

step() { printf '\n==> %s\n' "$*"; }
grpc() { echo "127.0.0.1:$((BASE_PORT + 10 * $1))"; }
http() { echo "127.0.0.1:$((BASE_PORT + 10 * $1 + 1))"; }
resp() { echo "127.0.0.1:$((BASE_PORT + 10 * $1 + 2))"; }

busy=()
check_port() { # VAR HOST:PORT
  if (exec 3<>"/dev/tcp/${2%:*}/${2##*:}") 2>/dev/null; then busy+=("$1=$2"); fi
}
check_port ETCD_PORT "127.0.0.1:$ETCD_PORT"
check_port ETCD_PORT "127.0.0.1:$((ETCD_PORT + 1))"
check_port KAFKA_PORT "127.0.0.1:$KAFKA_PORT"
for i in 0 1 2; do
  check_port BASE_PORT "$(grpc $i)"
  check_port BASE_PORT "$(http $i)"
  check_port BASE_PORT "$(resp $i)"
done
if [ ${#busy[@]} -gt 0 ]; then
  for b in "${busy[@]}"; do
    echo "cluster-demo: ${b#*=} is already in use (moved by ${b%%=*})" >&2
  done
  exit 2
fi
command -v etcd >/dev/null || {
  echo "cluster-demo: etcd is not installed; scripts/install-deps.sh installs Debian's etcd-server" >&2
  exit 2
}

DIR=${DEMO_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/speedlayer-cluster-demo.XXXXXX")}
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
if [ -n "$(ls -A "$DIR")" ] && [ ! -e "$DIR/.speedlayer-cluster-demo" ]; then
  echo "cluster-demo: DEMO_DIR=$DIR is not empty and not an earlier cluster demo's; not clearing it" >&2
  exit 2
fi
find "$DIR" -mindepth 1 -delete
touch "$DIR/.speedlayer-cluster-demo"
mkdir -p "$DIR"/{logs,spool/status,state,archive,shared}
echo "demo directory: $DIR"

# shellcheck source=scripts/demo-lib.sh
source "$REPO/scripts/demo-lib.sh"

if [ "$PROFILE" = release ]; then
  step "building release binaries (first time: several minutes)"
  cargo build --release --workspace --bins
fi

ETCD=http://127.0.0.1:$ETCD_PORT
CLI=("$BIN/speedlayer" --addr "http://$(grpc 0)")
status() { "$BIN/speedlayer" cluster status --etcd "$ETCD" --cluster demo | sed 's/^/    /'; }

step "starting etcd on $ETCD"
etcd --name demo --data-dir "$DIR/etcd" \
  --listen-client-urls "$ETCD" --advertise-client-urls "$ETCD" \
  --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
  --initial-cluster "demo=http://127.0.0.1:$((ETCD_PORT + 1))" >"$DIR/etcd.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  ETCDCTL_API=3 etcdctl --endpoints "$ETCD" endpoint health >/dev/null 2>&1 && break
  sleep 0.2
done

server_pid=()
for i in 0 1 2; do
  step "starting server $i (gRPC $(grpc $i), HTTP $(http $i), RESP $(resp $i))"
  "$BIN/speedlayer-server" --data-dir "$DIR/s$i" --grpc-addr "$(grpc $i)" \
    --http-addr "$(http $i)" --resp-addr "$(resp $i)" --appendfsync always \
    --etcd "$ETCD" --cluster demo --lease-ttl-secs "$LEASE_TTL" \
    --storage-root "$DIR/shared" >"$DIR/s$i.out" 2>"$DIR/s$i.log" &
  server_pid+=($!)
  pids+=($!)
  wait_ready "server $i" "$DIR/s$i.out" READY
done

step "creating driving pre-split over the three servers"
"${CLI[@]}" create-table driving --family cf1 --split V0033 --split V0066
for _ in $(seq 1 100); do
  n=$("$BIN/speedlayer" cluster status --etcd "$ETCD" --cluster demo --json |
    python3 -c 'import json,sys; s=json.load(sys.stdin); print(len({r["server"] for r in s["regions"] if r["state"]=="open"}))')
  [ "$n" = 3 ] && break
  sleep 0.2
done
status

step "starting tansu on 127.0.0.1:$KAFKA_PORT, the worker (through server 0) and the collector"
pids+=("$(scripts/tansu-start.sh "$KAFKA_PORT" "$DIR/tansu")")
TANSU=$(scripts/tansu-path)
for t in SmartCar-Topic SmartCar-Topic.dlq; do
  "$TANSU" topic create --broker "tcp://127.0.0.1:$KAFKA_PORT" --partitions 4 "$t" >/dev/null
done
"$BIN/speedlayer-ingest" worker --brokers "127.0.0.1:$KAFKA_PORT" --topic SmartCar-Topic \
  --group speedlayer-ingest --server "http://$(grpc 0)" --resp "$(resp 0)" \
  --rules config/rules.toml --http-addr 127.0.0.1:0 --idle-flush 5s \
  >"$DIR/worker.out" 2>"$DIR/worker.log" &
pids+=($!)
wait_ready "the ingest worker" "$DIR/worker.out" READY
WORKER_HTTP=$(sed -n 's/^READY http=//p' "$DIR/worker.out")
sed -e "s/127\.0\.0\.1:19092/127.0.0.1:$KAFKA_PORT/g" \
  config/agent.toml >"$DIR/agent.toml"
(cd "$DIR" && "$BIN/speedlayer-ingest" collect --config "$DIR/agent.toml" \
  --http-addr 127.0.0.1:0 >"$DIR/collect.out" 2>"$DIR/collect.log") &
pids+=($!)
wait_ready "the collector" "$DIR/collect.out" ready
COLLECT_HTTP=$(sed -n 's|.*metrics on http://\([^/]*\)/metrics.*|\1|p' "$DIR/collect.out")

EXPECTED=$((CARS * SECONDS_SIM))
KILL_AFTER=${KILL_AFTER:-$((EXPECTED / 3))}
step "simulating $CARS cars for $SECONDS_SIM s at ${SPEEDUP}× (seed $SEED); server 2 is killed after $KILL_AFTER rows"
"$BIN/speedlayer-ingest" simulate --cars "$CARS" --duration "$SECONDS_SIM" --speedup "$SPEEDUP" \
  --seed "$SEED" --garbage-rate 0.01 --start "$START" --driving-log "$DIR/logs/driving.log" \
  --status-spool "$DIR/spool/status" >"$DIR/simulate.out" 2>&1 &
# (the status spool is archived by the collector; cluster mode stores driving events)
sim=$!
pids+=($sim)
t0=$SECONDS
until [ "$(metric "$WORKER_HTTP" ingest_stored_total)" -ge "$KILL_AFTER" ]; do
  if [ $((SECONDS - t0)) -ge 300 ]; then echo "cluster-demo: nothing stored in 300 s; see $DIR" >&2; exit 1; fi
  sleep 0.2
done
step "kill -9 of server 2 (pid ${server_pid[2]}) mid-stream, $(metric "$WORKER_HTTP" ingest_stored_total) rows stored so far"
VICTIM=$(sed -n 's/.* member=\([^ ]*\).*/\1/p' "$DIR/s2.out")
kill -9 "${server_pid[2]}"
wait "${server_pid[2]}" 2>/dev/null || true
killed_at=$(date +%s.%N)
for _ in $(seq 1 300); do
  left=$("$BIN/speedlayer" cluster status --etcd "$ETCD" --cluster demo --json |
    VICTIM=$VICTIM python3 -c 'import json,os,sys; s=json.load(sys.stdin); v=os.environ["VICTIM"]; live={m["id"] for m in s["servers"]}; print(int(v in live) + sum(1 for r in s["regions"] if r["state"]!="open" or r["server"] not in live))')
  [ "$left" = 0 ] && break
  sleep 0.1
done
echo "    $VICTIM gone and every region open on a live server $(python3 -c "import time; print(f'{time.time() - $killed_at:.1f}')") s after the kill (lease TTL $LEASE_TTL s):"
status
wait "$sim"

LINES=$(wc -l <"$DIR/logs/driving.log")
step "waiting for all $LINES lines to be stored or dead-lettered"
t0=$SECONDS
while :; do
  stored=$(metric "$WORKER_HTTP" ingest_stored_total)
  dead=$(($(metric "$COLLECT_HTTP" speedlayer_collect_dead_letters_out_total) + \
    $(metric "$WORKER_HTTP" ingest_dead_lettered_total)))
  echo "    stored $stored, dead-lettered $dead of $LINES ($((SECONDS - t0)) s)"
  [ $((stored + dead)) -ge "$LINES" ] && break
  if [ $((SECONDS - t0)) -ge 300 ]; then echo "cluster-demo: not everything arrived in 300 s" >&2; break; fi
  sleep 2
done

step "results"
DEAD=$(($(metric "$COLLECT_HTTP" speedlayer_collect_dead_letters_out_total) + $(metric "$WORKER_HTTP" ingest_dead_lettered_total)))
WANT=$((LINES - DEAD))
for i in 0 1; do
  got=$("$BIN/speedlayer" --addr "http://$(grpc $i)" count driving | grep -o '[0-9]*' | head -1)
  echo "driving rows read through server $i: $got"
done
GOT=$("${CLI[@]}" count driving | grep -o '[0-9]*' | head -1)
echo "driving log lines:  $LINES"
echo "dead-lettered:      $DEAD (garbage lines, each with a reason)"
echo "valid lines:        $WANT"
echo "rows stored:        $GOT"
echo "logs and data:      $DIR"
if [ "$GOT" != "$WANT" ]; then
  echo "cluster-demo: LOST $((WANT - GOT)) rows" >&2
  exit 1
fi
echo "nothing lost: every valid line is a row, after kill -9 of one of three servers"
