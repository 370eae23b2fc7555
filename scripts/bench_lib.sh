# Helpers shared by the HTTP benchmark scripts (scripts/bench.sh,
# scripts/bench-ratios.sh); sourced, not run. The caller sets BIN (the distkv
# binary), LUA (the wrk script), CONNS, SECONDS_EACH, KEYS, NEXT_PORT, TMP (a
# scratch directory) and PIDS=() (the servers it starts, stopped by
# cleanup), and traps EXIT to cleanup. The helpers fill RESULTS and FLAGGED
# and stop with die() on anything unexpected.

# --- tools --------------------------------------------------------------------
SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
need() {  # command package
  command -v "$1" >/dev/null 2>&1 && return 0
  echo "installing $2"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null ||
    { $SUDO apt-get update -q >/dev/null &&
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$2" >/dev/null; }
}
cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
die() {
  echo "$(basename "$0"): $*" >&2
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
# proc_ticks PID: the process's CPU so far in clock ticks (getconf CLK_TCK a
# second): user, system, and user and system of its waited-for children
# (/proc/PID/stat fields 14-17; the name, field 2, has no spaces here).
proc_ticks() {
  local f
  read -r -a f <"/proc/$1/stat"
  echo "${f[13]} ${f[14]} ${f[15]} ${f[16]}"
}
# median: of the numbers on stdin, separated by spaces or newlines.
median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else printf "%.2f\n", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
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
  local s b r us run l
  s=$(curl -fsS --max-time 5 "http://$1/stats" 2>/dev/null) || return 0
  [[ $s =~ \"batches\":([0-9]+) ]] && b=${BASH_REMATCH[1]} || return 0
  [[ $s =~ \"batch_records\":([0-9]+) ]] && r=${BASH_REMATCH[1]}
  [[ $s =~ \"batch_us\":([0-9]+) ]] && us=${BASH_REMATCH[1]} || us=0
  [[ $s =~ \"batch_run_us\":([0-9]+) ]] && run=${BASH_REMATCH[1]} || run=0
  [[ $s =~ \"lingered\":([0-9]+) ]] && l=${BASH_REMATCH[1]} || l=0
  [ "$b" -gt 0 ] || return 0
  echo "  (group commit so far: $b batches, $(ratio "$r" "$b") records a batch, $(ratio "$us" "$b") us a batch of which $(ratio "$run" "$b") writing and syncing, $l held to gather writers)"
}

rate_of() {  # label -> req/s
  local r
  for r in "${RESULTS[@]}"; do [ "${r%%|*}" = "$1" ] && { cut -d'|' -f2 <<<"$r"; return; }; done
  echo 0
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }

# --- nginx and redis ---------------------------------------------------------------
# start_nginx: nginx (1 worker) answering a fixed 200 on a port of its own;
# sets NGINX_URL.
start_nginx() {
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
}

# redis_run LABEL SERVER-ARGS...: redis-server with those arguments, then
# redis-benchmark of the tests in REDIS_TESTS (set get) against it; records
# each.
redis_run() {
  local label=$1 pid out cmd tests=${REDIS_TESTS:-set get}; shift
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
  cmd="redis-benchmark -p $PORT -c $CONNS -d 100 -t ${tests// /,} -n 200000 -r $KEYS"
  out=$($cmd 2>/dev/null | tr '\r' '\n')
  local t rps p50 p99
  for t in ${tests^^}; do
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
