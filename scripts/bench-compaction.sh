#!/usr/bin/env bash
# GET/PUT throughput and p99 while a compaction runs, against the same run
# without one. One node (fsync=never, 4 MiB segments, automatic compaction
# off). Each round first fills the log with overwrites (a write-only load,
# which leaves ~90% of the sealed bytes dead), then runs the measured 90:10
# mix; in the "compaction" round POST /admin/compact goes out as the mix
# starts. Rounds alternate, twice each.
#
#   scripts/bench-compaction.sh [PORT]
set -eu
BIN=${DISTKV_BIN:-build/distkv}
BENCH=${DISTKV_BENCH_BIN:-build/distkv-bench}
PORT=${1:-18099}
d=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf $d' EXIT
cat > $d/cfg.toml <<T
[storage]
fsync = "never"
segment_bytes = 4194304
compact_dead_ratio = 0
[[shards]]
name = "A"
idx = 0
address = "127.0.0.1:$PORT"
T
$BIN serve --config $d/cfg.toml --shard A --data $d/data >$d/log 2>&1 &
pid=$!
for i in $(seq 100); do curl -s -o /dev/null http://127.0.0.1:$PORT/health && break; sleep 0.1; done
common="--targets 127.0.0.1:$PORT --connections 32 --keys 100000 --value-bytes 100 --no-progress"
$BENCH $common --ratio 0:100 --duration 2 --preload >/dev/null
round() { # $1 = with|without
  $BENCH $common --ratio 0:100 --duration 8 --seed $RANDOM >/dev/null
  local post=
  if [ "$1" = with ]; then
    (sleep 0.2; curl -s -X POST http://127.0.0.1:$PORT/admin/compact >/dev/null) &
    post=$!
  fi
  $BENCH $common --ratio 90:10 --duration 4 --seed $RANDOM --json $d/r.json >/dev/null
  # Only that request: a bare `wait` would wait for the node too.
  [ -z "$post" ] || wait $post
  python3 - "$1" $d/r.json <<'PY'
import json, sys
r = json.load(open(sys.argv[2]))
print("%-8s compaction: %9.0f req/s  GET p99 %7.0f us  PUT p99 %7.0f us" % (
    sys.argv[1], r["ops_per_s"], r["get"]["latency_us"]["p99"], r["put"]["latency_us"]["p99"]))
PY
  curl -s http://127.0.0.1:$PORT/stats | python3 -c 'import json,sys; c=json.load(sys.stdin)["compaction"]; print("   compactions", c["compactions"], "last_ms", c["last_ms"], "reclaimed", c["bytes_reclaimed"])'
}
echo "command: scripts/bench-compaction.sh $PORT"
for i in 1 2; do round without; round with; done
