#!/usr/bin/env bash
# The ratios of the design's performance targets, measured interleaved: each
# round runs every side of every ratio back to back, and the medians over the
# rounds are reported. On a shared machine whose speed drifts by 2x within
# minutes, this is what makes a ratio mean something.
#
#   forward   two shards: GET and PUT sent straight to the owner vs. through
#             the other node (forwarded); fsync = FORWARD_FSYNC (always)
#   durable   PUT of new keys at fsync=always vs. fsync=never vs. Redis SET
#             with appendfsync always (redis-benchmark, as scripts/bench.sh);
#             and PUT fsync=never vs. Redis SET with appendonly no, the two
#             servers with no disk on either side
#   get       GET of existing keys vs. nginx's fixed 200
#
#   scripts/bench-ratios.sh                       (after make; all parts)
#   PARTS="forward" ROUNDS=7 BENCH_SECONDS=5 scripts/bench-ratios.sh
#
# Environment: PARTS (forward durable get), ROUNDS (5), FORWARD_FSYNC
# (always), DISTKV_BIN_BEFORE (another binary, e.g. an older build, measured
# in the same rounds, which of the two goes first alternating: durable runs
# it at fsync=always, "PUT always / PUT always, before"; get serves the same
# keys from it, "GET / GET before"),
# and DISTKV_BIN, BENCH_SECONDS (5), BENCH_CONNECTIONS (50),
# BENCH_KEYS (10000), BENCH_BASE_PORT, BENCH_DIR as for scripts/bench.sh.
# Every wrk and redis-benchmark command is printed with its figures.
set -Eeuo pipefail
cd "$(dirname "$0")/.."
trap 'echo "bench-ratios.sh: line $LINENO: \"$BASH_COMMAND\" failed" >&2' ERR

SECONDS_EACH=${BENCH_SECONDS:-5}
CONNS=${BENCH_CONNECTIONS:-50}
KEYS=${BENCH_KEYS:-10000}
BIN=${DISTKV_BIN:-$PWD/build/distkv}
LUA=bench/wrk/kv.lua
NEXT_PORT=${BENCH_BASE_PORT:-28190}
ROUNDS=${ROUNDS:-5}
PARTS=${PARTS:-forward durable get}
FORWARD_FSYNC=${FORWARD_FSYNC:-always}

. scripts/bench_lib.sh
need wrk wrk
need curl curl
need ss iproute2
[[ " $PARTS " == *" durable "* ]] && { need redis-server redis-server; need redis-benchmark redis-tools; }
REDIS_TESTS=set  # only Redis's SET is a side of a ratio
[[ " $PARTS " == *" get "* ]] && need nginx nginx-light
[ -x "$BIN" ] || die "no distkv binary at $BIN (run make, or set DISTKV_BIN)"
TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/distkv-ratios.XXXXXX")
PIDS=()
RESULTS=()
FLAGGED=0
trap cleanup EXIT

# last_rate LABEL: the rate of the most recent run with that label.
last_rate() {
  local i r
  for ((i = ${#RESULTS[@]} - 1; i >= 0; i--)); do
    r=${RESULTS[$i]}
    [ "${r%%|*}" = "$1" ] && { cut -d'|' -f2 <<<"$r"; return; }
  done
  echo 0
}
declare -A SERIES  # name -> space-separated values, one a round
add() { SERIES[$1]="${SERIES[$1]:-} $2"; }

# CPU time, in clock ticks, of the given processes (user + system) plus that
# of this shell's finished children (wrk, redis-benchmark).
TICK_US=$((1000000 / $(getconf CLK_TCK)))
cpu_ticks() {
  local p t=0 u s cu cs
  for p in "$@"; do
    read -r u s _ < <(proc_ticks "$p")
    t=$((t + u + s))
  done
  read -r _ _ cu cs < <(proc_ticks $$)
  echo $((t + cu + cs))
}
# measure LABEL URL PIDS VAR=VALUE...: run_wrk, and the CPU the whole run
# cost (the servers in PIDS and wrk) a request, in microseconds: on a machine
# that others load as well, this moves far less than the rate does.
measure() {
  local label=$1 url=$2 pids=$3 before after rate; shift 3
  before=$(cpu_ticks $pids)
  run_wrk "$label" "$url" "$@"
  after=$(cpu_ticks $pids)
  rate=$(last_rate "$label")
  LAST_CPU=$(awk -v t=$((after - before)) -v us=$TICK_US -v r="$rate" -v s="$SECONDS_EACH" \
    'BEGIN { if (r > 0) printf "%.1f", t * us / (r * s); else print 0 }')
  echo "    CPU a request (servers and wrk): $LAST_CPU us"
}

echo "distkv ratios: $ROUNDS interleaved rounds, wrk -t1 -c$CONNS, ${SECONDS_EACH}s a run, 100-byte values"
echo "machine: $(nproc) cores, load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "distkv: $BIN"

seq 0 $((KEYS - 1)) | sed 's/^/key:/' >"$TMP/keys.txt"

if [[ " $PARTS " == *" forward "* ]]; then
  take_port; A="127.0.0.1:$PORT"
  take_port; B="127.0.0.1:$PORT"
  node_config "$TMP/two.toml" "$FORWARD_FSYNC" "$A" "$B"
  start_node "$TMP/two.toml" s0 "$TMP/two-a" "$A"; FWD_A=$NODE_PID
  start_node "$TMP/two.toml" s1 "$TMP/two-b" "$B"; FWD_B=$NODE_PID
  seq 0 $((KEYS * 4 - 1)) | sed 's/^/key:/' | "$BIN" locate --config "$TMP/two.toml" |
    awk -v n="$KEYS" '$3 == "s1" && c < n { print $1; c++ }' >"$TMP/s1-keys.txt"
  [ "$(wc -l <"$TMP/s1-keys.txt")" -eq "$KEYS" ] || die "fewer than $KEYS keys of shard s1 found"
  echo "forward: two shards (fsync=$FORWARD_FSYNC), s0 at $A forwards to the owner s1 at $B"
  load_keys "$B" "$TMP/s1-keys.txt"
fi
if [[ " $PARTS " == *" durable "* ]]; then
  for mode in always never; do
    take_port
    addr="127.0.0.1:$PORT"
    node_config "$TMP/$mode.toml" "$mode" "$addr"
    start_node "$TMP/$mode.toml" s0 "$TMP/data-$mode" "$addr"
    eval "DUR_$mode=$addr"
  done
  if [ -n "${DISTKV_BIN_BEFORE:-}" ]; then
    [ -x "$DISTKV_BIN_BEFORE" ] || die "no distkv binary at $DISTKV_BIN_BEFORE"
    take_port
    DUR_before="127.0.0.1:$PORT"
    node_config "$TMP/before.toml" always "$DUR_before"
    BIN_AFTER=$BIN; BIN=$DISTKV_BIN_BEFORE
    start_node "$TMP/before.toml" s0 "$TMP/data-before" "$DUR_before"
    BIN=$BIN_AFTER
    echo "durable: $DISTKV_BIN_BEFORE at fsync=always at $DUR_before"
  fi
  echo "durable: fsync=always at $DUR_always, fsync=never at $DUR_never; disk: $(sync_latency) a synced 4 KiB append"
fi
if [[ " $PARTS " == *" get "* ]]; then
  start_nginx
  take_port; GET_NODE="127.0.0.1:$PORT"
  node_config "$TMP/get.toml" always "$GET_NODE"
  start_node "$TMP/get.toml" s0 "$TMP/data-get" "$GET_NODE"; GET_PID=$NODE_PID
  # nginx's CPU is its worker's: the master only waits.
  NGINX_PIDS="$NGINX_PID $(pgrep -P "$NGINX_PID" | tr '\n' ' ')"
  echo "get: nginx at $NGINX_URL, distkv (fsync=always) at $GET_NODE"
  load_keys "$GET_NODE" "$TMP/keys.txt"
  if [ -n "${DISTKV_BIN_BEFORE:-}" ]; then
    [ -x "$DISTKV_BIN_BEFORE" ] || die "no distkv binary at $DISTKV_BIN_BEFORE"
    take_port; GET_BEFORE="127.0.0.1:$PORT"
    node_config "$TMP/get-before.toml" always "$GET_BEFORE"
    BIN_AFTER=$BIN; BIN=$DISTKV_BIN_BEFORE
    start_node "$TMP/get-before.toml" s0 "$TMP/data-get-before" "$GET_BEFORE"; GET_BEFORE_PID=$NODE_PID
    BIN=$BIN_AFTER
    echo "get: $DISTKV_BIN_BEFORE at $GET_BEFORE"
    load_keys "$GET_BEFORE" "$TMP/keys.txt"
  fi
fi
# measure_get [before]: GET of the loaded keys from this build's node, or
# from the other binary's.
measure_get() {
  if [ "${1:-}" = before ]; then
    measure "GET existing keys, before" "http://$GET_BEFORE" "$GET_BEFORE_PID" BENCH_OP=get \
      BENCH_KEY_FILE="$TMP/keys.txt"
    add "GET CPU us a request, before" "$LAST_CPU"
  else
    measure "GET existing keys" "http://$GET_NODE" "$GET_PID" BENCH_OP=get BENCH_KEY_FILE="$TMP/keys.txt"
    add "GET CPU us a request" "$LAST_CPU"
  fi
}

for round in $(seq 1 "$ROUNDS"); do
  echo "round $round (load average $(cut -d' ' -f1 /proc/loadavg))"
  if [[ " $PARTS " == *" forward "* ]]; then
    for op in get put; do
      measure "${op^^} direct" "http://$B" "$FWD_A $FWD_B" BENCH_OP=$op BENCH_KEY_FILE="$TMP/s1-keys.txt"
      cpu_direct=$LAST_CPU
      measure "${op^^} forwarded" "http://$A" "$FWD_A $FWD_B" BENCH_OP=$op BENCH_KEY_FILE="$TMP/s1-keys.txt"
      add "${op^^} forwarded / direct" "$(ratio "$(last_rate "${op^^} forwarded")" "$(last_rate "${op^^} direct")")"
      add "${op^^} CPU a request, direct / forwarded" "$(ratio "$cpu_direct" "$LAST_CPU")"
      add "${op^^} CPU us a request, direct" "$cpu_direct"
      add "${op^^} CPU us a request, forwarded" "$LAST_CPU"
      add "${op^^} direct req/s" "$(last_rate "${op^^} direct")"
      add "${op^^} forwarded req/s" "$(last_rate "${op^^} forwarded")"
    done
  fi
  if [[ " $PARTS " == *" durable "* ]]; then
    if [ -n "${DUR_before:-}" ]; then
      # Which of the two goes first alternates, round by round.
      if [ $((round % 2)) = 1 ]; then
        run_wrk "PUT fsync=always, before" "http://$DUR_before" BENCH_OP=put
        run_wrk "PUT fsync=always" "http://$DUR_always" BENCH_OP=put
      else
        run_wrk "PUT fsync=always" "http://$DUR_always" BENCH_OP=put
        run_wrk "PUT fsync=always, before" "http://$DUR_before" BENCH_OP=put
      fi
      add "PUT always / PUT always, before" \
        "$(ratio "$(last_rate "PUT fsync=always")" "$(last_rate "PUT fsync=always, before")")"
      add "PUT fsync=always req/s, before" "$(last_rate "PUT fsync=always, before")"
    else
      run_wrk "PUT fsync=always" "http://$DUR_always" BENCH_OP=put
    fi
    redis_run "appendfsync always" --appendonly yes --appendfsync always
    run_wrk "PUT fsync=never" "http://$DUR_never" BENCH_OP=put
    # The same pair with no disk on either side: what the two servers cost a
    # write before any sync, the reference the durable ratio is read against.
    redis_run "appendonly no" --appendonly no
    always=$(last_rate "PUT fsync=always")
    add "PUT always / redis SET appendfsync always" "$(ratio "$always" "$(last_rate "redis SET, appendfsync always")")"
    add "PUT always / PUT never" "$(ratio "$always" "$(last_rate "PUT fsync=never")")"
    add "PUT never / redis SET appendonly no" \
      "$(ratio "$(last_rate "PUT fsync=never")" "$(last_rate "redis SET, appendonly no")")"
    add "PUT fsync=always req/s" "$always"
    add "redis SET appendfsync always req/s" "$(last_rate "redis SET, appendfsync always")"
    add "PUT fsync=never req/s" "$(last_rate "PUT fsync=never")"
    add "redis SET appendonly no req/s" "$(last_rate "redis SET, appendonly no")"
  fi
  if [[ " $PARTS " == *" get "* ]]; then
    measure "nginx fixed 200" "$NGINX_URL" "$NGINX_PIDS" BENCH_OP=get
    add "nginx CPU us a request" "$LAST_CPU"
    if [ -n "${GET_BEFORE:-}" ]; then
      # Which of the two goes first alternates, round by round.
      if [ $((round % 2)) = 1 ]; then measure_get before; measure_get; else measure_get; measure_get before; fi
      add "GET / GET before" "$(ratio "$(last_rate "GET existing keys")" "$(last_rate "GET existing keys, before")")"
      add "GET / nginx fixed 200, before" \
        "$(ratio "$(last_rate "GET existing keys, before")" "$(last_rate "nginx fixed 200")")"
      add "GET req/s, before" "$(last_rate "GET existing keys, before")"
    else
      measure_get
    fi
    add "GET / nginx fixed 200" "$(ratio "$(last_rate "GET existing keys")" "$(last_rate "nginx fixed 200")")"
    add "GET req/s" "$(last_rate "GET existing keys")"
    add "nginx req/s" "$(last_rate "nginx fixed 200")"
  fi
done
if [[ " $PARTS " == *" forward "* ]]; then
  [ "$(stats_keys "$A")" = 0 ] || die "shard s0 holds keys: the forwarded requests were not all forwarded"
  echo "forwarding node's pool: $(curl -fsS "http://$A/stats" | grep -o '"connections_opened":[0-9]*' | head -1)"
fi
[ -n "${DUR_always:-}" ] && commit_stats "$DUR_always"

echo
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| figure | median | every round |"
echo "|---|---:|---|"
for name in "GET forwarded / direct" "PUT forwarded / direct" \
  "GET CPU a request, direct / forwarded" "PUT CPU a request, direct / forwarded" \
  "GET CPU us a request, direct" "GET CPU us a request, forwarded" \
  "PUT CPU us a request, direct" "PUT CPU us a request, forwarded" \
  "GET direct req/s" "GET forwarded req/s" "PUT direct req/s" "PUT forwarded req/s" "PUT always / redis SET appendfsync always" \
  "PUT always / PUT never" "PUT never / redis SET appendonly no" "PUT always / PUT always, before" \
  "PUT fsync=always req/s" "PUT fsync=always req/s, before" "redis SET appendfsync always req/s" \
  "PUT fsync=never req/s" "redis SET appendonly no req/s" "GET / nginx fixed 200" "GET / nginx fixed 200, before" "GET / GET before" \
  "GET CPU us a request" "GET CPU us a request, before" "nginx CPU us a request" \
  "GET req/s" "GET req/s, before" "nginx req/s"; do
  [ -n "${SERIES[$name]:-}" ] || continue
  echo "| $name | $(median <<<"${SERIES[$name]}") | ${SERIES[$name]# } |"
done
if [ "$FLAGGED" != 0 ]; then
  echo "bench-ratios.sh: some runs had non-2xx answers or socket errors (FLAGGED above)" >&2
  exit 1
fi
