#!/usr/bin/env bash
# `make bench`: the HTTP comparison runs behind BENCHMARKS.md, all in one run
# so that their ratios hold on a shared, noisy machine. Every figure is
# printed with the exact command that produced it.
#
#   1. nginx (1 worker) answering a fixed 200: the HTTP limit of this machine
#      and client (measured first and again last; ratios use the mean)
#   2. one distkv node per fsync mode: GET of existing 100-byte values (the
#      key set is loaded first and checked: the node must hold every key),
#      then PUT of new keys
#   3. redis-benchmark against redis-server, appendfsync always (right after
#      distkv's fsync=always writes, as the disk's latency drifts) and no
#      persistence
#   4. two shards: GET and PUT sent straight to the owner vs. through the
#      other node (forwarded)
#
# Then a table of every figure and the ratios the design's targets speak of.
# Everything printed also goes to $BENCH_OUT/bench-<UTC time>.txt, and a chart
# of the runs (throughput bars, p50/p99 latency) to the .svg of the same name.
# A run whose answers are not all 2xx, or with socket errors, is flagged and
# makes the script exit 1: its rate would measure error answers.
#
# Environment:
#   DISTKV_BIN         the distkv binary (default build/distkv)
#   BENCH_SECONDS      seconds per wrk run (10)
#   BENCH_CONNECTIONS  wrk connections (50); wrk always runs one thread
#   BENCH_KEYS         size of the key set read by the GET runs (10000)
#   BENCH_BASE_PORT    first loopback port to try (28090); ports in use are skipped
#   BENCH_DIR          where the data directories go (/tmp); it must be on the
#                      disk you mean to measure: fsync figures are that disk's
#   BENCH_OUT          where the text output and the SVG chart go (build/bench)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
trap 'echo "bench.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

SECONDS_EACH=${BENCH_SECONDS:-10}
CONNS=${BENCH_CONNECTIONS:-50}
KEYS=${BENCH_KEYS:-10000}
BIN=${DISTKV_BIN:-$PWD/build/distkv}
LUA=bench/wrk/kv.lua
NEXT_PORT=${BENCH_BASE_PORT:-28090}
OUT_DIR=${BENCH_OUT:-build/bench}
mkdir -p "$OUT_DIR"
OUT_STEM="$OUT_DIR/bench-$(date -u +%Y%m%dT%H%M%SZ)"
exec > >(tee "$OUT_STEM.txt")

# --- tools --------------------------------------------------------------------
. scripts/bench_lib.sh
need wrk wrk
need nginx nginx-light
need redis-server redis-server
need redis-benchmark redis-tools
need curl curl
need ss iproute2
[ -x "$BIN" ] || { echo "bench.sh: no distkv binary at $BIN (run make, or set DISTKV_BIN)" >&2; exit 1; }

TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/distkv-bench.XXXXXX")
PIDS=()
trap cleanup EXIT

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "distkv benchmarks: wrk -t1 -c$CONNS, ${SECONDS_EACH}s per run, 100-byte values, $KEYS keys read"
echo "machine: $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME"), load average at the start: $LOAD_START"
echo "distkv: $BIN; data under $TMP"
SYNC_START=$(sync_latency)
echo "disk: 4 KiB append + sync (dd oflag=dsync): $SYNC_START a write"

# --- 1. nginx fixed 200 ----------------------------------------------------------
start_nginx
echo "nginx (1 worker) fixed 200, $NGINX_URL:"
run_wrk "nginx fixed 200" "$NGINX_URL" BENCH_OP=get

# --- 2. one node per fsync mode ------------------------------------------------------
seq 0 $((KEYS - 1)) | sed 's/^/key:/' >"$TMP/keys.txt"
for mode in never everysec always; do
  take_port
  addr="127.0.0.1:$PORT"
  node_config "$TMP/$mode.toml" "$mode" "$addr"
  start_node "$TMP/$mode.toml" s0 "$TMP/data-$mode" "$addr"
  echo "distkv, one node, fsync=$mode, $addr:"
  load_keys "$addr" "$TMP/keys.txt"
  run_wrk "GET existing keys, fsync=$mode" "http://$addr" BENCH_OP=get BENCH_KEY_FILE="$TMP/keys.txt"
  [ "$mode" = always ] && echo "  (disk now: $(sync_latency) a synced append)"
  run_wrk "PUT new keys, fsync=$mode" "http://$addr" BENCH_OP=put
  commit_stats "$addr"
  stop_pid "$NODE_PID"
done

# --- 3. redis ---------------------------------------------------------------------------------
# appendfsync always first, right after distkv's fsync=always writes: the
# disk's sync latency drifts, and these two are compared.
echo "redis-server (disk now: $(sync_latency) a synced append):"
redis_run "appendfsync always" --appendonly yes --appendfsync always
redis_run "no persistence" --appendonly no

# --- 4. direct vs forwarded -------------------------------------------------------------
take_port; A="127.0.0.1:$PORT"
take_port; B="127.0.0.1:$PORT"
node_config "$TMP/two.toml" always "$A" "$B"
start_node "$TMP/two.toml" s0 "$TMP/two-a" "$A"; PID_A=$NODE_PID
start_node "$TMP/two.toml" s1 "$TMP/two-b" "$B"; PID_B=$NODE_PID
# The first KEYS keys that shard s1 owns (awk reads all of locate's output:
# no early exit, no SIGPIPE).
seq 0 $((KEYS * 4 - 1)) | sed 's/^/key:/' | "$BIN" locate --config "$TMP/two.toml" |
  awk -v n="$KEYS" '$3 == "s1" && c < n { print $1; c++ }' >"$TMP/s1-keys.txt"
[ "$(wc -l <"$TMP/s1-keys.txt")" -eq "$KEYS" ] || die "fewer than $KEYS keys of shard s1 found"
echo "two shards (fsync=always), s0 at $A, s1 at $B; keys owned by s1:"
load_keys "$B" "$TMP/s1-keys.txt"
run_wrk "GET direct to the owner" "http://$B" BENCH_OP=get BENCH_KEY_FILE="$TMP/s1-keys.txt"
run_wrk "GET through the other node (forwarded)" "http://$A" BENCH_OP=get BENCH_KEY_FILE="$TMP/s1-keys.txt"
run_wrk "PUT direct to the owner" "http://$B" BENCH_OP=put BENCH_KEY_FILE="$TMP/s1-keys.txt"
run_wrk "PUT through the other node (forwarded)" "http://$A" BENCH_OP=put BENCH_KEY_FILE="$TMP/s1-keys.txt"
commit_stats "$B"
[ "$(stats_keys "$A")" = 0 ] || die "shard s0 holds keys: the forwarded requests were not all forwarded"
stop_pid "$PID_A"; stop_pid "$PID_B"

# --- 1 again: how much did the machine drift? -----------------------------------------
echo "nginx again:"
run_wrk "nginx fixed 200, again at the end" "$NGINX_URL" BENCH_OP=get
LOAD_END=$(cut -d' ' -f1-3 /proc/loadavg)
SYNC_END=$(sync_latency)

# --- summary ------------------------------------------------------------------------------
nginx=$(( ($(rate_of "nginx fixed 200") + $(rate_of "nginx fixed 200, again at the end")) / 2 ))
echo
echo "load average at the start: $LOAD_START; at the end: $LOAD_END"
echo "disk, 4 KiB append + sync: $SYNC_START a write at the start, $SYNC_END at the end"
echo "nginx reference (mean of the first and last run): $nginx req/s"
echo
echo "| run | req/s | p99 | vs nginx | command |"
echo "|---|---:|---:|---:|---|"
for r in "${RESULTS[@]}"; do
  IFS='|' read -r label rps p99 bad errs cmd _ <<<"$r"
  note=""; { [ "$bad" != 0 ] || [ "$errs" != 0 ]; } && note=" (FLAGGED: $bad non-2xx, $errs socket errors)"
  echo "| $label$note | $rps | $p99 | $(ratio "$rps" "$nginx") | \`$cmd\` |"
done
echo
echo "| target | measured | goal |"
echo "|---|---:|---:|"
for mode in never everysec always; do
  echo "| GET (fsync=$mode node) / nginx fixed 200 | $(ratio "$(rate_of "GET existing keys, fsync=$mode")" "$nginx") | ≥ 0.90 |"
done
echo "| PUT fsync=always / fsync=never | $(ratio "$(rate_of "PUT new keys, fsync=always")" "$(rate_of "PUT new keys, fsync=never")") | ≥ 0.50 |"
echo "| PUT fsync=always / redis SET appendfsync always | $(ratio "$(rate_of "PUT new keys, fsync=always")" "$(rate_of "redis SET, appendfsync always")") | ≥ 1.00 |"
echo "| GET forwarded / direct | $(ratio "$(rate_of "GET through the other node (forwarded)")" "$(rate_of "GET direct to the owner")") | ≥ 0.50 |"
echo "| PUT forwarded / direct | $(ratio "$(rate_of "PUT through the other node (forwarded)")" "$(rate_of "PUT direct to the owner")") | ≥ 0.50 |"

# The chart of every run, next to the text.
{ echo "distkv benchmarks, $(date -u +%Y-%m-%d) — wrk -t1 -c$CONNS, ${SECONDS_EACH}s a run, $(nproc) cores"
  for r in "${RESULTS[@]}"; do
    IFS='|' read -r label rps p99 _ _ _ p50 <<<"$r"
    printf '%s\t%s\t%s\t%s\n' "$label" "$rps" "$p50" "$p99"
  done
} | awk -f scripts/bench_chart.awk >"$OUT_STEM.svg"
echo
echo "written: $OUT_STEM.txt and $OUT_STEM.svg (the chart)"
if [ "$FLAGGED" != 0 ]; then
  echo "bench.sh: some runs had non-2xx answers or socket errors (FLAGGED above); their rates are not valid" >&2
  exit 1
fi
