#!/usr/bin/env bash
# Replication benchmarks, on loopback: one primary and one replica of a
# one-shard cluster, in a temporary directory removed at the end.
#
#   1. lag: distkv-bench writes at a steady rate (open loop) to the primary;
#      the replica's own histogram of apply lag (primary durable -> replica
#      durable, per frame) gives p50/p99, and its /stats lag_ms gauge is
#      sampled every 10 ms alongside.
#   2. catch-up: the primary is loaded with CATCHUP_RECORDS puts, then a
#      replica with an empty data directory is started; the time until its
#      applied LSN equals the primary's gives records/s and MB/s.
#
# Usage: scripts/bench-replication.sh   (make all first)
# Environment: RATE (writes/s, default 2000), DURATION (s, default 20),
# CONNECTIONS (default 16), CATCHUP_RECORDS (default 1000000), VALUE_BYTES
# (default 100), PORT (first of two ports, default 18601), PARTS ("lag catchup"
# by default; name one to run only it), LAG_FSYNC (fsync mode of both nodes in
# the lag part, default always).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DISTKV_BIN:-build/distkv}
BENCH=${DISTKV_BENCH_BIN:-build/distkv-bench}
RATE=${RATE:-2000}
DURATION=${DURATION:-20}
CONNECTIONS=${CONNECTIONS:-16}
CATCHUP_RECORDS=${CATCHUP_RECORDS:-1000000}
VALUE_BYTES=${VALUE_BYTES:-100}
PORT=${PORT:-18601}
PARTS=${PARTS:-lag catchup}
LAG_FSYNC=${LAG_FSYNC:-always}
PRIMARY=127.0.0.1:$PORT
REPLICA=127.0.0.1:$((PORT + 1))

for b in "$BIN" "$BENCH"; do
  [ -x "$b" ] || { echo "$b is missing: run make first" >&2; exit 1; }
done
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

config() {  # fsync -> a sharding.toml on stdout
  cat <<EOF
[storage]
fsync = "$1"
[[shards]]
name = "bench"
idx = 0
address = "$PRIMARY"
replicas = ["$REPLICA"]
EOF
}
for mode in always everysec never; do config $mode >"$WORK/$mode.toml"; done

start() {  # name config [--replica] -> starts a node, waits for /health
  local name=$1 cfg=$2 addr=$PRIMARY; shift 2
  [ "${1:-}" = --replica ] && addr=$REPLICA
  "$BIN" serve --config "$cfg" --shard bench --data "$WORK/$name" "$@" >>"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null --max-time 1 "http://$addr/health" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$name did not start:"; tail -n 20 "$WORK/$name.log"; exit 1
}
stop() {  # name
  local pid; eval "pid=\$PID_$1"
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}
field() {  # address path field -> the first integer field of that name
  curl -fs --max-time 2 "http://$1$2" | grep -o "\"$3\":[0-9]*" | head -n 1 | cut -d: -f2
}
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

echo "machine: $(nproc) cores, $(uname -sr); load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

# --- 1. lag under a steady write load -----------------------------------------
if [[ " $PARTS " == *" lag "* ]]; then
start primary "$WORK/$LAG_FSYNC.toml"
start replica "$WORK/$LAG_FSYNC.toml" --replica --listen "$REPLICA"
echo
echo "== lag: $RATE writes/s for ${DURATION}s, fsync=$LAG_FSYNC on both, ${VALUE_BYTES}-byte values"
cmd=("$BENCH" --targets "$PRIMARY" --ratio 0:100 --rate "$RATE" --duration "$DURATION"
     --connections "$CONNECTIONS" --keys 100000 --value-bytes "$VALUE_BYTES" --no-progress)
echo "command: ${cmd[*]}"
"${cmd[@]}" >"$WORK/lag-bench.txt" 2>&1 &
bench_pid=$!
: >"$WORK/lag-samples.txt"
while kill -0 "$bench_pid" 2>/dev/null; do
  field "$REPLICA" /stats lag_ms >>"$WORK/lag-samples.txt" || true
  sleep 0.01
done
wait "$bench_pid" || { cat "$WORK/lag-bench.txt"; exit 1; }
grep -E "PUT|put|requests|throughput|errors" "$WORK/lag-bench.txt" | head -n 8 | sed 's/^/  bench: /'
curl -fsS "http://$REPLICA/metrics" >"$WORK/replica-metrics.txt"
# Quantiles of a lag histogram of the replica's /metrics, interpolated inside
# the bucket the way Prometheus' histogram_quantile does.
quantiles() {  # metric-name label
  awk -v name="$1" -v label="$2" '
    index($0, name "_bucket") == 1 {
      match($0, /le="[^"]*"/); le = substr($0, RSTART + 4, RLENGTH - 5)
      n++; bound[n] = (le == "+Inf") ? -1 : le * 1000; cum[n] = $2
    }
    index($0, name "_count") == 1 { count = $2 }
    END {
      if (count == 0) { print "  " label ": no samples"; exit }
      split("0.5 0.99 0.999", qs, " ")
      line = sprintf("  %s, %d frames:", label, count)
      for (k = 1; k <= 3; k++) {
        rank = qs[k] * count; prev_b = 0; prev_c = 0
        for (i = 1; i <= n; i++) {
          if (cum[i] >= rank) {
            if (bound[i] < 0) { v = sprintf(">%gms", prev_b); break }
            v = sprintf("%.2fms (bucket %g-%gms)", prev_b + (bound[i] - prev_b) * (rank - prev_c) / (cum[i] - prev_c), prev_b, bound[i])
            break
          }
          prev_b = bound[i]; prev_c = cum[i]
        }
        line = line sprintf("  p%s %s", qs[k] * 100, v)
      }
      print line
    }' "$WORK/replica-metrics.txt"
}
quantiles distkv_replication_visible_lag_seconds "visible lag (primary durable -> readable on the replica)"
quantiles distkv_replication_apply_lag_seconds "apply lag (primary durable -> durable on the replica)"
sort -n "$WORK/lag-samples.txt" | awk '
  { v[NR] = $1 }
  END {
    if (NR == 0) { print "  lag_ms gauge: no samples"; exit }
    printf "  lag_ms gauge sampled every 10 ms (%d samples): p50 %d ms, p99 %d ms, max %d ms\n",
      NR, v[int(NR * 0.5) + (NR * 0.5 > int(NR * 0.5))], v[int(NR * 0.99) + (NR * 0.99 > int(NR * 0.99))], v[NR]
  }'
echo "  replica caught up: applied $(field "$REPLICA" /stats applied_lsn) of $(field "$PRIMARY" /stats durable_lsn)"
stop replica
stop primary
fi

# --- 2. catch-up of a replica that starts far behind --------------------------
if [[ " $PARTS " == *" catchup "* ]]; then
rm -rf "$WORK/primary" "$WORK/replica"
echo
echo "== catch-up: a replica starting $CATCHUP_RECORDS records behind (primary fsync=never while loading, replica fsync=always)"
start primary "$WORK/never.toml"
cmd=("$BENCH" --targets "$PRIMARY" --ratio 0:100 --requests "$CATCHUP_RECORDS" --connections 32
     --pipeline 8 --keys "$CATCHUP_RECORDS" --value-bytes "$VALUE_BYTES" --no-progress)
echo "load: ${cmd[*]}"
"${cmd[@]}" >"$WORK/load.txt" 2>&1 || { cat "$WORK/load.txt"; exit 1; }
target=$(field "$PRIMARY" /stats durable_lsn)
log_bytes=$(( $(field "$PRIMARY" /stats live_bytes) + $(field "$PRIMARY" /stats dead_bytes) ))
echo "  primary: last LSN $target, $((log_bytes / 1000000)) MB of log"
t0=$(now_ms)
start replica "$WORK/always.toml" --replica --listen "$REPLICA"
applied=0
while [ "${applied:-0}" -lt "$target" ]; do
  sleep 0.02
  applied=$(field "$REPLICA" /stats applied_lsn || echo 0)
  if ! kill -0 "$PID_replica" 2>/dev/null || [ $(( $(now_ms) - t0 )) -gt 300000 ]; then
    echo "the replica stopped or did not catch up in 300 s:"; tail -n 20 "$WORK/replica.log"; exit 1
  fi
done
t1=$(now_ms)
received=$(field "$REPLICA" /stats bytes_received)
ms=$((t1 - t0))
echo "  replica applied $applied records in $ms ms (process start included):" \
  "$((applied * 1000 / ms)) records/s, $(awk -v b="$received" -v ms="$ms" 'BEGIN { printf "%.0f", b / 1e6 / (ms / 1000) }') MB/s" \
  "($((received / 1000000)) MB of stream)"
d1=$(curl -fsS "http://$PRIMARY/internal/digest"); d2=$(curl -fsS "http://$REPLICA/internal/digest")
[ "$d1" = "$d2" ] && echo "  digests equal: $d1" || { echo "  DIGESTS DIFFER: $d1 vs $d2"; exit 1; }
fi
echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
