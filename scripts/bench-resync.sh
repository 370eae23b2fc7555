#!/usr/bin/env bash
# Full resync speed: how fast a replica whose position was compacted away
# rebuilds itself from a snapshot of its primary, in MB/s of live data.
#
# One primary and one replica (fsync = "always", 64 MiB segments, automatic
# compaction off). KEYS keys of VALUE_BYTES bytes are written and replicated.
# Then, as the reference in the same run, the replica is killed (SIGKILL),
# every key is written again, and the replica is started: it catches up
# from the log (KEYS records). Then it is killed again, every key is written
# a third time and the primary compacts, so the replica's LSN is no longer
# in the log; the replica is started and receives a snapshot (KEYS records
# too). Reported:
#   log catch-up  replica start to /internal/digest equal to the primary's
#   snapshot      the replica's last_resync_ms: snapshot-begin to
#                 snapshot-end (received, staged in <data>/staging, fsynced,
#                 COMPLETE written)
#   resync total  replica start to equal digests (process start, snapshot,
#                 store reopened, log after it)
# MB/s = the snapshot's bytes (the live records: keys and values with their
# record headers; the log catch-up moves as many) / time.
#
#   scripts/bench-resync.sh [KEYS] [VALUE_BYTES] [PORT]
set -eu
BIN=${DISTKV_BIN:-build/distkv}
BENCH=${DISTKV_BENCH_BIN:-build/distkv-bench}
KEYS=${1:-200000}
VALUE_BYTES=${2:-1000}
PORT=${3:-18150}
RPORT=$((PORT + 1))
d=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill $p 2>/dev/null; wait $p 2>/dev/null; done; rm -rf $d' EXIT
cat > $d/cfg.toml <<T
[storage]
fsync = "always"
compact_dead_ratio = 0
[[shards]]
name = "A"
idx = 0
address = "127.0.0.1:$PORT"
replicas = ["127.0.0.1:$RPORT"]
T
wait_up() {  # address pid: the server answers, and it is ours (not someone else's on the port)
  for _ in $(seq 300); do
    kill -0 $2 2>/dev/null || { echo "the server for $1 exited (port taken?)" >&2; exit 1; }
    curl -s -o /dev/null http://$1/health && return 0
    sleep 0.1
  done
  echo "no answer from $1" >&2; exit 1
}
stat() { curl -s http://$1/stats | python3 -c "import json,sys; s=json.load(sys.stdin); print($2)"; }
digest() { curl -s http://$1/internal/digest; }
start_replica() {
  $BIN serve --config $d/cfg.toml --shard A --replica --data $d/replica --listen 127.0.0.1:$RPORT >>$d/replica.log 2>&1 &
  rpid=$!
  pids+=($rpid)
}

$BIN serve --config $d/cfg.toml --shard A --data $d/primary >$d/primary.log 2>&1 &
pids+=($!)
wait_up 127.0.0.1:$PORT $!
start_replica
wait_up 127.0.0.1:$RPORT $rpid
load="--targets 127.0.0.1:$PORT --connections 32 --keys $KEYS --value-bytes $VALUE_BYTES --no-progress"
$BENCH $load --ratio 0:100 --requests 1 --preload >/dev/null
until [ "$(digest 127.0.0.1:$RPORT)" = "$(digest 127.0.0.1:$PORT)" ]; do sleep 0.2; done
kill -9 $rpid; wait $rpid 2>/dev/null || true
$BENCH $load --ratio 0:100 --requests 1 --preload --seed 2 >/dev/null
c0=$(date +%s.%N)
start_replica
until [ "$(digest 127.0.0.1:$RPORT 2>/dev/null)" = "$(digest 127.0.0.1:$PORT)" ]; do sleep 0.05; done
c1=$(date +%s.%N)
kill -9 $rpid; wait $rpid 2>/dev/null || true
$BENCH $load --ratio 0:100 --requests 1 --preload --seed 3 >/dev/null
curl -s -X POST http://127.0.0.1:$PORT/admin/compact >/dev/null
until [ "$(stat 127.0.0.1:$PORT 's["compaction"]["compactions"]')" -ge 1 ] &&
      [ "$(stat 127.0.0.1:$PORT 's["compaction"]["running"]')" = False ]; do sleep 0.2; done
live=$(stat 127.0.0.1:$PORT 's["live_bytes"]')

t0=$(date +%s.%N)
start_replica
until [ "$(digest 127.0.0.1:$RPORT 2>/dev/null)" = "$(digest 127.0.0.1:$PORT)" ]; do sleep 0.05; done
t1=$(date +%s.%N)
read -r ms bytes done_ <<<"$(stat 127.0.0.1:$RPORT '"%d %d %d" % (s["replication"]["last_resync_ms"], s["replication"]["last_resync_bytes"], s["replication"]["resyncs_completed"])')"
[ "$done_" -ge 1 ] || { echo "the replica did not come back by snapshot" >&2; exit 1; }
echo "command: scripts/bench-resync.sh $KEYS $VALUE_BYTES $PORT"
python3 - "$KEYS" "$VALUE_BYTES" "$live" "$bytes" "$ms" "$t0" "$t1" "$c0" "$c1" <<'PY'
import sys
keys, vb, live, snap, ms, t0, t1, c0, c1 = sys.argv[1:]
snap, ms = int(snap), int(ms)
total, catchup = float(t1) - float(t0), float(c1) - float(c0)
mb = snap / 1e6
print("keys %s x %s B: live %.1f MB (primary /stats), snapshot %.1f MB" % (keys, vb, int(live) / 1e6, mb))
print("log catch-up  %6.2f s  %7.1f MB/s  (replica start to equal digests)" % (catchup, mb / catchup))
print("snapshot      %6.2f s  %7.1f MB/s  (%.2fx the log catch-up)" % (ms / 1e3, mb / max(ms / 1e3, 1e-3), catchup / max(ms / 1e3, 1e-3)))
print("resync total  %6.2f s  %7.1f MB/s  (%.2fx; replica start to equal digests)" % (total, mb / total, catchup / total))
PY
