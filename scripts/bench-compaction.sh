#!/usr/bin/env bash
# GET/PUT throughput and p99 while a compaction runs, against the same run
# without one. One node (fsync=never, or $FSYNC; 4 MiB segments, automatic
# compaction off). Each round first fills the log with overwrites (a write-only load,
# which leaves ~90% of the sealed bytes dead), then runs the measured 90:10
# mix; in the "compaction" round POST /admin/compact goes out as the mix
# starts. Rounds alternate, ROUNDS times each (default 3).
#
# Two throughputs per round: the load generator's over its whole 4 s window
# ("window"), and the node's own over the time the compaction ran ("during"):
# a poller reads the node's request counter and the compaction's "running"
# flag from /stats every 50 ms (in both kinds of round, so both carry its
# cost); "during" is the requests counted between samples that both saw the
# compaction running, per second, while the load ran. In a round without a
# compaction it is the same rate over the whole load. At the end, the
# ratios (with / without) of the means.
#
#   [ROUNDS=N] [FSYNC=always|everysec|never] [EXTRA_STORAGE='key = value'] \
#     scripts/bench-compaction.sh [PORT]
set -eu
BIN=${DISTKV_BIN:-build/distkv}
BENCH=${DISTKV_BENCH_BIN:-build/distkv-bench}
PORT=${1:-18099}
ROUNDS=${ROUNDS:-3}
d=$(mktemp -d)
trap 'kill $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf $d' EXIT
cat > $d/cfg.toml <<T
[storage]
fsync = "${FSYNC:-never}"
segment_bytes = 4194304
compact_dead_ratio = 0
${EXTRA_STORAGE:-}
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

# Samples "seconds requests running" from /stats every 50 ms for $1 seconds.
cat > $d/poll.py <<'PY'
import http.client, json, sys, time
port, seconds, out = int(sys.argv[1]), float(sys.argv[2]), open(sys.argv[3], "w")
c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
t0 = time.monotonic()
while time.monotonic() - t0 < seconds:
    c.request("GET", "/stats")
    s = json.loads(c.getresponse().read())
    out.write("%.4f %d %d\n" % (time.monotonic() - t0, s["requests"]["total"],
                                s["compaction"]["running"]))
    time.sleep(0.05)
PY

round() { # $1 = with|without
  $BENCH $common --ratio 0:100 --duration 8 --seed $RANDOM >/dev/null
  python3 $d/poll.py $PORT 5 $d/samples &
  local poll=$! post=
  if [ "$1" = with ]; then
    (sleep 0.2; curl -s -X POST http://127.0.0.1:$PORT/admin/compact >/dev/null) &
    post=$!
  fi
  $BENCH $common --ratio 90:10 --duration 4 --seed $RANDOM --json $d/r.json >/dev/null
  # Only those two: a bare `wait` would wait for the node too.
  [ -z "$post" ] || wait $post
  wait $poll
  local ms
  ms=$(curl -s http://127.0.0.1:$PORT/stats | python3 -c 'import json,sys; print(json.load(sys.stdin)["compaction"]["last_ms"])')
  python3 - "$1" $d/r.json $d/samples $ms <<'PY' | tee -a $d/rounds
import json, sys
kind, r = sys.argv[1], json.load(open(sys.argv[2]))
samples = [tuple(map(float, l.split())) for l in open(sys.argv[3])]
# Intervals between two samples while the load ran (more than the poller's
# own requests counted: the poller may start or end a little apart from the
# load), both with the compaction running in a "with" round.
n = t = 0
for a, b in zip(samples, samples[1:]):
    if b[1] - a[1] > 20 and (kind == "without" or (a[2] and b[2])):
        n += b[1] - a[1]
        t += b[0] - a[0]
during = n / t if t else 0
print("%-8s compaction: window %6.0f req/s  during %6.0f req/s  GET p99 %6.0f us  PUT p99 %6.0f us  last_ms %s" % (
    kind, r["ops_per_s"], during, r["get"]["latency_us"]["p99"], r["put"]["latency_us"]["p99"],
    sys.argv[4] if kind == "with" else "-"))
PY
}
echo "command: ${FSYNC:+FSYNC=$FSYNC }ROUNDS=$ROUNDS${EXTRA_STORAGE:+ EXTRA_STORAGE='$EXTRA_STORAGE'} scripts/bench-compaction.sh $PORT"
for i in $(seq $ROUNDS); do round without; round with; done
curl -s http://127.0.0.1:$PORT/stats | python3 -c 'import json,sys; c=json.load(sys.stdin)["compaction"]; print("compactions", c["compactions"], "reclaimed", c["bytes_reclaimed"], "bytes")'
python3 - $d/rounds <<'PY'
import sys
rows = {"with": [], "without": []}
for l in open(sys.argv[1]):
    f = l.split()
    rows[f[0]].append((float(f[3]), float(f[6]), float(f[10]), float(f[14])))
mean = lambda k, i: sum(r[i] for r in rows[k]) / len(rows[k])
for name, i in (("window throughput", 0), ("throughput during the compaction", 1),
                ("GET p99", 2), ("PUT p99", 3)):
    print("%-34s %8.0f / %8.0f = %.2fx" % (name, mean("with", i), mean("without", i),
                                          mean("with", i) / mean("without", i)))
PY
