#!/usr/bin/env bash
# TLS and auth benchmarks, all in one run (the ratios are what counts):
# one node each for plain HTTP, HTTPS, and HTTP with [auth] on, same build,
# same settings (fsync=never: the network layer is what differs), each
# loaded with the same 10,000 keys of 100 bytes. Runs alternate between the
# nodes so drift on the machine hits both sides of a ratio alike.
#
#   scripts/bench-security.sh        (after make; needs wrk, curl, openssl)
#   BENCH_SECONDS (10) and BENCH_CONNECTIONS (50) as for scripts/bench.sh; ROUNDS (2).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/distkv
LUA=bench/wrk/kv.lua
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-50}
export BENCH_CONNECTIONS=$CONNS BENCH_KEYS=10000
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT
TOKEN=bench-writer-token-0123456789

# Certificates: a CA and a node certificate for 127.0.0.1.
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -days 2 -keyout "$TMP/ca.key" -out "$TMP/ca.crt" -subj /CN=bench-ca 2>/dev/null
openssl req -new $ec -keyout "$TMP/node.key" -out "$TMP/node.csr" -subj /CN=bench 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$TMP/san.ext"
openssl x509 -req -in "$TMP/node.csr" -CA "$TMP/ca.crt" -CAkey "$TMP/ca.key" -CAcreateserial \
  -days 2 -extfile "$TMP/san.ext" -out "$TMP/node.crt" 2>/dev/null

# start NAME PORT EXTRA_TOML: one node of its own one-shard cluster.
start() {
  local name=$1 port=$2 extra=$3
  printf '[storage]\nfsync = "never"\n%b\n[[shards]]\nname = "%s"\nidx = 0\naddress = "127.0.0.1:%s"\n' \
    "$extra" "$name" "$port" >"$TMP/$name.toml"
  $BIN serve --config "$TMP/$name.toml" --shard "$name" --data "$TMP/data-$name" \
    >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
}
start plain 18601 ""
start tls 18602 "[tls]\ncert = \"node.crt\"\nkey = \"node.key\"\nca = \"ca.crt\"\n"
start auth 18603 "[auth]\ncluster_secret = \"bench-cluster-secret-0123456789\"\ntokens = [ { token = \"$TOKEN\", role = \"write\" } ]\n"
sleep 1
for url in http://127.0.0.1:18601 https://127.0.0.1:18602 http://127.0.0.1:18603; do
  curl -fsS --cacert "$TMP/ca.crt" -o /dev/null "$url/health"
done

HDR=(-H "Authorization: Bearer $TOKEN")
load() {  # every key once, so GETs find their value
  BENCH_OP=load wrk -t1 -c"$CONNS" -d60s -s "$LUA" "$@" >/dev/null
}
load http://127.0.0.1:18601
load https://127.0.0.1:18602
load "${HDR[@]}" http://127.0.0.1:18603

TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_ticks() {  # utime + stime of a process, in clock ticks (/proc/PID/stat fields 14, 15)
  awk '{print $14 + $15}' "/proc/$1/stat"
}
# LABEL OP PID wrk-args...: req/s, p99, and the CPU time the node (PID) spent
# per request. On a shared, saturated machine req/s measures the scheduler as
# much as the node; CPU per request does not depend on how much of the CPU
# the node was given, so its ratio is the steadier figure of what TLS or auth
# cost the server (the client's own TLS work is not in it).
run() {
  local label=$1 op=$2 pid=$3 out; shift 3
  local t0 t1
  t0=$(cpu_ticks "$pid")
  out=$(BENCH_OP=$op wrk -t1 -c"$CONNS" -d"${SECS}s" --latency -s "$LUA" "$@")
  t1=$(cpu_ticks "$pid")
  local rps p99 bad reqs us
  rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses/ {print $NF}' <<<"$out")
  reqs=$(awk '/requests in/ {print $1}' <<<"$out")
  us=$(awk -v t=$((t1 - t0)) -v u="$TICK_US" -v n="$reqs" 'BEGIN {printf "%.1f", (n > 0 ? t * u / n : 0)}')
  printf '%-14s %9s req/s  p99 %-8s non-2xx %-4s server CPU %6s us/req   (BENCH_OP=%s wrk -t1 -c%s -d%ss --latency -s %s %s)\n' \
    "$label" "$rps" "$p99" "${bad:-0}" "$us" "$op" "$CONNS" "$SECS" "$LUA" "$*"
}
echo "TLS and auth, wrk -t1 -c$CONNS, ${SECS}s each, 100-byte values, 10,000 keys, fsync=never"
for round in $(seq "${ROUNDS:-2}"); do
  echo "round $round"
  run "GET plain" get "${PIDS[0]}" http://127.0.0.1:18601
  run "GET TLS" get "${PIDS[1]}" https://127.0.0.1:18602
  run "PUT plain" put "${PIDS[0]}" http://127.0.0.1:18601
  run "PUT TLS" put "${PIDS[1]}" https://127.0.0.1:18602
  run "GET auth off" get "${PIDS[0]}" http://127.0.0.1:18601
  run "GET auth on" get "${PIDS[2]}" "${HDR[@]}" http://127.0.0.1:18603
  run "PUT auth off" put "${PIDS[0]}" http://127.0.0.1:18601
  run "PUT auth on" put "${PIDS[2]}" "${HDR[@]}" http://127.0.0.1:18603
done
