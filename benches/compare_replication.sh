#!/usr/bin/env bash
# Replication under write load: the Speedlayer RESP service as master of a stock
# redis-server replica, next to redis-server as master of a redis-server replica, in the
# same run.
#
#   cargo build --release -p speedlayer-server && benches/compare_replication.sh
#
# Each master has one replica (`redis-server --replicaof`), both pairs on loopback, the
# masters with the same durability (AOF, fsync everysec). redis-benchmark drives SADD of
# random members into one set (50 clients, pipelines of 1 and 32) at each master while a
# sampler reads INFO replication of master and replica every 10 ms. Per run: the master's
# req/s with its replica attached, the peak lag (master offset minus replica offset, bytes),
# and the catch-up time (from the end of the load until the replica's offset equals the
# master's). After each run the replica's SCARD must equal the master's (else the script
# fails). The pairs are measured alternately, ROUNDS times per row; rows show medians and
# the ratio ours/redis (for req/s higher is better, for lag and catch-up lower is better).
#
# Environment: N1 (requests at -P 1, default 100000), N32 (at -P 32, default 1000000),
# ROUNDS (default 3), BIN (default target/release/speedlayer-server).
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-100000}
N32=${N32:-1000000}
ROUNDS=${ROUNDS:-3}
BIN=${BIN:-target/release/speedlayer-server}
[[ -x $BIN ]] || { echo "build first: cargo build --release -p speedlayer-server" >&2; exit 2; }
for t in redis-server redis-benchmark redis-cli python3; do
  command -v "$t" >/dev/null || { echo "missing $t (make deps installs redis-tools and redis-server)" >&2; exit 2; }
done

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

mkfifo "$work/ready"
"$BIN" --only-resp --resp-addr 127.0.0.1:0 --data-dir "$work/ours" --appendfsync everysec \
  >"$work/ready" 2>"$work/ours.log" &
pids+=("$!")
read -r ready <"$work/ready"
OURS=${ready##*resp=127.0.0.1:}
OURS=${OURS%% *}

REDIS=$(free_port)
mkdir -p "$work/redis" "$work/ours_replica" "$work/redis_replica"
redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
  --dir "$work/redis" --databases 1 >"$work/redis.log" 2>&1 &
pids+=("$!")
wait_ping "$REDIS"

OURS_R=$(free_port)
redis-server --port "$OURS_R" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/ours_replica" \
  --databases 1 --replicaof 127.0.0.1 "$OURS" >"$work/ours_replica.log" 2>&1 &
pids+=("$!")
REDIS_R=$(free_port)
redis-server --port "$REDIS_R" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/redis_replica" \
  --databases 1 --replicaof 127.0.0.1 "$REDIS" >"$work/redis_replica.log" 2>&1 &
pids+=("$!")
wait_ping "$OURS_R"; wait_ping "$REDIS_R"

# run <master> <replica> <pipeline> <requests> -> "req/s peak-lag-bytes catch-up-ms"
run() {
  python3 - "$@" <<'EOF'
import socket, subprocess, sys, threading, time

master, replica, p, n = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]

def cmd(port, *args):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"".join([b"*%d\r\n" % len(args)] + [b"$%d\r\n%s\r\n" % (len(a), a) for a in args]))
    buf = b""
    while b"\r\n" not in buf:
        buf += s.recv(65536)
    head, rest = buf.split(b"\r\n", 1)
    if head[:1] == b"$":
        need = int(head[1:]) + 2
        while len(rest) < need:
            rest += s.recv(65536)
        s.close()
        return rest[: need - 2].decode()
    s.close()
    return head[1:].decode()

def offset(port):
    for line in cmd(port, b"INFO", b"replication").splitlines():
        if line.startswith("master_repl_offset:"):
            return int(line.split(":")[1])
    return -1

def link_up(port):
    return "master_link_status:up" in cmd(port, b"INFO", b"replication")

deadline = time.time() + 60
while not (link_up(replica) and offset(master) == offset(replica)):
    if time.time() > deadline:
        sys.exit("replica never in sync")
    time.sleep(0.05)
cmd(master, b"DEL", b"bench:repl")
peak = 0
done = threading.Event()

def sample():
    global peak
    while not done.is_set():
        peak = max(peak, offset(master) - offset(replica))
        time.sleep(0.01)

t = threading.Thread(target=sample)
t.start()
out = subprocess.run(
    ["redis-benchmark", "-h", "127.0.0.1", "-p", str(master), "-c", "50", "-P", p, "-n", n,
     "-r", "10000000", "--csv", "sadd", "bench:repl", "__rand_int__"],
    check=True, capture_output=True, text=True).stdout
end = time.time()
rps = float(out.splitlines()[1].split('","')[1].strip('"'))
target = offset(master)
while offset(replica) < target:
    if time.time() > end + 120:
        sys.exit("replica did not catch up in 120 s")
    time.sleep(0.001)
catchup = (time.time() - end) * 1000
done.set()
t.join()
a, b = cmd(master, b"SCARD", b"bench:repl"), cmd(replica, b"SCARD", b"bench:repl")
if a != b:
    sys.exit(f"replica SCARD {b} != master SCARD {a}")
print(f"{rps:.0f} {peak} {catchup:.1f}")
EOF
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

printf '%-4s %12s %12s %6s %14s %14s %6s %12s %12s %6s\n' P "redis req/s" "ours req/s" ratio \
  "redis lag B" "ours lag B" ratio "redis c-up ms" "ours c-up ms" ratio
for p in 1 32; do
  n=$N1; [[ $p == 32 ]] && n=$N32
  rr=() rl=() rc=() or=() ol=() oc=()
  for ((i = 0; i < ROUNDS; i++)); do
    if ((i % 2 == 0)); then
      read -r a b c < <(run "$REDIS" "$REDIS_R" "$p" "$n"); rr+=("$a") rl+=("$b") rc+=("$c")
      read -r a b c < <(run "$OURS" "$OURS_R" "$p" "$n"); or+=("$a") ol+=("$b") oc+=("$c")
    else
      read -r a b c < <(run "$OURS" "$OURS_R" "$p" "$n"); or+=("$a") ol+=("$b") oc+=("$c")
      read -r a b c < <(run "$REDIS" "$REDIS_R" "$p" "$n"); rr+=("$a") rl+=("$b") rc+=("$c")
    fi
  done
  m() { printf '%s\n' "$@" | median; }
  R=$(m "${rr[@]}") O=$(m "${or[@]}") RL=$(m "${rl[@]}") OL=$(m "${ol[@]}") RC=$(m "${rc[@]}") OC=$(m "${oc[@]}")
  printf '%-4s %12.0f %12.0f %6s %14.0f %14.0f %6s %12.1f %12.1f %6s\n' "$p" "$R" "$O" "$(ratio "$O" "$R")" \
    "$RL" "$OL" "$(ratio "$OL" "$RL")" "$RC" "$OC" "$(ratio "$OC" "$RC")"
done
