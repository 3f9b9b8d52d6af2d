#!/usr/bin/env bash
# The whole speed layer on one machine, on loopback, for a newcomer:
#   simulator → driving.log → collector (tail → validate → file channel → Kafka)
#   → tansu → ingest worker → region server (every event) + overspeed rule → TTL sets.
# Then it prints what landed: stored rows, dead-lettered lines, the overspeed windows and
# the flagged cars with their TTL.
#
#   scripts/demo.sh                 # 100 cars, 120 simulated seconds at 20× speed
#   CARS=500 SECONDS_SIM=300 scripts/demo.sh
#   PROFILE=debug scripts/demo.sh   # use target/debug binaries (skips the release build)
#
# Settings (environment variables, defaults in brackets):
#   DEMO_DIR     working directory: logs, data, collector state [a new directory under
#                ${TMPDIR:-/tmp}, printed at start and end]. Nothing is written into the
#                checkout except the cargo build. An existing DEMO_DIR is cleared only if it
#                is empty or an earlier demo's (it holds a .speedlayer-demo marker).
#   KAFKA_PORT   tansu's port on 127.0.0.1 [19092]
#   GRPC         region server gRPC address [127.0.0.1:16020]
#   HTTP         region server HTTP address (/metrics, status page) [127.0.0.1:16030]
#   RESP         TTL set service address [127.0.0.1:6380]
#                These four ports are checked first; a busy one is named with the variable
#                that moves it, e.g. GRPC=127.0.0.1:26020 scripts/demo.sh.
#   SEED         simulator seed [7]
#   START        first simulated time, yyyyMMddHHmmss [20261122143000]; `now` for the
#                wall clock. With a fixed START the same SEED gives the same results.
#   CARS [100], SECONDS_SIM [120], SPEEDUP [20], PROFILE [release]
#
# The collector runs config/agent.toml (copied into DEMO_DIR, Kafka port substituted); the
# worker runs config/rules.toml. All processes stop on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
CARS=${CARS:-100}
SECONDS_SIM=${SECONDS_SIM:-120}
SPEEDUP=${SPEEDUP:-20}
PROFILE=${PROFILE:-release}
SEED=${SEED:-7}
START=${START:-20261122143000}
KAFKA_PORT=${KAFKA_PORT:-19092}
GRPC=${GRPC:-127.0.0.1:16020}
HTTP=${HTTP:-127.0.0.1:16030}
RESP=${RESP:-127.0.0.1:6380}
IDLE_FLUSH_S=5
BIN=${CARGO_TARGET_DIR:-$REPO/target}/$PROFILE

step() { printf '\n==> %s\n' "$*"; }

# Ports first: a busy port would otherwise show up as a confusing failure minutes later.
busy=()
check_port() { # VAR HOST:PORT
  if (exec 3<>"/dev/tcp/${2%:*}/${2##*:}") 2>/dev/null; then busy+=("$1=$2"); fi
}
check_port KAFKA_PORT "127.0.0.1:$KAFKA_PORT"
check_port GRPC "$GRPC"
check_port HTTP "$HTTP"
check_port RESP "$RESP"
if [ ${#busy[@]} -gt 0 ]; then
  for b in "${busy[@]}"; do
    echo "demo: ${b#*=} is already in use (set by ${b%%=*}); is another demo or server running?" >&2
  done
  echo "demo: pick free ones, e.g. KAFKA_PORT=29092 GRPC=127.0.0.1:26020 HTTP=127.0.0.1:26030 RESP=127.0.0.1:26380 $0" >&2
  exit 2
fi

if [ -n "${DEMO_DIR:-}" ]; then
  DIR=$DEMO_DIR
  if [ -d "$DIR" ] && [ -n "$(ls -A "$DIR")" ]; then
    if [ ! -e "$DIR/.speedlayer-demo" ]; then
      echo "demo: DEMO_DIR=$DIR is not empty and not an earlier demo's directory; not clearing it" >&2
      exit 2
    fi
    find "$DIR" -mindepth 1 -delete
  fi
  mkdir -p "$DIR"
else
  DIR=$(mktemp -d "${TMPDIR:-/tmp}/speedlayer-demo.XXXXXX")
fi
DIR=$(cd "$DIR" && pwd)
touch "$DIR/.speedlayer-demo"
mkdir -p "$DIR"/{logs,spool/status,state,archive}
echo "demo directory: $DIR"

# shellcheck source=scripts/demo-lib.sh
source "$REPO/scripts/demo-lib.sh"

if [ "$PROFILE" = release ]; then
  step "building release binaries (first time: several minutes)"
  # The same command as `make run` and the README: one build serves every step.
  cargo build --release --workspace --bins
fi

step "starting tansu (Kafka protocol) on 127.0.0.1:$KAFKA_PORT"
pids+=("$(scripts/tansu-start.sh "$KAFKA_PORT" "$DIR/tansu")")
TANSU=$(scripts/tansu-path)
for t in SmartCar-Topic SmartCar-Topic.dlq; do
  "$TANSU" topic create --broker "tcp://127.0.0.1:$KAFKA_PORT" --partitions 4 "$t" >/dev/null
done

step "starting speedlayer-server (gRPC $GRPC, HTTP $HTTP, RESP $RESP, data in $DIR/data)"
"$BIN/speedlayer-server" --data-dir "$DIR/data" --grpc-addr "$GRPC" --http-addr "$HTTP" \
  --resp-addr "$RESP" >"$DIR/server.out" 2>"$DIR/server.log" &
pids+=($!)
wait_ready speedlayer-server "$DIR/server.out" READY

step "starting the ingest worker (rules: config/rules.toml)"
"$BIN/speedlayer-ingest" worker --brokers "127.0.0.1:$KAFKA_PORT" --topic SmartCar-Topic \
  --group speedlayer-ingest --server "http://$GRPC" --resp "$RESP" --rules config/rules.toml \
  --http-addr 127.0.0.1:0 --idle-flush "${IDLE_FLUSH_S}s" >"$DIR/worker.out" 2>"$DIR/worker.log" &
pids+=($!)
wait_ready "the ingest worker" "$DIR/worker.out" READY
WORKER_HTTP=$(sed -n 's/^READY http=//p' "$DIR/worker.out")

step "starting the collector agent (config/agent.toml)"
sed "s/127\.0\.0\.1:19092/127.0.0.1:$KAFKA_PORT/g" config/agent.toml >"$DIR/agent.toml"
"$BIN/speedlayer-ingest" collect --config "$DIR/agent.toml" --http-addr 127.0.0.1:0 \
  >"$DIR/collect.out" 2>"$DIR/collect.log" &
pids+=($!)
wait_ready "the collector" "$DIR/collect.out" ready
COLLECT_HTTP=$(sed -n 's|.*metrics on http://\([^/]*\)/metrics.*|\1|p' "$DIR/collect.out")

if [ "$START" = now ]; then START=$(date -u +%Y%m%d%H%M%S); fi
step "simulating $CARS cars for $SECONDS_SIM s from $START at ${SPEEDUP}× (seed $SEED, 1% garbage lines)"
"$BIN/speedlayer-ingest" simulate --cars "$CARS" --duration "$SECONDS_SIM" --speedup "$SPEEDUP" \
  --seed "$SEED" --garbage-rate 0.01 --start "$START" --driving-log "$DIR/logs/driving.log" \
  --status-spool "$DIR/spool/status"

LINES=$(wc -l <"$DIR/logs/driving.log")
step "waiting for all $LINES lines to be stored or dead-lettered"
t0=$SECONDS
while :; do
  stored=$(metric "$WORKER_HTTP" ingest_stored_total)
  dead=$(($(metric "$COLLECT_HTTP" speedlayer_collect_dead_letters_out_total) + \
    $(metric "$WORKER_HTTP" ingest_dead_lettered_total)))
  echo "    stored $stored, dead-lettered $dead of $LINES ($((SECONDS - t0)) s)"
  [ $((stored + dead)) -ge "$LINES" ] && break
  if [ $((SECONDS - t0)) -ge 300 ]; then
    echo "demo: not everything arrived within 300 s; see $DIR/*.log" >&2
    break
  fi
  sleep 2
done

step "waiting for the last windows to fire (the worker's idle flush is ${IDLE_FLUSH_S} s)"
firings=-1 quiet_since=$SECONDS
while [ $((SECONDS - quiet_since)) -lt $((IDLE_FLUSH_S + 3)) ]; do
  now_firings=$(metric "$WORKER_HTTP" ingest_rule_firings_total)
  if [ "$now_firings" != "$firings" ]; then firings=$now_firings quiet_since=$SECONDS; fi
  echo "    $firings rule firings so far"
  sleep 2
done

DAY=${START:0:8}
CLI=("$BIN/speedlayer" --addr "http://$GRPC")
step "results"
echo "driving log lines:     $LINES"
echo "stored driving rows:   $("${CLI[@]}" scan driving --json | wc -l)"
echo "dead-lettered lines:   $(metric "$COLLECT_HTTP" speedlayer_collect_dead_letters_out_total) by the collector's validation (topic SmartCar-Topic.dlq), $(metric "$WORKER_HTTP" ingest_dead_lettered_total) by the worker"
"${CLI[@]}" scan overspeed --json >"$DIR/overspeed.jsonl"
echo "overspeed windows:     $(wc -l <"$DIR/overspeed.jsonl") (car, window start, average speed over events)"
python3 - "$DIR/overspeed.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    row = json.loads(line)
    cells = {c["qualifier"]: c["value"] for c in row["cells"]}
    print(f"    {cells.get('car', '?'):8} {cells.get('window_start', '?')}  "
          f"avg {float(cells.get('avg_speed', 'nan')):6.1f} km/h over {cells.get('count', '?')} events")
PY
echo "flagged cars on $DAY (redis-cli -p ${RESP##*:} SMEMBERS $DAY):"
redis-cli -h "${RESP%:*}" -p "${RESP##*:}" SMEMBERS "$DAY" | sort | tr '\n' ' '; echo
echo "TTL of $DAY: $(redis-cli -h "${RESP%:*}" -p "${RESP##*:}" TTL "$DAY") s"
step "bulk-loading the status spool into car_status (speedlayer bulkload: one atomic load per file)"
"${CLI[@]}" describe car_status >/dev/null 2>&1 ||
  "${CLI[@]}" create-table car_status --family cf1:ttl=31536000 >/dev/null
for f in "$DIR"/spool/status/status-*.csv*; do
  [ -e "$f" ] || continue
  # Relative names, and no timing: the results section repeats exactly for the same seed.
  (cd "$DIR/spool/status" && "${CLI[@]}" bulkload car_status "$(basename "$f")" --no-progress \
    --bad-lines "../../$(basename "$f").bad") |
    sed 's/, [0-9.]* s ([0-9]* lines\/s).*$//; s/\.done / /; s/^/    /'
done
echo "car_status rows:       $("${CLI[@]}" count car_status) (speedlayer scan car_status --prefix A0042#: $("${CLI[@]}" count car_status --prefix 'A0042#') rows)"
echo "logs and data: $DIR"
