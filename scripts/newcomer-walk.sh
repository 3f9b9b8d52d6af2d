#!/usr/bin/env bash
# The README's steps, literally, on a clean clone with a fresh target/, timing each step and
# counting the crates each build step compiles (the first compiles everything; the others
# must compile nothing: one build serves every documented step).
#
#   scripts/newcomer-walk.sh            # clones HEAD of this checkout into WALK_DIR
#
# WALK_DIR (default: a new temp dir). Uses the README's default ports (16020, 16030, 6380,
# and the demo's 19092): stop anything on them first. Prints one STEP line per step.
set -uo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
WORK=${WALK_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/speedlayer-walk.XXXXXX")}
echo "walk directory: $WORK"
rm -rf "$WORK/main" "$WORK/xdg"
git clone -q "$REPO" "$WORK/main" && cd "$WORK/main" || exit 1
export XDG_DATA_HOME="$WORK/xdg"
now() { date +%s.%N; }
since() { printf '%.1f' "$(echo "$(now) - $1" | bc)"; }
step() { local s; s=$(now); "$@"; local rc=$?; echo "STEP $(since "$s") s rc=$rc: $*"; }
compiled() { echo "  crates compiled: $(grep -c Compiling "$1")"; }

echo "== make run, until READY (the first build)"
s=$(now)
make run >"$WORK/run.out" 2>"$WORK/run.err" &
RUN=$!
until grep -q READY "$WORK/run.out" 2>/dev/null; do
  kill -0 "$RUN" 2>/dev/null || { echo "make run died:"; tail "$WORK/run.err"; exit 1; }
  sleep 1
done
echo "STEP $(since "$s") s: make run until READY"
compiled "$WORK/run.err"

echo "== the tour, in a second terminal"
step bash -c "cargo build --release --workspace --bins 2>'$WORK/tour.err'"
compiled "$WORK/tour.err"
export PATH=$PWD/target/release:$PATH
step speedlayer create-table driving --family cf1:versions=3
step speedlayer put driving 'V0042#20261122143015' cf1:speed 87
step speedlayer scan driving --prefix V0042 --filter "cf1:speed > 80" --json
step speedlayer stats driving
step bash -c 'redis-cli -p 6380 SADD 20261122 V0042 && redis-cli -p 6380 TTL 20261122'
pkill -INT -f "speedlayer-server --data-dir $WORK/xdg"
wait "$RUN"
echo "make run exited with $?"

echo "== scripts/demo.sh"
step bash -c "scripts/demo.sh >'$WORK/demo.out' 2>'$WORK/demo.err'"
compiled "$WORK/demo.err"
sed -n '/==> results/,$p' "$WORK/demo.out" | head -8
