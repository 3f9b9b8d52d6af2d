#!/usr/bin/env bash
# Starts a tansu broker (in-memory storage) on 127.0.0.1:PORT with DIR as its working
# directory, waits until the port accepts, and prints its PID.
#   scripts/tansu-start.sh PORT DIR      -> PID on stdout; log in DIR/tansu.log
set -euo pipefail
PORT=${1:?usage: tansu-start.sh PORT DIR}
DIR=${2:?usage: tansu-start.sh PORT DIR}
BIN=$("$(dirname "$0")/tansu-path")
mkdir -p "$DIR"
cd "$DIR"
URL="tcp://127.0.0.1:$PORT"
"$BIN" broker --listener-url "$URL" --advertised-listener-url "$URL" \
  --storage-engine memory://tansu/ >tansu.log 2>&1 &
PID=$!
for _ in $(seq 1 300); do
  if ! kill -0 "$PID" 2>/dev/null; then echo "tansu exited; see $DIR/tansu.log" >&2; exit 1; fi
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then echo "$PID"; exit 0; fi
  sleep 0.1
done
echo "tansu not listening on $PORT after 30 s" >&2
kill "$PID"; exit 1
