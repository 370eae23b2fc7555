#!/usr/bin/env bash
# What reads = "durable" costs: a one-shard node at fsync = "always" under a
# 90:10 GET:PUT mix, once with [storage] reads = "durable" (a GET of a value
# whose batch is not yet durable waits for it) and once with "latest" (it
# answers at once), alternating, on two key sets: 100,000 uniform keys and
# 1,000 zipf-hot keys (reads keep hitting keys being written). Prints each
# run's throughput and GET latency, the GETs that waited (commit.reads_held),
# and the durable/latest throughput ratio.
#
#   scripts/bench-reads.sh        (after make)
#   READS_SECONDS (8) and READS_ROUNDS (2) change the run.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=build/distkv
BENCH=build/distkv-bench
SECONDS_EACH=${READS_SECONDS:-8}
ROUNDS=${READS_ROUNDS:-2}
NEXT_PORT=18641
TMP=$(mktemp -d)
PIDS=()
source scripts/bench_lib.sh
trap cleanup EXIT

run() {  # MODE WORKLOAD...: prints "req/s reads_held" after the bench's lines
  local mode=$1; shift
  take_port
  local addr="127.0.0.1:$PORT"
  rm -rf "$TMP/data"
  node_config "$TMP/s.toml" always "$addr"
  sed -i "2a reads = \"$mode\"" "$TMP/s.toml"
  start_node "$TMP/s.toml" s0 "$TMP/data" "$addr"
  local out
  out=$("$BENCH" --targets "$addr" --connections 50 --duration "$SECONDS_EACH" --ratio 90:10 \
        --preload --no-progress "$@" 2>&1) || die "distkv-bench failed: $out"
  local held
  held=$(curl -fsS "http://$addr/stats" | grep -o '"reads_held":[0-9]*' | cut -d: -f2)
  stop_pid "$NODE_PID"
  local rate
  rate=$(sed -n 's/^run: .*: \([0-9,]*\) req\/s.*/\1/p' <<<"$out" | tr -d ,)
  local get
  get=$(grep -m1 '^GET ' <<<"$out")
  printf '  %-8s %8s req/s  GETs that waited %7s   %s\n' "$mode" "$rate" "$held" "$get" >&2
  echo "$rate"
}

echo "fsync = always, 50 connections, GET:PUT 90:10, ${SECONDS_EACH} s per run; GET columns: count, req/s, p50 p90 p99 p99.9 max mean"
for workload in "--keys 100000" "--keys 1000 --distribution zipf"; do
  echo "workload: $workload"
  for round in $(seq "$ROUNDS"); do
    # shellcheck disable=SC2086
    d=$(run durable $workload)
    # shellcheck disable=SC2086
    l=$(run latest $workload)
    echo "  round $round: durable/latest throughput $(ratio "$d" "$l")"
  done
done
