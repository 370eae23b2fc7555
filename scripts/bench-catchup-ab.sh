#!/usr/bin/env bash
# Replication catch-up of two builds, interleaved: one load, then rounds of
# "primary of build X on a copy of the loaded data, replica of build X from
# an empty directory" for each build in turn. Prints per run the wall time
# until the replica's applied LSN equals the primary's (MB/s of stream) and
# the CPU time both processes spent meanwhile (from /proc/<pid>/stat: the
# figure that moves least with the load of a shared machine).
#
#   scripts/bench-catchup-ab.sh OLD_DISTKV NEW_DISTKV      (after make all)
#
# Environment: ROUNDS (5), RECORDS (1000000), VALUE_BYTES (100), PORT (first
# of two, 18721). The primary runs fsync = "never", the replica "always", as
# in scripts/bench-replication.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 1 ] || { echo "usage: $0 DISTKV [DISTKV...]" >&2; exit 2; }
BINS=("$@")
BENCH=${DISTKV_BENCH_BIN:-build/distkv-bench}
ROUNDS=${ROUNDS:-5}
RECORDS=${RECORDS:-1000000}
VALUE_BYTES=${VALUE_BYTES:-100}
PORT=${PORT:-18721}
P=127.0.0.1:$PORT
R=127.0.0.1:$((PORT + 1))
W=$(mktemp -d)
pp=""
rp=""
cleanup() {
  for p in $pp $rp; do kill -TERM "$p" 2>/dev/null || true; done
  for p in $pp $rp; do wait "$p" 2>/dev/null || true; done
  rm -rf "$W"
}
trap cleanup EXIT

config() {  # fsync -> sharding.toml on stdout
  printf '[storage]\nfsync = "%s"\n[[shards]]\nname = "bench"\nidx = 0\naddress = "%s"\nreplicas = ["%s"]\n' \
    "$1" "$P" "$R"
}
config never >"$W/never.toml"
config always >"$W/always.toml"
field() { curl -fs --max-time 2 "http://$1$2" | grep -o "\"$3\":[0-9]*" | head -n 1 | cut -d: -f2; }
up() {
  for _ in $(seq 1 200); do
    curl -fsS -o /dev/null --max-time 1 "http://$1/health" 2>/dev/null && return 0
    sleep 0.05
  done
  echo "$1 did not start" >&2
  exit 1
}
cpu_ms() { awk -v hz="$(getconf CLK_TCK)" '{ print int(($14 + $15) * 1000 / hz) }' "/proc/$1/stat"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

echo "machine: $(nproc) cores; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
"${BINS[0]}" serve --config "$W/never.toml" --shard bench --data "$W/loaded" >"$W/load.log" 2>&1 &
pp=$!
up "$P"
cmd=("$BENCH" --targets "$P" --ratio 0:100 --requests "$RECORDS" --connections 32 --pipeline 8
     --keys "$RECORDS" --value-bytes "$VALUE_BYTES" --no-progress)
echo "load: ${cmd[*]}"
"${cmd[@]}" >"$W/load.txt" 2>&1 || { cat "$W/load.txt"; exit 1; }
target=$(field "$P" /stats durable_lsn)
kill -TERM "$pp"
wait "$pp" || true
pp=""
for round in $(seq 1 "$ROUNDS"); do
  for bin in "${BINS[@]}"; do
    rm -rf "$W/p" "$W/r"
    cp -r "$W/loaded" "$W/p"
    "$bin" serve --config "$W/never.toml" --shard bench --data "$W/p" >"$W/p.log" 2>&1 &
    pp=$!
    up "$P"
    primary0=$(cpu_ms "$pp")
    t0=$(now_ms)
    "$bin" serve --config "$W/always.toml" --shard bench --data "$W/r" --replica \
      --listen "$R" >"$W/r.log" 2>&1 &
    rp=$!
    applied=0
    while [ "${applied:-0}" -lt "$target" ]; do
      sleep 0.01
      applied=$(field "$R" /stats applied_lsn || echo 0)
      kill -0 "$rp" 2>/dev/null || { echo "the replica stopped:"; tail -n 20 "$W/r.log"; exit 1; }
    done
    ms=$(($(now_ms) - t0))
    primary=$(($(cpu_ms "$pp") - primary0))
    replica=$(cpu_ms "$rp")
    bytes=$(field "$R" /stats bytes_received)
    kill -TERM "$rp" "$pp"
    wait "$rp" || true
    wait "$pp" || true
    pp=""
    rp=""
    echo "round $round $bin: $ms ms, $(awk -v b="$bytes" -v ms="$ms" 'BEGIN { printf "%.0f", b / 1e6 / (ms / 1000) }') MB/s;" \
      "CPU: primary $primary ms, replica $replica ms (its start included); load $(cut -d' ' -f1 /proc/loadavg)"
  done
done
