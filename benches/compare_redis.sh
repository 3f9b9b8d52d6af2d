#!/usr/bin/env bash
# Compare the Speedlayer RESP service with Debian's redis-server, in the same run.
#
#   cargo build --release -p speedlayer-server && benches/compare_redis.sh
#
# Both servers run on free loopback ports with the same durability (AOF, fsync everysec,
# no RDB saves). redis-benchmark drives each with 50 clients, pipelines of 1 and 32, for
# PING (inline and multibulk), SADD (random members), SISMEMBER and SMEMBERS of a
# 100-member set. The two servers are measured alternately, ROUNDS times per test, so
# background load hits both alike; each row reports medians. Then 1 M members are added
# to one set and the growth of INFO memory used_memory is divided by 1 M; on that set,
# SRANDMEMBER, SSCAN pages and SPOP (half of the members over all rounds) are measured
# the same way.
#
# Environment: N1 (requests at -P 1, default 200000), N32 (at -P 32, default 2000000),
# ROUNDS (alternated measurements per row, default 3), MEMBERS (default 1000000), BIN
# (default target/release/speedlayer-server), OURS_FLAGS (extra flags for ours, e.g.
# "--resp-threads 2").
set -euo pipefail
cd "$(dirname "$0")/.."

N1=${N1:-200000}
N32=${N32:-2000000}
MEMBERS=${MEMBERS:-1000000}
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

# Ours: read the READY line for the port.
mkfifo "$work/ready"
# shellcheck disable=SC2086 # OURS_FLAGS is a list of flags
"$BIN" --only-resp --resp-addr 127.0.0.1:0 --data-dir "$work/ours" --appendfsync everysec ${OURS_FLAGS:-} \
  >"$work/ready" 2>"$work/ours.log" &
OURS_PID=$!
pids+=("$OURS_PID")
read -r ready <"$work/ready"
OURS=${ready##*resp=127.0.0.1:}
OURS=${OURS%% *}

REDIS=$(free_port)
mkdir -p "$work/redis"
redis-server --port "$REDIS" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec \
  --dir "$work/redis" --databases 1 >"$work/redis.log" 2>&1 &
REDIS_PID=$!
pids+=("$REDIS_PID")
for _ in $(seq 200); do redis-cli -p "$REDIS" ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

fill100() {
  redis-cli -p "$1" del bench:set >/dev/null
  redis-cli -p "$1" sadd bench:set $(seq -f 'member:%g' 0 99) >/dev/null
}
fill100 "$OURS"; fill100 "$REDIS"

# CPU seconds (user + system) a process has used so far.
cpu_s() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.4f", ($14 + $15) / hz }' "/proc/$1/stat"; }

# rps <pid> <port> <pipeline> <requests> <args...>
#   -> "requests/s server-CPU-us-per-request" of the single test run. At -P 1 the client
#   (one redis-benchmark thread) shares the two cores with the server and often bounds the
#   rate; the server's CPU time per request says which server does less work for it.
rps() {
  local pid=$1 port=$2 p=$3 n=$4; shift 4
  local before after r
  before=$(cpu_s "$pid")
  r=$(redis-benchmark -h 127.0.0.1 -p "$port" -c 50 -P "$p" -n "$n" --csv "$@" \
    | awk -F'","' 'NR>1 {gsub(/"/,"",$2); print $2; exit}')
  after=$(cpu_s "$pid")
  echo "$r $(awk -v a="$before" -v b="$after" -v n="$n" 'BEGIN { printf "%.2f", (b - a) * 1e6 / n }')"
}

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# row <name> <pipeline> <requests> <args...>: one line of the table. The two servers are
# measured ROUNDS times, alternately (who goes first alternates too); the line shows the
# median req/s and CPU time per request of each, the median of the per-round ratios and
# the lowest and highest ratio seen.
row() {
  local test=$1 p=$2 n=$3 i r rc o oc; shift 3
  local rs=() rcs=() os=() ocs=() ratios=()
  for ((i = 0; i < ROUNDS; i++)); do
    if ((i % 2 == 0)); then
      read -r r rc < <(rps "$REDIS_PID" "$REDIS" "$p" "$n" "$@")
      read -r o oc < <(rps "$OURS_PID" "$OURS" "$p" "$n" "$@")
    else
      read -r o oc < <(rps "$OURS_PID" "$OURS" "$p" "$n" "$@")
      read -r r rc < <(rps "$REDIS_PID" "$REDIS" "$p" "$n" "$@")
    fi
    rs+=("$r") rcs+=("$rc") os+=("$o") ocs+=("$oc")
    ratios+=("$(awk -v a="$o" -v b="$r" 'BEGIN { if (b > 0) printf "%.3f", a / b; else print 0 }')")
  done
  printf '%-22s %4s %14.0f %14.0f %6.2fx %6.2f-%-5.2f %12.2f %12.2f\n' "$test" "$p" \
    "$(printf '%s\n' "${rs[@]}" | median)" "$(printf '%s\n' "${os[@]}" | median)" \
    "$(printf '%s\n' "${ratios[@]}" | median)" \
    "$(printf '%s\n' "${ratios[@]}" | sort -g | head -1)" "$(printf '%s\n' "${ratios[@]}" | sort -g | tail -1)" \
    "$(printf '%s\n' "${rcs[@]}" | median)" "$(printf '%s\n' "${ocs[@]}" | median)"
}
header() {
  printf '%-22s %4s %14s %14s %7s %11s %12s %12s\n' "$1" P "redis req/s" "ours req/s" ratio "min-max" \
    "redis us/req" "ours us/req"
}

header "test (median of $ROUNDS)"
for p in 1 32; do
  n=$N1; [[ $p == 32 ]] && n=$N32
  for test in PING_INLINE PING_MBULK SADD SISMEMBER SMEMBERS_100; do
    case $test in
      PING_INLINE) args=(-t ping_inline) ;;
      PING_MBULK)  args=(-t ping_mbulk) ;;
      SADD)        args=(-r 100000 -t sadd) ;;
      SISMEMBER)   args=(SISMEMBER bench:set member:50) ;;
      SMEMBERS_100) args=(SMEMBERS bench:set); [[ $p == 32 ]] && n=$((N32 / 4)) ;;
    esac
    row "$test" "$p" "$n" "${args[@]}"
  done
done

# Memory per member for MEMBERS members of one set (member:0000000 style, 14 bytes).
used() { redis-cli -p "$1" info memory | awk -F: '/^used_memory:/ {gsub(/\r/,"",$2); print $2}'; }
gen() {
  awk -v n="$MEMBERS" 'BEGIN {
    batch = 1000
    for (s = 0; s < n; s += batch) {
      m = (n - s < batch) ? n - s : batch
      printf "*%d\r\n$4\r\nSADD\r\n$8\r\nmem:set1\r\n", m + 2
      for (i = s; i < s + m; i++) printf "$14\r\nmember:%07d\r\n", i
    }
  }'
}
echo
printf '%-22s %14s %14s %7s\n' "memory ($MEMBERS)" redis speedlayer ratio
declare -A per
for port in "$REDIS" "$OURS"; do
  before=$(used "$port")
  gen | redis-cli -p "$port" --pipe >/dev/null
  card=$(redis-cli -p "$port" scard mem:set1)
  [[ $card == "$MEMBERS" ]] || { echo "SCARD mem:set1 = $card on port $port" >&2; exit 1; }
  after=$(used "$port")
  per[$port]=$(awk -v a="$after" -v b="$before" -v n="$MEMBERS" 'BEGIN { printf "%.1f", (a - b) / n }')
done
printf '%-22s %14s %14s %7s\n' "bytes per member" "${per[$REDIS]}" "${per[$OURS]}" \
  "$(awk -v a="${per[$OURS]}" -v b="${per[$REDIS]}" 'BEGIN { printf "%.2fx", a / b }')"

# Random access and cursors on the big set: Redis does these in O(1) per member and
# O(COUNT) per page; a set that walked its members would fall far behind here.
echo
header "on the $MEMBERS set"
row SRANDMEMBER 1 "$N1" SRANDMEMBER mem:set1
row SRANDMEMBER_10 32 "$((N32 / 4))" SRANDMEMBER mem:set1 10
row SSCAN_COUNT_10 32 "$((N32 / 4))" SSCAN mem:set1 0 COUNT 10
row SPOP 32 "$((MEMBERS / (2 * ROUNDS)))" SPOP mem:set1
echo
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
echo "redis: $(redis-server --version | awk '{print $3}')  clients=50  N1=$N1 N32=$N32 ROUNDS=$ROUNDS"
