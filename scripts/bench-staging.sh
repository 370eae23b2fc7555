#!/usr/bin/env bash
# Memory of a node whose disk cannot keep up: 200 connections each pipelining
# two 8 MiB PUTs at a node whose data-file writes are slowed (--slow-disk),
# once with the default cap on staged bytes ([server] max_staged_bytes) and
# once with the cap out of reach (as before it existed). Prints the node's
# peak resident memory (VmHWM) and staged-bytes figures, and the bench's
# throughput, for each.
#
#   scripts/bench-staging.sh          (after make)
#   STAGING_REQUESTS (400), STAGING_DISK_BYTES_PER_S (200000000), STAGING_CAP
#   (134217728: the default) change the run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/distkv
BENCH=build/distkv-bench
REQUESTS=${STAGING_REQUESTS:-400}
RATE=${STAGING_DISK_BYTES_PER_S:-200000000}
CAP=${STAGING_CAP:-134217728}
PORT=18621
TMP=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill "$PID" 2>/dev/null; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

run() {  # LABEL CAP
  local label=$1 cap=$2
  rm -rf "$TMP/data"
  # header_timeout_ms: the loaded bench client may take seconds to send a
  # pipelined request's head; the run is about memory, not slow clients.
  printf '[server]\nmax_staged_bytes = %s\nheader_timeout_ms = 600000\n[[shards]]\nname = "s"\nidx = 0\naddress = "127.0.0.1:%s"\n' \
    "$cap" "$PORT" >"$TMP/s.toml"
  $BIN serve --config "$TMP/s.toml" --shard s --data "$TMP/data" --slow-disk "$RATE" \
    >"$TMP/node.log" 2>&1 &
  PID=$!
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" && break; sleep 0.1; done
  local cmd=("$BENCH" --targets "127.0.0.1:$PORT" --connections 200 --pipeline 2 --ratio 0:100
             --value-bytes 8388608 --keys 1000 --requests "$REQUESTS" --timeout-ms 600000 --no-progress)
  local out
  out=$("${cmd[@]}" 2>&1)
  local hwm stats
  hwm=$(awk '/VmHWM/ {printf "%d", $2 / 1024}' "/proc/$PID/status")
  stats=$(curl -fsS "http://127.0.0.1:$PORT/stats")
  kill "$PID"; wait "$PID" 2>/dev/null || true; PID=
  printf '%-24s peak RSS %6s MiB  staged_bytes_peak %6s MiB  staging_waits %6s\n' "$label" "$hwm" \
    "$(grep -o '"staged_bytes_peak":[0-9]*' <<<"$stats" | awk -F: '{printf "%d", $2 / 1048576}')" \
    "$(grep -o '"staging_waits":[0-9]*' <<<"$stats" | cut -d: -f2)"
  grep -E "^(run:|op |status |PUT )" <<<"$out" | sed 's/^/    /' || true
  echo "    (node: distkv serve --slow-disk $RATE, [server] max_staged_bytes = $cap, header_timeout_ms = 600000; load: ${cmd[*]})"
}
echo "200 connections x 2 pipelined PUTs of 8 MiB, disk writes slowed to $RATE bytes/s, fsync = always"
run "cap $((CAP / 1048576)) MiB" "$CAP"
run "no cap" 1099511627776
