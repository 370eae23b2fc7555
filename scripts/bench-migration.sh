#!/usr/bin/env bash
# Slot migration benchmark, in one run: three shards holding BENCH_KEYS keys
# of 100 bytes, a fourth shard added and `distkv rebalance` run while
# distkv-bench loads the cluster (90% GET, 10% PUT). It prints
#   - the client's throughput and p99 in a run before the rebalance and in a
#     run of the same length during it (the rebalance starts 2 s into it),
#   - the rebalance's own lines: keys and bytes moved per range, time, and how
#     long the source paused the slots at the cutover,
#   - migration speed (keys/s, MB/s) over the whole rebalance.
#
#   scripts/bench-migration.sh      (after make)
#   BENCH_KEYS (300000), BENCH_SECONDS (10), BENCH_CONNECTIONS (50), FSYNC (always)
#   ETCD=1: the same with the etcd coordinator (an etcd of Debian's etcd-server on
#   ports 18721-18722; the map, the new shard and every cutover go through it)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DISTKV_BIN:-build/distkv}
BENCH=${DISTKV_BENCH_BIN:-build/distkv-bench}
KEYS=${BENCH_KEYS:-300000}
SECS=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-50}
FSYNC=${FSYNC:-always}
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$TMP"; }
trap cleanup EXIT

shard() { printf '\n[[shards]]\nname = "%s"\nidx = %s\naddress = "127.0.0.1:%s"\n' "$@"; }
COORDINATOR=""
if [ "${ETCD:-0}" = 1 ]; then
  etcd --name bench --data-dir "$TMP/etcd" --listen-client-urls http://127.0.0.1:18721 \
    --advertise-client-urls http://127.0.0.1:18721 --listen-peer-urls http://127.0.0.1:18722 \
    --initial-advertise-peer-urls http://127.0.0.1:18722 \
    --initial-cluster bench=http://127.0.0.1:18722 >"$TMP/etcd.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do curl -sf http://127.0.0.1:18721/health >/dev/null && break; sleep 0.1; done
  COORDINATOR=$'[coordinator]\netcd = ["127.0.0.1:18721"]\n'
fi
{ printf '%s[storage]\nfsync = "%s"\n' "$COORDINATOR" "$FSYNC"
  shard A 0 18701; shard B 1 18702; shard C 2 18703; } >"$TMP/three.toml"
{ cat "$TMP/three.toml"; shard D 3 18704; printf 'slots = []\n'; } >"$TMP/four.toml"
for s in A B C; do
  $BIN serve --config "$TMP/three.toml" --shard $s --data "$TMP/data-$s" >"$TMP/$s.log" 2>&1 &
  PIDS+=($!)
done
$BIN serve --config "$TMP/four.toml" --shard D --data "$TMP/data-D" >"$TMP/D.log" 2>&1 &
PIDS+=($!)
for p in 18701 18702 18703 18704; do
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$p/health" >/dev/null && break; sleep 0.1; done
done
if [ -n "$COORDINATOR" ]; then  # until every primary holds its lease
  for p in 18701 18702 18703 18704; do
    for _ in $(seq 200); do
      curl -sf "http://127.0.0.1:$p/health" | grep -q '"writes_allowed":true' && break; sleep 0.1
    done
  done
fi

load() {  # load SECONDS LABEL: distkv-bench over the three old shards
  $BENCH --config "$TMP/three.toml" --connections "$CONNS" --duration "$1" --ratio 90:10 \
    --keys "$KEYS" --value-bytes 100 --no-progress --json "$TMP/$2.json" >"$TMP/$2.txt"
}
echo "preloading $KEYS keys of 100 bytes..."
$BENCH --config "$TMP/three.toml" --connections "$CONNS" --requests 1 --keys "$KEYS" \
  --value-bytes 100 --preload --no-progress >/dev/null
echo "== before: ${SECS} s of load"
load "$SECS" before
sed -n '/^run:/,$p' "$TMP/before.txt"

echo "== during: ${SECS} s of load, distkv rebalance from second 2"
load "$SECS" during &
LOAD=$!
sleep 2
start=$(date +%s.%N)
$BIN rebalance --config "$TMP/four.toml" 2>&1 | tee "$TMP/rebalance.txt"
end=$(date +%s.%N)
wait $LOAD
sed -n '/^run:/,$p' "$TMP/during.txt"
moved_keys=$(grep -o 'done, [0-9]* keys' "$TMP/rebalance.txt" | awk '{k += $2} END {print k + 0}')
moved_mb=$(grep -o 'keys, [0-9.]* [KM]B' "$TMP/rebalance.txt" |
  awk '{v = $2; if ($3 == "KB") v /= 1024; m += v} END {printf "%.1f", m}')
awk -v s="$start" -v e="$end" -v k="$moved_keys" -v m="$moved_mb" -v run="$SECS" 'BEGIN {
  t = e - s
  printf "== rebalance: %d keys, %.1f MB in %.2f s: %.0f keys/s, %.1f MB/s\n", k, m, t, k / t, m / t
  printf "(the rebalance lasted %.1f s of the %d s \"during\" run)\n", t, run
}'
