# Shell functions shared by scripts/demo.sh and scripts/cluster-demo.sh (sourced, not run).
# They expect DIR (the demo directory) to be set; `pids` collects the background processes
# that `cleanup` stops on exit.

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup EXIT

# Waits up to 60 s for PATTERN in FILE, saying every 2 s what it waits for.
wait_ready() { # WHAT FILE PATTERN
  local t0=$SECONDS
  for i in $(seq 1 600); do
    grep -q "$3" "$2" 2>/dev/null && return 0
    if [ $((i % 20)) -eq 0 ]; then echo "    still waiting for $1 ($((SECONDS - t0)) s)"; fi
    sleep 0.1
  done
  echo "timed out waiting for $1 ('$3' in $2); see the logs in $DIR" >&2
  exit 1
}

# Sum of a metric's samples (any labels) from a Prometheus endpoint; 0 if unreachable.
metric() { # HOST:PORT NAME
  { exec 3<>"/dev/tcp/${1%:*}/${1##*:}"; } 2>/dev/null || { echo 0; return; }
  printf 'GET /metrics HTTP/1.0\r\nHost: demo\r\n\r\n' >&3
  awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF } END { printf "%d\n", s }' <&3
  exec 3<&-
}
