#!/usr/bin/env bash
# `make bench`: the comparison runs behind BENCHMARKS.md, all in one run so
# that their ratios hold on a shared, noisy machine. Every figure is printed
# with the exact command that produced it.
#
#   1. nginx answering a fixed 200: the HTTP limit of this machine and client
#   2. one distkv node per fsync mode: GET of existing 100-byte values, PUT of new ones
#   3. two shards: GET and PUT sent straight to the owner vs. through the other node
#   4. redis-benchmark against redis-server, no persistence and appendfsync always
#
# wrk runs with 1 thread and 50 connections (BENCH_CONNECTIONS), BENCH_SECONDS each.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-50}
BIN=${DISTKV_BIN:-$PWD/build/distkv}
LUA=$PWD/bench/wrk/kv.lua
BASE_PORT=${BENCH_BASE_PORT:-18090}

need() { command -v "$1" >/dev/null 2>&1 || { echo "installing $2"; apt-get install -y -q "$2" >/dev/null; }; }
need wrk wrk
need nginx nginx-light
need redis-server redis-server
need curl curl

TMP=$(mktemp -d /tmp/distkv-bench.XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$TMP"
}
trap cleanup EXIT

RESULTS=()
record() { RESULTS+=("$1|$2|$3"); printf '  %-48s %10s req/s\n' "$1" "$2"; }

wait_http() {
  for _ in $(seq 1 100); do curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0; sleep 0.1; done
  echo "no answer from $1" >&2; return 1
}

# run_wrk LABEL URL ENV...: runs wrk and records its requests/s.
run_wrk() {
  local label=$1 url=$2; shift 2
  local cmd="env $* wrk -t1 -c$CONNS -d${SECONDS_EACH}s -s bench/wrk/kv.lua $url"
  local out; out=$(env "$@" wrk -t1 -c"$CONNS" -d"${SECONDS_EACH}s" -s "$LUA" "$url")
  local rps; rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$out")
  local bad; bad=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  [ -n "$bad" ] && echo "  ($label: $bad non-2xx answers)"
  record "$label" "$rps" "$cmd"
}

node_config() {  # file fsync shards...
  local file=$1 fsync=$2; shift 2
  { echo "[storage]"; echo "fsync = \"$fsync\""; local i=0
    for addr in "$@"; do printf '[[shards]]\nname = "s%d"\nidx = %d\naddress = "%s"\n' $i $i "$addr"; i=$((i+1)); done
  } >"$file"
}

start_node() {  # config shard data
  "$BIN" serve --config "$1" --shard "$2" --data "$3" 2>>"$TMP/nodes.log" &
  PIDS+=($!)
}

echo "distkv benchmarks: wrk -t1 -c$CONNS, ${SECONDS_EACH}s per run, 100-byte values, $(nproc) cores"

# 1. nginx fixed 200 ----------------------------------------------------------
NGINX_PORT=$BASE_PORT
cat >"$TMP/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $TMP/nginx.pid;
error_log $TMP/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  server { listen 127.0.0.1:$NGINX_PORT; location / { return 200 "ok"; } }
}
NGINX
nginx -c "$TMP/nginx.conf" -p "$TMP" &
PIDS+=($!)
wait_http "http://127.0.0.1:$NGINX_PORT/"
echo "nginx (1 worker) fixed 200:"
run_wrk "nginx fixed 200" "http://127.0.0.1:$NGINX_PORT" BENCH_OP=get

# 2. one node per fsync mode ------------------------------------------------------
port=$((BASE_PORT + 1))
for mode in never everysec always; do
  addr="127.0.0.1:$port"
  node_config "$TMP/$mode.toml" "$mode" "$addr"
  start_node "$TMP/$mode.toml" s0 "$TMP/data-$mode"
  wait_http "http://$addr/health"
  echo "distkv, fsync=$mode:"
  run_wrk "PUT new keys, fsync=$mode" "http://$addr" BENCH_OP=put
  # Preload the key space the GET run reads.
  seq 0 9999 | sed 's/^/key:/' >"$TMP/keys.txt"
  env BENCH_OP=put BENCH_KEY_FILE="$TMP/keys.txt" wrk -t1 -c"$CONNS" -d3s -s "$LUA" "http://$addr" >/dev/null
  run_wrk "GET existing keys, fsync=$mode" "http://$addr" BENCH_OP=get BENCH_KEY_FILE="$TMP/keys.txt"
  port=$((port + 1))
done

# 3. direct vs forwarded -------------------------------------------------------------
A="127.0.0.1:$port"; B="127.0.0.1:$((port + 1))"
node_config "$TMP/two.toml" always "$A" "$B"
start_node "$TMP/two.toml" s0 "$TMP/two-a"
start_node "$TMP/two.toml" s1 "$TMP/two-b"
wait_http "http://$A/health"; wait_http "http://$B/health"
seq 0 39999 | sed 's/^/key:/' | "$BIN" locate --config "$TMP/two.toml" | awk '$3 == "s1" {print $1}' | head -n 10000 >"$TMP/b-keys.txt"
env BENCH_OP=put BENCH_KEY_FILE="$TMP/b-keys.txt" wrk -t1 -c"$CONNS" -d3s -s "$LUA" "http://$B" >/dev/null
echo "two shards, keys owned by s1 ($B):"
run_wrk "GET direct to the owner" "http://$B" BENCH_OP=get BENCH_KEY_FILE="$TMP/b-keys.txt"
run_wrk "GET through the other node (forwarded)" "http://$A" BENCH_OP=get BENCH_KEY_FILE="$TMP/b-keys.txt"
run_wrk "PUT direct to the owner" "http://$B" BENCH_OP=put BENCH_KEY_FILE="$TMP/b-keys.txt"
run_wrk "PUT through the other node (forwarded)" "http://$A" BENCH_OP=put BENCH_KEY_FILE="$TMP/b-keys.txt"

# 4. redis ------------------------------------------------------------------------------
RPORT=$((port + 2))
redis_run() {  # label, server args...
  local label=$1; shift
  redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --dir "$TMP" "$@" >"$TMP/redis.log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 50); do redis-cli -p "$RPORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
  local cmd="redis-benchmark -p $RPORT -c $CONNS -d 100 -t set,get -n 200000 -r 10000 -q"
  local out; out=$($cmd 2>/dev/null | tr '\r' '\n' | grep -E '^(SET|GET):' || true)
  record "redis SET, $label" "$(awk '/^SET:/ {printf "%d", $2}' <<<"$out")" "redis-server $* ; $cmd"
  record "redis GET, $label" "$(awk '/^GET:/ {printf "%d", $2}' <<<"$out")" "redis-server $* ; $cmd"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}
echo "redis-server:"
redis_run "no persistence" --appendonly no
redis_run "appendfsync always" --appendonly yes --appendfsync always

# Summary -------------------------------------------------------------------------------
nginx_rps=$(cut -d'|' -f2 <<<"${RESULTS[0]}")
echo
echo "| run | req/s | vs nginx fixed 200 | command |"
echo "|---|---:|---:|---|"
for r in "${RESULTS[@]}"; do
  IFS='|' read -r label rps cmd <<<"$r"
  ratio=$(awk -v a="$rps" -v b="$nginx_rps" 'BEGIN { if (b > 0 && a != "") printf "%.2f", a / b; else print "-" }')
  echo "| $label | $rps | $ratio | \`$cmd\` |"
done
