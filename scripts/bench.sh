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
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
need() {  # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null ||
    { $SUDO apt-get update -q >/dev/null &&
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; }
}
need wrk wrk
need nginx nginx-light
need redis-server redis-server
need redis-benchmark redis-tools
need curl curl
need ss iproute2
[ -x "$BIN" ] || { echo "bench.sh: no distkv binary at $BIN (run make, or set DISTKV_BIN)" >&2; exit 1; }

TMP=$(mktemp -d "${BENCH_DIR:-/tmp}/distkv-bench.XXXXXX")
PIDS=()
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT
die() {
  echo "bench.sh: $*" >&2
  [ -s "$TMP/servers.log" ] && { echo "--- last lines of the servers' log:" >&2; tail -n 20 "$TMP/servers.log" >&2; }
  exit 1
}

# --- ports and processes ----------------------------------------------------------
# Other people's tests use loopback ports too: take the next one nobody listens
# on, and after starting a server check that it is ours that answers (it is
# still running: a server that lost the port race exits).
take_port() {
  while ss -Hltn "sport = :$NEXT_PORT" | grep -q .; do NEXT_PORT=$((NEXT_PORT + 1)); done
  PORT=$NEXT_PORT
  NEXT_PORT=$((NEXT_PORT + 1))
}

wait_http() {  # url pid
  for _ in $(seq 1 150); do
    kill -0 "$2" 2>/dev/null || die "the server for $1 exited (port taken?)"
    curl -fsS -o /dev/null --max-time 1 "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  die "no answer from $1"
}

node_config() {  # file fsync address...
  local file=$1 fsync=$2 i=0 addr; shift 2
  { printf '[storage]\nfsync = "%s"\n' "$fsync"
    for addr in "$@"; do printf '[[shards]]\nname = "s%d"\nidx = %d\naddress = "%s"\n' $i $i "$addr"; i=$((i + 1)); done
  } >"$file"
}

start_node() {  # config shard data address; sets NODE_PID
  "$BIN" serve --config "$1" --shard "$2" --data "$3" 2>>"$TMP/servers.log" &
  NODE_PID=$!
  PIDS+=("$NODE_PID")
  wait_http "http://$4/health" "$NODE_PID"
}

stats_keys() {  # address: the node's live key count (0 if /stats does not answer)
  local s
  s=$(curl -fsS --max-time 5 "http://$1/stats" 2>/dev/null) || { echo 0; return; }
  if [[ $s =~ \"keys\":([0-9]+) ]]; then echo "${BASH_REMATCH[1]}"; else echo 0; fi
}

stop_pid() {  # stops a server this script started and forgets it
  local p keep=()
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || keep+=("$p"); done
  PIDS=("${keep[@]}")
}

# load_keys ADDRESS KEYFILE: PUTs the key set (in order, round after round)
# until the node holds every key. A fixed-length wrk run is not enough: at
# fsync=always a few seconds may not cover 10,000 keys.
load_keys() {
  local addr=$1 file=$2 want have=0 wrk_pid
  want=$(wc -l <"$file")
  env BENCH_OP=load BENCH_KEY_FILE="$file" wrk -t1 -c"$CONNS" -d300s -s "$LUA" "http://$addr" >/dev/null &
  wrk_pid=$!
  for _ in $(seq 1 1200); do
    have=$(stats_keys "$addr")
    [ "$have" -ge "$want" ] && break
    sleep 0.25
  done
  kill "$wrk_pid" 2>/dev/null || true
  wait "$wrk_pid" 2>/dev/null || true
  [ "$have" -eq "$want" ] || die "loading $file into $addr: the node holds $have keys, expected $want"
  echo "  (loaded $want keys into $addr; /stats keys = $have)"
}

# --- measuring -----------------------------------------------------------------------
RESULTS=()   # label|req/s|p99|non-2xx|socket errors|command|p50
FLAGGED=0
record() {
  RESULTS+=("$1|$2|$3|$4|$5|$6|$7")
  printf '  %-44s %8s req/s   p99 %-9s' "$1" "$2" "$3"
  if [ "$4" != 0 ] || [ "$5" != 0 ]; then
    printf '  FLAGGED: %s non-2xx, %s socket errors' "$4" "$5"
    FLAGGED=1
  fi
  printf '\n'
}

# run_wrk LABEL URL VAR=VALUE...: one wrk run; records req/s, p99, non-2xx answers, socket errors.
run_wrk() {
  local label=$1 url=$2 out; shift 2
  out=$(env "$@" wrk -t1 -c"$CONNS" -d"${SECONDS_EACH}s" --latency -s "$LUA" "$url")
  local rps p50 p99 bad errs
  rps=$(awk '/^Requests\/sec/ {printf "%d", $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  bad=$(awk '/Non-2xx or 3xx responses/ {print $NF}' <<<"$out")
  errs=$(awk '/Socket errors/ {gsub(",", ""); print $4 + $6 + $8 + $10}' <<<"$out")
  [ -n "$rps" ] || die "wrk printed no rate for \"$label\": $out"
  record "$label" "$rps" "${p99:--}" "${bad:-0}" "${errs:-0}" \
    "$* wrk -t1 -c$CONNS -d${SECONDS_EACH}s --latency -s $LUA $url" "${p50:--}"
}

# The disk's latency for what fsync=always does: appends of 4 KiB, each
# synced (O_DSYNC) before the next, into a file next to the data directories.
# It varies with whatever else uses the disk; printed at the start and the end.
sync_latency() {
  local secs n=200
  secs=$(LC_ALL=C dd if=/dev/zero of="$TMP/sync-probe" bs=4k count=$n oflag=dsync 2>&1 |
    awk '/copied/ { for (i = 1; i <= NF; i++) if ($i == "s," || $i == "s") print $(i - 1) }')
  rm -f "$TMP/sync-probe"
  awk -v s="$secs" -v n=$n 'BEGIN { if (s != "") printf "%.2f ms", s * 1000 / n; else print "?" }'
}

# commit_stats ADDRESS: the node's group-commit figures since it started.
commit_stats() {
  local s b r us l
  s=$(curl -fsS --max-time 5 "http://$1/stats" 2>/dev/null) || return 0
  [[ $s =~ \"batches\":([0-9]+) ]] && b=${BASH_REMATCH[1]} || return 0
  [[ $s =~ \"batch_records\":([0-9]+) ]] && r=${BASH_REMATCH[1]}
  [[ $s =~ \"batch_us\":([0-9]+) ]] && us=${BASH_REMATCH[1]} || us=0
  [[ $s =~ \"lingered\":([0-9]+) ]] && l=${BASH_REMATCH[1]} || l=0
  [ "$b" -gt 0 ] || return 0
  echo "  (group commit so far: $b batches, $(ratio "$r" "$b") records a batch, $(ratio "$us" "$b") us a batch, $l held to gather writers)"
}

rate_of() {  # label -> req/s
  local r
  for r in "${RESULTS[@]}"; do [ "${r%%|*}" = "$1" ] && { cut -d'|' -f2 <<<"$r"; return; }; done
  echo 0
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
echo "distkv benchmarks: wrk -t1 -c$CONNS, ${SECONDS_EACH}s per run, 100-byte values, $KEYS keys read"
echo "machine: $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME"), load average at the start: $LOAD_START"
echo "distkv: $BIN; data under $TMP"
SYNC_START=$(sync_latency)
echo "disk: 4 KiB append + sync (dd oflag=dsync): $SYNC_START a write"

# --- 1. nginx fixed 200 ----------------------------------------------------------
take_port
NGINX_URL="http://127.0.0.1:$PORT"
mkdir -p "$TMP/nginx"
cat >"$TMP/nginx/nginx.conf" <<NGINX
worker_processes 1;
daemon off;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  server { listen 127.0.0.1:$PORT; location / { return 200 "ok"; } }
}
NGINX
nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx" 2>>"$TMP/servers.log" &
NGINX_PID=$!
PIDS+=("$NGINX_PID")
wait_http "$NGINX_URL/" "$NGINX_PID"
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
redis_run() {  # label, server args...
  local label=$1 pid out cmd; shift
  take_port
  mkdir -p "$TMP/redis-$PORT"
  redis-server --port "$PORT" --bind 127.0.0.1 --save '' --dir "$TMP/redis-$PORT" "$@" >>"$TMP/servers.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || die "redis-server on port $PORT exited (port taken?)"
    redis-cli -p "$PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
  done
  cmd="redis-benchmark -p $PORT -c $CONNS -d 100 -t set,get -n 200000 -r $KEYS"
  out=$($cmd 2>/dev/null | tr '\r' '\n')
  local t rps p50 p99
  for t in SET GET; do
    # "====== SET ======" opens a test's summary; "throughput summary: N
    # requests per second", then a header line and the latency figures.
    read -r rps p50 p99 < <(awk -v t="$t" '
      /^====== / { cur = $2 }
      cur == t && hdr { p50 = $3; p99 = $5; hdr = 0 }
      cur == t && /avg +min +p50/ { hdr = 1 }
      cur == t && /throughput summary/ { rps = $3 }
      END { printf "%d %s %s\n", rps, p50, p99 }' <<<"$out")
    [ "$rps" -gt 0 ] || die "redis-benchmark printed no $t rate"
    record "redis $t, $label" "$rps" "${p99}ms" 0 0 "redis-server --port $PORT --save '' $* ; $cmd" "${p50}ms"
  done
  stop_pid "$pid"
}
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
