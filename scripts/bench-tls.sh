#!/usr/bin/env bash
# TLS against plain HTTP, same run: two one-shard nodes (fsync = "never"),
# one plain, one with [tls] (a throw-away CA made with the openssl command),
# driven alternately by distkv-bench with 50 keep-alive connections, one
# request in flight per connection and then 16 (pipelined), GET then PUT.
# Prints req/s and the node's CPU time per request (/proc/PID/stat).
#
#   scripts/bench-tls.sh                 (after make; ROUNDS=3 SECONDS_EACH=4 PORT=18801)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DISTKV_BIN:-build/distkv}
BENCH=${DISTKV_BENCH_BIN:-build/distkv-bench}
PORT=${PORT:-18801}
T=$(mktemp -d)
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $ec -days 2 -keyout "$T/ca.key" -out "$T/ca.crt" -subj /CN=bench-ca 2>/dev/null
openssl req -new $ec -keyout "$T/n.key" -out "$T/n.csr" -subj /CN=bench 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' >"$T/san.ext"
openssl x509 -req -in "$T/n.csr" -CA "$T/ca.crt" -CAkey "$T/ca.key" -CAcreateserial -days 2 \
  -extfile "$T/san.ext" -out "$T/n.crt" 2>/dev/null
shard() { printf '[[shards]]\nname = "A"\nidx = 0\naddress = "127.0.0.1:%s"\n' "$1"; }
{ printf '[storage]\nfsync = "never"\n'; shard "$PORT"; } >"$T/plain.toml"
{ printf '[storage]\nfsync = "never"\n[tls]\ncert = "%s"\nkey = "%s"\nca = "%s"\n' \
    "$T/n.crt" "$T/n.key" "$T/ca.crt"; shard $((PORT + 1)); } >"$T/tls.toml"
"$BIN" serve --config "$T/plain.toml" --shard A --data "$T/plain" >"$T/plain.log" 2>&1 &
plain_pid=$!
"$BIN" serve --config "$T/tls.toml" --shard A --data "$T/tls" >"$T/tls.log" 2>&1 &
tls_pid=$!
trap 'kill $plain_pid $tls_pid 2>/dev/null; wait; rm -rf "$T"' EXIT
plain=(--targets "127.0.0.1:$PORT")
tls=(--targets "127.0.0.1:$((PORT + 1))" --tls --ca "$T/ca.crt")
for _ in $(seq 50); do
  "$BENCH" "${plain[@]}" --requests 1 --keys 1 --no-progress >/dev/null 2>&1 &&
    "$BENCH" "${tls[@]}" --requests 1 --keys 1 --no-progress >/dev/null 2>&1 && break
  sleep 0.2
done
for t in plain tls; do  # the keys, so that GETs find their values
  declare -n target=$t
  "$BENCH" "${target[@]}" --keys 10000 --ratio 0:100 --requests 20000 --connections 16 \
    --no-progress >/dev/null
done
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }  # user + system, clock ticks
secs=${SECONDS_EACH:-4}
for round in $(seq "${ROUNDS:-3}"); do
  for pipeline in 1 16; do
    for mix in 100:0 0:100; do
      for t in plain tls; do
        declare -n target=$t
        pid_var=${t}_pid
        c0=$(cpu "${!pid_var}")
        "$BENCH" "${target[@]}" --keys 10000 --ratio "$mix" --duration "$secs" --connections 50 \
          --pipeline "$pipeline" --no-progress --json "$T/r.json" >/dev/null
        c1=$(cpu "${!pid_var}")
        python3 - "$round" "$pipeline" "$mix" "$t" "$T/r.json" "$c0" "$c1" "$secs" \
          "$(getconf CLK_TCK)" <<'PY'
import json, sys
rnd, pipeline, mix, mode, path, c0, c1, secs, tck = sys.argv[1:]
ops = json.load(open(path))["ops_per_s"]
us = (int(c1) - int(c0)) / int(tck) * 1e6 / (ops * int(secs))
print("round %s pipeline %-2s GET:PUT %-6s %-5s %9.0f req/s  node CPU %5.2f us/req"
      % (rnd, pipeline, mix, mode, ops, us))
PY
      done
    done
  done
done
