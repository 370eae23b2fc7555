#!/usr/bin/env bash
# API benchmarks on loopback, one node of a one-shard cluster (fsync =
# "never", so the disk does not dominate), in a temporary directory removed
# at the end:
#
#   1. scan: KEYS keys are loaded with _mput, then the whole keyspace is
#      scanned with GET /kv in pages of PAGE keys (keys only, then with
#      values): keys/s.
#   2. _mget vs GETs: ROUNDS times, BATCH keys fetched with one POST
#      /kv/_mget, and the same BATCH keys with BATCH GETs written back to back
#      on one keep-alive connection (pipelined); keys/s of each and the ratio.
#
# Both clients are plain sockets in python3 (one connection, no client-side
# parsing beyond what is needed), so the node's work is what is measured.
# Usage: scripts/bench-api.sh   (make all first)
# Environment: KEYS (default 200000), PAGE (default 1000), BATCH (default
# 100), ROUNDS (default 2000), PORT (default 18701).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${DISTKV_BIN:-build/distkv}
KEYS=${KEYS:-200000}
PAGE=${PAGE:-1000}
BATCH=${BATCH:-100}
ROUNDS=${ROUNDS:-2000}
PORT=${PORT:-18701}
[ -x "$BIN" ] || { echo "$BIN is missing: run make first" >&2; exit 1; }
WORK=$(mktemp -d)
PID=
cleanup() {
  [ -n "$PID" ] && kill -TERM "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
cat >"$WORK/sharding.toml" <<EOF
[storage]
fsync = "never"
[[shards]]
name = "bench"
idx = 0
address = "127.0.0.1:$PORT"
EOF
"$BIN" serve --config "$WORK/sharding.toml" --shard bench --data "$WORK/data" \
  >"$WORK/node.log" 2>&1 &
PID=$!
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$PORT/health" >/dev/null 2>&1 && break
  sleep 0.1
done
echo "# $(date -u +%FT%TZ) $(nproc) cores; KEYS=$KEYS PAGE=$PAGE BATCH=$BATCH ROUNDS=$ROUNDS"
PORT=$PORT KEYS=$KEYS PAGE=$PAGE BATCH=$BATCH ROUNDS=$ROUNDS python3 - <<'EOF'
import json, os, socket, time

port = int(os.environ["PORT"]); nkeys = int(os.environ["KEYS"])
page = int(os.environ["PAGE"]); batch = int(os.environ["BATCH"])
rounds = int(os.environ["ROUNDS"])
sock = socket.create_connection(("127.0.0.1", port))
buf = b""

def read_response():
    global buf
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(1 << 20)
    head, buf = buf.split(b"\r\n\r\n", 1)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        k, v = line.split(b":", 1)
        if k.strip().lower() == b"content-length":
            length = int(v)
    while len(buf) < length:
        buf += sock.recv(1 << 20)
    body, buf = buf[:length], buf[length:]
    return status, body

def request(method, target, body=b""):
    return (f"{method} {target} HTTP/1.1\r\nHost: b\r\nContent-Length: {len(body)}\r\n\r\n"
            .encode() + body)

keys = [f"key:{i:08d}" for i in range(nkeys)]
for i in range(0, nkeys, 1000):
    part = {k: "v" * 100 for k in keys[i:i + 1000]}
    sock.sendall(request("POST", "/kv/_mput", json.dumps(part).encode()))
    assert read_response()[0] == 200

for values in ("false", "true"):
    start = time.perf_counter(); seen = 0; cursor = ""
    while True:
        sock.sendall(request("GET", f"/kv?limit={page}&values={values}&cursor={cursor}"))
        status, body = read_response()
        assert status == 200, body
        doc = json.loads(body)
        seen += len(doc["keys"]); cursor = doc["cursor"]
        if not cursor:
            break
    secs = time.perf_counter() - start
    assert seen == nkeys, (seen, nkeys)
    print(f"scan values={values}: {seen} keys in {secs:.2f} s = {seen / secs:,.0f} keys/s")

sample = [keys[(i * 7919) % nkeys] for i in range(batch)]
mget = request("POST", "/kv/_mget", json.dumps(sample).encode())
gets = b"".join(request("GET", "/kv/" + k) for k in sample)
for name, payload, answers in (("_mget", mget, 1), ("GETs", gets, batch)):
    start = time.perf_counter()
    for _ in range(rounds):
        sock.sendall(payload)
        for _ in range(answers):
            assert read_response()[0] == 200
    secs = time.perf_counter() - start
    rate = rounds * batch / secs
    print(f"{name} of {batch} keys x {rounds}: {secs:.2f} s = {rate:,.0f} keys/s")
    if name == "_mget":
        mget_rate = rate
print(f"_mget / pipelined GETs: {mget_rate / rate:.2f}x")
EOF
