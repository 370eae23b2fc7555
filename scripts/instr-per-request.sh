#!/usr/bin/env bash
# Instructions a node executes per request, counted by valgrind's callgrind:
# a figure that does not move with the load on the machine, unlike req/s.
# One node (fsync=never) serves two distkv-bench runs of 2,000 and 12,000
# requests over 4 keep-alive connections; the difference divided by 10,000 is
# the cost of one request, without start-up, handshakes and preload.
#
#   scripts/instr-per-request.sh [plain|tls] [GET:PUT]     (after make)
#   e.g. scripts/instr-per-request.sh tls 100:0            (default: plain 100:0)
#   PIPELINE=N sends N requests at a time on each connection (default 1).
#   KEEP=DIR keeps the callgrind files there (callgrind_annotate DIR/cg-12000.out).
#   FORWARD=1 counts the forwarding node instead: two shards, the measured one
#   owning no slot (`slots = []`), so every request is forwarded to the other
#   (which runs outside valgrind); with tls the link between them is TLS too.
#   The cost of the cluster-map poll (once a second) is left out.
#   AUTH=1 turns [auth] on (three tokens, the client sending the write one),
#   to count what checking a request's token costs.
#
# Needs valgrind (apt-get install valgrind) and, for tls, openssl.
set -euo pipefail
cd "$(dirname "$0")/.."
MODE=${1:-plain}
MIX=${2:-100:0}
PORT=${PORT:-18711}
BIN=${DISTKV_BIN:-$PWD/build/distkv}
BENCH=$PWD/build/distkv-bench
command -v valgrind >/dev/null || { echo "valgrind is needed: apt-get install valgrind" >&2; exit 1; }
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

tls_extra=""
if [ "$MODE" = tls ]; then
  ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
  openssl req -x509 $ec -days 2 -keyout "$TMP/ca.key" -out "$TMP/ca.crt" -subj /CN=instr-ca 2>/dev/null
  openssl req -new $ec -keyout "$TMP/node.key" -out "$TMP/node.csr" -subj /CN=instr 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$TMP/san.ext"
  openssl x509 -req -in "$TMP/node.csr" -CA "$TMP/ca.crt" -CAkey "$TMP/ca.key" -CAcreateserial \
    -days 2 -extfile "$TMP/san.ext" -out "$TMP/node.crt" 2>/dev/null
  tls_extra="[tls]\ncert = \"$TMP/node.crt\"\nkey = \"$TMP/node.key\"\nca = \"$TMP/ca.crt\"\n"
fi
bench_tls=()
[ "$MODE" = tls ] && bench_tls=(--tls --ca "$TMP/ca.crt")
if [ "${AUTH:-0}" = 1 ]; then
  tls_extra+='[auth]\ncluster_secret = "instr-cluster-secret-0123456789"\n'
  tls_extra+='tokens = [ { token = "instr-read-0123456789abcdef", role = "read" },\n'
  tls_extra+='  { token = "instr-write-0123456789abcdef", role = "write" },\n'
  tls_extra+='  { token = "instr-admin-0123456789abcdef", role = "admin" } ]\n'
  bench_tls+=(--token instr-write-0123456789abcdef)
fi

instructions() {  # REQUESTS: total instructions of a node that served them
  local d="$TMP/run-$1" owner_pid=""
  mkdir -p "$d"
  printf '[storage]\nfsync = "never"\n%b[[shards]]\nname = "A"\nidx = 0\naddress = "127.0.0.1:%s"\n' \
    "$tls_extra" "$PORT" >"$d/cfg.toml"
  if [ "${FORWARD:-0}" = 1 ]; then
    printf 'slots = []\n[[shards]]\nname = "B"\nidx = 1\naddress = "127.0.0.1:%s"\nslots = [[0, 16383]]\n' \
      "$((PORT + 1))" >>"$d/cfg.toml"
    "$BIN" serve --config "$d/cfg.toml" --shard B --data "$d/data-b" >"$d/log-b" 2>&1 &
    owner_pid=$!
  fi
  valgrind --tool=callgrind --callgrind-out-file="$d/cg.out" \
    "$BIN" serve --config "$d/cfg.toml" --shard A --data "$d/data" >"$d/log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do
    "$BENCH" --targets "127.0.0.1:$PORT" "${bench_tls[@]}" --connections 1 --keys 10 \
      --requests 1 --no-progress >/dev/null 2>&1 && break
    sleep 0.5
  done
  "$BENCH" --targets "127.0.0.1:$PORT" "${bench_tls[@]}" --connections 4 --keys 1000 \
    --ratio "$MIX" --requests "$1" --pipeline "${PIPELINE:-1}" --no-progress --seed 7 --preload \
    >/dev/null
  kill -TERM "$pid"
  wait "$pid" || true
  if [ -n "$owner_pid" ]; then
    kill -TERM "$owner_pid"
    wait "$owner_pid" || true
  fi
  [ -n "${KEEP:-}" ] && mkdir -p "$KEEP" && cp "$d/cg.out" "$KEEP/cg-$1.out"
  local total poll=0
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$d/cg.out")
  [ "${FORWARD:-0}" = 1 ] && poll=$(map_poll "$d/cg.out")
  echo $((total - ${poll:-0}))
}
# A node with peers fetches one's cluster map every second: work that grows
# with the run's length under valgrind, not with its requests, so the
# inclusive cost of decoding those answers (almost all of it) is taken out.
map_poll() {
  callgrind_annotate --inclusive=yes --auto=no --threshold=100 "$1" 2>/dev/null |
    grep -F 'cluster_map.cc:distkv::DecodeClusterMap(' |
    head -1 | awk '{ gsub(",", "", $1); print $1 }'
}
a=$(instructions 2000)
b=$(instructions 12000)
what="instructions a request"
[ "${FORWARD:-0}" = 1 ] && what="instructions a forwarded request on the forwarding node"
echo "$MODE${AUTH:+ auth=$AUTH} GET:PUT=$MIX pipeline ${PIPELINE:-1}: $(((b - a) / 10000)) $what"
