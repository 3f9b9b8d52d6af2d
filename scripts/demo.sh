#!/usr/bin/env bash
# The whole speed layer on one machine, on loopback, for a newcomer:
#   simulator → driving.log → collector (tail → validate → file channel → Kafka)
#   → tansu → ingest worker → region server (every event) + overspeed rule → TTL sets.
# Then it prints what landed: stored rows, dead letters, and the flagged cars.
#
#   scripts/demo.sh                 # 100 cars, 120 simulated seconds at 20× speed
#   CARS=500 SECONDS_SIM=300 scripts/demo.sh
#   PROFILE=debug scripts/demo.sh   # use target/debug binaries (skips the release build)
#
# Everything lives under ./.demo (deleted at start); all processes stop on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CARS=${CARS:-100}
SECONDS_SIM=${SECONDS_SIM:-120}
SPEEDUP=${SPEEDUP:-20}
PROFILE=${PROFILE:-release}
KAFKA_PORT=${KAFKA_PORT:-19092}
GRPC=${GRPC:-127.0.0.1:16020}
HTTP=${HTTP:-127.0.0.1:16030}
RESP=${RESP:-127.0.0.1:6380}
DIR=$ROOT/.demo
BIN=$ROOT/target/$PROFILE

step() { printf '\n==> %s\n' "$*"; }
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

if [ "$PROFILE" = release ]; then
  step "building release binaries (first time: several minutes)"
  cargo build --release -p speedlayer-server -p speedlayer-client -p speedlayer-ingest --bins
fi
rm -rf "$DIR" && mkdir -p "$DIR"/{logs,spool/status,state,archive}

step "starting tansu (Kafka protocol) on 127.0.0.1:$KAFKA_PORT"
pids+=("$(scripts/tansu-start.sh "$KAFKA_PORT" "$DIR/tansu")")
TANSU=$(scripts/tansu-path)
for t in SmartCar-Topic SmartCar-Topic.dlq; do
  "$TANSU" topic create --broker "tcp://127.0.0.1:$KAFKA_PORT" --partitions 4 "$t" >/dev/null
done

wait_ready() { # FILE PATTERN
  for _ in $(seq 1 600); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "timed out waiting for '$2' in $1" >&2; exit 1
}

step "starting speedlayer-server (gRPC $GRPC, HTTP $HTTP, RESP $RESP)"
"$BIN/speedlayer-server" --data-dir "$DIR/data" --grpc-addr "$GRPC" --http-addr "$HTTP" \
  --resp-addr "$RESP" >"$DIR/server.out" 2>"$DIR/server.log" &
pids+=($!)
wait_ready "$DIR/server.out" READY

step "starting the ingest worker (rules: config/rules.toml)"
"$BIN/speedlayer-ingest" worker --brokers "127.0.0.1:$KAFKA_PORT" --topic SmartCar-Topic \
  --group speedlayer-ingest --server "http://$GRPC" --resp "$RESP" --rules config/rules.toml \
  --http-addr 127.0.0.1:0 --idle-flush 5s >"$DIR/worker.out" 2>"$DIR/worker.log" &
pids+=($!)
wait_ready "$DIR/worker.out" READY

step "starting the collector agent"
cat >"$DIR/agent.toml" <<TOML
[[pipeline]]
name = "driving"
source = { type = "tail", path = "$DIR/logs/driving.log", position_file = "$DIR/state/driving.pos" }
interceptors = [{ type = "validate", format = "driving" }]
channel = { type = "file", dir = "$DIR/state/driving-channel", capacity_mb = 512 }
sink = { type = "kafka", brokers = "127.0.0.1:$KAFKA_PORT", topic = "SmartCar-Topic", key = "car_number" }
dead_letter = { type = "kafka", brokers = "127.0.0.1:$KAFKA_PORT", topic = "SmartCar-Topic.dlq" }

[[pipeline]]
name = "status"
source = { type = "spooldir", dir = "$DIR/spool/status", done_suffix = ".done" }
channel = { type = "memory", capacity = 10000 }
sink = { type = "file_roll", dir = "$DIR/archive/status", roll_size_mb = 128, roll_interval = "1h" }
TOML
"$BIN/speedlayer-ingest" collect --config "$DIR/agent.toml" --http-addr 127.0.0.1:0 \
  >"$DIR/collect.out" 2>"$DIR/collect.log" &
pids+=($!)
wait_ready "$DIR/collect.out" ready

START=$(date -u +%Y%m%d%H%M%S)
step "simulating $CARS cars for $SECONDS_SIM s at ${SPEEDUP}× (1% garbage lines)"
"$BIN/speedlayer-ingest" simulate --cars "$CARS" --duration "$SECONDS_SIM" --speedup "$SPEEDUP" \
  --seed 7 --garbage-rate 0.01 --start "$START" --driving-log "$DIR/logs/driving.log" \
  --status-spool "$DIR/spool/status"

step "waiting for the pipeline to drain and the last windows to fire (idle flush 5 s)"
sleep 12

DAY=${START:0:8}
step "results"
echo "driving log lines:   $(wc -l <"$DIR/logs/driving.log")"
echo "stored driving rows: $("$BIN/speedlayer" --addr "http://$GRPC" scan driving --json | wc -l)"
echo "overspeed windows:   $("$BIN/speedlayer" --addr "http://$GRPC" scan overspeed --json | wc -l)"
echo "flagged cars on $DAY (redis-cli SMEMBERS $DAY):"
redis-cli -h "${RESP%:*}" -p "${RESP##*:}" SMEMBERS "$DAY" | tr '\n' ' '; echo
echo "TTL of $DAY: $(redis-cli -h "${RESP%:*}" -p "${RESP##*:}" TTL "$DAY") s"
echo "logs and data: $DIR"
