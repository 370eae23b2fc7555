#!/usr/bin/env bash
# Starts and stops the nodes of a sharding.toml on this machine, in the
# background: `make run-multi` and `make stop` call it.
#
#   scripts/cluster.sh start [CONFIG]   start every node; data under data/, logs and pids under run/
#   scripts/cluster.sh stop             SIGTERM every node started here (by pid), wait for exit
#   scripts/cluster.sh status           which of them run
#   scripts/cluster.sh start-ha [CONFIG] a local etcd (data and log under run/), then the nodes
#                                       with [coordinator] etcd pointing at it (automatic failover)
#
# Each node is `build/distkv serve --config CONFIG --shard NAME [--replica --listen ADDR]`;
# `distkv nodes` lists them, so this script never parses TOML itself.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DISTKV_BIN:-build/distkv}
RUN=run
DATA=data

node_id() {  # shard role address -> a file-name-safe id
  if [ "$2" = primary ]; then echo "$1"; else echo "$1-replica-${3//[:.]/_}"; fi
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

start() {
  local config=${1:-sharding.toml}
  mkdir -p "$RUN" "$DATA"
  local nodes
  nodes=$("$BIN" nodes --config "$config")
  while read -r shard role addr; do
    local id; id=$(node_id "$shard" "$role" "$addr")
    if running "$RUN/$id.pid"; then
      echo "$id already running (pid $(cat "$RUN/$id.pid"))"; continue
    fi
    local extra=()
    [ "$role" = replica ] && extra=(--replica --listen "$addr")
    nohup "$BIN" serve --config "$config" --shard "$shard" --data "$DATA/$id" "${extra[@]}" \
      >>"$RUN/$id.log" 2>&1 </dev/null &
    echo $! >"$RUN/$id.pid"
  done <<<"$nodes"

  # Wait (bounded) until every node answers /health.
  local failed=0
  while read -r shard role addr; do
    local id; id=$(node_id "$shard" "$role" "$addr") ok=0
    for _ in $(seq 1 100); do
      # A [tls] cluster answers on https only (-k: this only asks "is it up?").
      if curl -fsS -o /dev/null --max-time 1 "http://$addr/health" 2>/dev/null ||
         curl -fsSk -o /dev/null --max-time 1 "https://$addr/health" 2>/dev/null; then ok=1; break; fi
      running "$RUN/$id.pid" || break
      sleep 0.1
    done
    if [ $ok = 0 ]; then
      echo "$id ($addr) did not come up; last lines of $RUN/$id.log:"; tail -n 5 "$RUN/$id.log"; failed=1
    fi
  done <<<"$nodes"

  printf '\n%-10s %-8s %-18s %-7s %s\n' SHARD ROLE ADDRESS PID LOG
  while read -r shard role addr; do
    local id; id=$(node_id "$shard" "$role" "$addr")
    printf '%-10s %-8s %-18s %-7s %s\n' "$shard" "$role" "$addr" "$(cat "$RUN/$id.pid")" "$RUN/$id.log"
  done <<<"$nodes"
  local first; first=$(head -n 1 <<<"$nodes" | awk '{print $3}')
  cat <<TRY

Data is under $DATA/. Try (any node answers for any key):
  curl -X PUT --data-binary 'hello' http://$first/kv/greeting
  curl http://$first/kv/greeting
  curl http://$first/cluster
Stop with: make stop     Delete the data with: make remove-all
TRY
  return $failed
}

stop() {
  [ -d "$RUN" ] || return 0
  local pids=()
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || continue
    if running "$f"; then kill -TERM "$(cat "$f")"; pids+=("$(cat "$f")"); fi
    rm -f "$f"
  done
  for p in "${pids[@]}"; do
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { echo "pid $p did not stop; killing it"; kill -KILL "$p"; }
  done
  echo "stopped ${#pids[@]} node(s)"
}

status() {
  for f in "$RUN"/*.pid; do
    [ -e "$f" ] || { echo "no nodes started"; return; }
    local id; id=$(basename "$f" .pid)
    if running "$f"; then echo "$id running (pid $(cat "$f"))"; else echo "$id not running"; fi
  done
}

# A one-member etcd on 127.0.0.1:2379 and a copy of the config with the
# coordinator on; `stop` stops etcd too (its pid is in run/ with the nodes').
start_ha() {
  local config=${1:-sharding.toml}
  mkdir -p "$RUN"
  if ! running "$RUN/etcd.pid"; then
    nohup etcd --name distkv --data-dir "$RUN/etcd" \
      --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
      --listen-peer-urls http://127.0.0.1:2380 >>"$RUN/etcd.log" 2>&1 </dev/null &
    echo $! >"$RUN/etcd.pid"
  fi
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null --max-time 1 http://127.0.0.1:2379/health 2>/dev/null && break
    sleep 0.1
  done
  local ha="$RUN/sharding-ha.toml"
  cp "$config" "$ha"
  grep -q '^\[coordinator\]' "$ha" || printf '\n[coordinator]\netcd = ["127.0.0.1:2379"]\n' >>"$ha"
  echo "etcd on 127.0.0.1:2379 (log $RUN/etcd.log); config with the coordinator: $ha"
  start "$ha"
}

case "${1:-}" in
  start) shift; start "$@" ;;
  start-ha) shift; start_ha "$@" ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: $0 start [CONFIG] | start-ha [CONFIG] | stop | status" >&2; exit 2 ;;
esac
