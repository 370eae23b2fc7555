#!/usr/bin/env bash
# The node's own CPU a request for two builds, interleaved: one single-shard
# node of each build, the same keys loaded into both, then rounds of one wrk
# run against each (which goes first alternating). Prints per run the rate
# and the node's user and system CPU a request (from /proc/<pid>/stat, wrk's
# CPU left out), and the medians. Where instruction counts
# (scripts/instr-per-request.sh) say what a change saves in user space, this
# says what share of the node's CPU that is, and what the rate makes of it.
#
#   scripts/bench-cpu-ab.sh OLD_DISTKV NEW_DISTKV        (after make)
#
# Environment: OP (get; put overwrites the loaded keys), FSYNC (never),
# ROUNDS (7), BENCH_SECONDS (4), BENCH_CONNECTIONS (50), BENCH_KEYS (10000),
# BENCH_BASE_PORT.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
trap 'echo "bench-cpu-ab.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR
[ $# -eq 2 ] || { echo "usage: $0 OLD_DISTKV NEW_DISTKV" >&2; exit 2; }
OP=${OP:-get}
FSYNC=${FSYNC:-never}
ROUNDS=${ROUNDS:-7}
SECONDS_EACH=${BENCH_SECONDS:-4}
CONNS=${BENCH_CONNECTIONS:-50}
KEYS=${BENCH_KEYS:-10000}
NEXT_PORT=${BENCH_BASE_PORT:-28390}
LUA=bench/wrk/kv.lua

. scripts/bench_lib.sh
need wrk wrk
need curl curl
need ss iproute2
TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/distkv-cpu-ab.XXXXXX")
PIDS=()
trap cleanup EXIT
seq -f "key%g" 1 "$KEYS" >"$TMP/keys.txt"

NAMES=(old new)
BINS=("$(realpath "$1")" "$(realpath "$2")")
ADDRS=()
NODE_PIDS=()
for i in 0 1; do
  BIN=${BINS[$i]}
  [ -x "$BIN" ] || die "no distkv binary at $BIN"
  take_port
  ADDRS+=("127.0.0.1:$PORT")
  node_config "$TMP/${NAMES[$i]}.toml" "$FSYNC" "127.0.0.1:$PORT"
  mkdir -p "$TMP/${NAMES[$i]}"
  start_node "$TMP/${NAMES[$i]}.toml" s0 "$TMP/${NAMES[$i]}" "127.0.0.1:$PORT"
  NODE_PIDS+=("$NODE_PID")
  load_keys "127.0.0.1:$PORT" "$TMP/keys.txt"
done

HZ=$(getconf CLK_TCK)
us_each() { awk -v t="$1" -v n="$2" -v hz="$HZ" 'BEGIN { printf "%.2f", t * 1e6 / hz / n }'; }  # ticks requests
declare -A RATE USER SYS
run() {  # index
  local i=$1 u0 s0 u1 s1 out n
  read -r u0 s0 _ < <(proc_ticks "${NODE_PIDS[$i]}")
  out=$(env BENCH_OP="$OP" BENCH_KEY_FILE="$TMP/keys.txt" \
    wrk -t1 -c"$CONNS" -d"${SECONDS_EACH}s" -s "$LUA" "http://${ADDRS[$i]}")
  read -r u1 s1 _ < <(proc_ticks "${NODE_PIDS[$i]}")
  n=$(awk '/requests in/ { print $1 }' <<<"$out")
  [ -n "$n" ] && [ "$n" -gt 0 ] || die "wrk printed no request count: $out"
  RATE[$i]+="$(awk '/^Requests\/sec/ { printf "%d", $2 }' <<<"$out") "
  USER[$i]+="$(us_each $((u1 - u0)) "$n") "
  SYS[$i]+="$(us_each $((s1 - s0)) "$n") "
}

echo "OP=$OP FSYNC=$FSYNC: wrk -t1 -c$CONNS -d${SECONDS_EACH}s -s $LUA against each node"
for r in $(seq 1 "$ROUNDS"); do
  if [ $((r % 2)) = 1 ]; then run 0; run 1; else run 1; run 0; fi
done
printf '| build | req/s (median) | user µs a request | system µs a request | every round, req/s |\n|---|---:|---:|---:|---|\n'
for i in 0 1; do
  printf '| %s | %s | %s | %s | %s|\n' "${NAMES[$i]}" "$(median <<<"${RATE[$i]}")" \
    "$(median <<<"${USER[$i]}")" "$(median <<<"${SYS[$i]}")" "${RATE[$i]}"
done
read -ra a <<<"${RATE[0]}"
read -ra b <<<"${RATE[1]}"
ratios=""
for k in "${!a[@]}"; do ratios+="$(awk -v x="${b[$k]}" -v y="${a[$k]}" 'BEGIN { printf "%.2f", x / y }') "; done
echo "new / old req/s: median $(median <<<"$ratios") ($ratios)"
