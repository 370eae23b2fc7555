#!/usr/bin/env python3
"""make chaos: a replicated distkv cluster under mixed load while a nemesis
injects faults; the recorded history is then checked (checker.py).

    tests/chaos/chaos.py [--duration S] [--seed N] [--shards N] [--clients N] [--keys N]
    (DISTKV_BIN names the binary; CHAOS_DURATION sets the default duration)

Cluster: --shards shards, each a primary and one replica, fsync=always, on
127.0.0.1 ports claimed like the cluster tests' (a block of ports held with
flock on $TMPDIR/distkv-test-ports/<block>.lock).

Load: --clients threads, each with its own keep-alive connections, pick a
key and an operation: put of a value no one else writes, get, delete, put
with If-Match of the ETag the client last saw for the key (all on the key's
primary), or get on the key's replica. Each request is recorded with its
invoke and complete times (one monotonic clock). A refused connection means
the request was never sent and is dropped; a timeout, a connection lost after
sending, or a 5xx leaves the outcome unknown (indeterminate).

Nemesis: every 1-3 s one fault from FAULTS on a random node: SIGKILL and a
restart a moment later, SIGSTOP then SIGCONT, or a clean restart (SIGTERM).
A fault is a class with a name and a run(node, rng) method; add failover or
migration faults there when those exist.

Verdict, after the nemesis stops and every node is up again: the primaries'
history is linearizable; the replica reads are monotonic per replica and
never return a value no one wrote; each replica converges to its primary's
digest; no node log holds a sanitizer report. It prints the counts and
"[check] N passed, N failed"; the exit status is non-zero on any failure, and
the data and logs are kept for inspection.
"""
import argparse
import fcntl
import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checker import Op, linearizable, replica_reads_ok  # noqa: E402

PORT_BASE, PORT_LIMIT, PORT_BLOCK = 20000, 32000, 100  # as tests/cluster/harness.h
REQUEST_TIMEOUT_S = 2.0


def claim_ports(n):
    """n ports from a block this process holds a lock on (see tests/cluster/harness.h)."""
    d = os.path.join(os.environ.get("TMPDIR") or "/tmp", "distkv-test-ports")
    os.makedirs(d, exist_ok=True)
    blocks = (PORT_LIMIT - PORT_BASE) // PORT_BLOCK
    first = os.getpid() % blocks
    for i in range(blocks):
        block = (first + i) % blocks
        f = open(os.path.join(d, f"{block}.lock"), "a+")
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.close()
            continue
        claim_ports.held.append(f)  # released when the process exits
        return list(range(PORT_BASE + block * PORT_BLOCK, PORT_BASE + block * PORT_BLOCK + n))
    raise SystemExit(f"every port block in {d} is claimed")


claim_ports.held = []


class Node:
    def __init__(self, label, binary, config, shard, address, data, log, replica):
        self.label, self.address, self.shard = label, address, shard
        self.args = [binary, "serve", "--config", config, "--shard", shard, "--data", data]
        if replica:
            self.args.append("--replica")
        self.log_path = log
        self.proc = None
        self.stopped = False

    def start(self):
        with open(self.log_path, "ab") as log:
            log.write(f"==== start: {' '.join(self.args)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        self.stopped = False
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.label} exited {self.proc.returncode} at start; "
                                   f"see {self.log_path}")
            if request(self.address, "GET", "/health", timeout=1)[0] == 200:
                return
            time.sleep(0.05)
        raise RuntimeError(f"{self.label} not ready after 15 s; see {self.log_path}")

    def signal(self, sig):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def kill(self):
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.signal(signal.SIGCONT)
        self.signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()
            return -1


def request(address, method, path, body=None, headers=None, timeout=REQUEST_TIMEOUT_S):
    """One request on a fresh connection: (status, headers, body) or (None, None, error)."""
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    except (OSError, http.client.HTTPException) as e:
        return None, None, str(e)
    finally:
        conn.close()


# --- faults ------------------------------------------------------------------------------


class Kill:
    name = "kill"

    def run(self, node, rng):
        node.kill()
        time.sleep(rng.uniform(0.2, 1.5))
        node.start()


class Pause:
    name = "pause"

    def run(self, node, rng):
        node.signal(signal.SIGSTOP)
        node.stopped = True
        time.sleep(rng.uniform(0.3, 2.5))  # past the clients' timeout at times
        node.signal(signal.SIGCONT)
        node.stopped = False


class Restart:
    name = "restart"

    def run(self, node, rng):
        code = node.stop()
        if code != 0:
            raise RuntimeError(f"{node.label} exited {code} on SIGTERM; see {node.log_path}")
        node.start()


FAULTS = [Kill(), Pause(), Restart()]


class Nemesis(threading.Thread):
    def __init__(self, nodes, rng, deadline):
        super().__init__(daemon=True)
        self.nodes, self.rng, self.deadline = nodes, rng, deadline
        self.counts = {f.name: 0 for f in FAULTS}
        self.log = []  # (start, end, fault, node) on the monotonic clock
        self.error = None

    def run(self):
        try:
            while time.monotonic() + 1 < self.deadline:
                time.sleep(self.rng.uniform(1.0, 3.0))
                fault, node = self.rng.choice(FAULTS), self.rng.choice(self.nodes)
                start = time.monotonic()
                fault.run(node, self.rng)
                self.log.append((start, time.monotonic(), fault.name, node.label))
                self.counts[fault.name] += 1
        except Exception as e:  # reported in the verdict
            self.error = f"nemesis: {e}"


# --- clients -----------------------------------------------------------------------------


class Client(threading.Thread):
    def __init__(self, cid, keys, shards, rng, deadline, history):
        super().__init__(daemon=True)
        self.cid, self.keys, self.shards, self.rng = cid, keys, shards, rng
        self.deadline, self.history = deadline, history
        self.conns = {}
        self.seq = 0
        self.etags = {}
        self.refused = 0
        self.error = None

    def conn(self, address):
        c = self.conns.get(address)
        if c is None:
            host, port = address.rsplit(":", 1)
            c = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT_S)
            c.connect()  # ConnectionRefusedError: nothing was sent
            self.conns[address] = c
        return c

    def drop(self, address):
        c = self.conns.pop(address, None)
        if c:
            c.close()

    def send(self, op, address, method, path, body=None, headers=None):
        """Fills op's outcome; False when the request was never sent."""
        try:
            c = self.conn(address)
        except OSError:
            self.refused += 1
            return False
        op.call = time.monotonic()
        try:
            c.request(method, path, body=body, headers=headers or {})
            r = c.getresponse()
            data = r.read()
            status, etag = r.status, r.getheader("ETag")
        except (OSError, http.client.HTTPException):
            op.ret = float("inf")
            self.drop(address)
            return True
        op.ret = time.monotonic()
        if r.will_close:
            self.drop(address)
        if status >= 500:
            return True  # indeterminate
        if status not in (200, 201, 204, 404, 412):
            raise RuntimeError(f"unexpected {status} for {method} {path} on {address}: {data!r}")
        op.status = status
        op.etag = int(etag.strip('"')) if etag else None
        if op.kind == "get":
            op.result = data.decode() if status == 200 else None
        return True

    def run(self):
        try:
            while time.monotonic() < self.deadline:
                self.one()
        except Exception as e:
            self.error = f"client {self.cid}: {e}"
        for a in list(self.conns):
            self.drop(a)

    def one(self):
        key = self.rng.choice(self.keys)
        primary, replica = self.shards[key]
        path = "/kv/" + key
        x = self.rng.random()
        self.seq += 1
        value = f"c{self.cid}-{self.seq}"
        if x < 0.30:
            op = Op(self.cid, "put", key, 0, value=value, node=primary)
            sent = self.send(op, primary, "PUT", path, value)
        elif x < 0.55:
            op = Op(self.cid, "get", key, 0, node=primary)
            sent = self.send(op, primary, "GET", path)
        elif x < 0.65:
            op = Op(self.cid, "delete", key, 0, node=primary)
            sent = self.send(op, primary, "DELETE", path)
        elif x < 0.80:
            etag = self.etags.get(key, 1)
            op = Op(self.cid, "cas", key, 0, value=value, if_match=etag, node=primary)
            sent = self.send(op, primary, "PUT", path, value, {"If-Match": f'"{etag}"'})
        else:
            op = Op(self.cid, "get", key, 0, node=replica)
            sent = self.send(op, replica, "GET", path)
        if not sent:
            time.sleep(0.02)  # the node is down; do not spin
            return
        if op.etag is not None:
            self.etags[key] = op.etag
        self.history.append(op)  # list.append is atomic


# --- the run -------------------------------------------------------------------------------


def write_config(path, shards):
    lines = ["[storage]", 'fsync = "always"', "", "[server]", "idle_timeout_ms = 5000", ""]
    for i, (name, primary, replica) in enumerate(shards):
        lines += ["[[shards]]", f'name = "{name}"', f"idx = {i}", f'address = "{primary}"',
                  f'replicas = ["{replica}"]', ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))


def owner_keys(shards, per_shard):
    """per_shard keys owned by each shard, found by asking the cluster (X-Distkv-Shard)."""
    out = {name: [] for name, _, _ in shards}
    i = 0
    while any(len(v) < per_shard for v in out.values()):
        key = f"key{i}"
        i += 1
        status, headers, _ = request(shards[0][1], "GET", "/kv/" + key)
        owner = headers.get("X-Distkv-Shard") if headers else None
        if status != 404 or owner not in out:
            raise RuntimeError(f"GET /kv/{key} answered {status} {headers}")
        if len(out[owner]) < per_shard:
            out[owner].append(key)
    return out


def digest(address):
    status, _, body = request(address, "GET", "/internal/digest", timeout=5)
    return json.loads(body) if status == 200 else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=float(os.environ.get("CHAOS_DURATION", 60)))
    ap.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED", time.time())))
    ap.add_argument("--shards", type=int, default=2)
    ap.add_argument("--clients", type=int, default=6)
    ap.add_argument("--keys", type=int, default=4, help="keys per shard")
    args = ap.parse_args()
    binary = os.environ.get("DISTKV_BIN")
    if not binary or not os.access(binary, os.X_OK):
        raise SystemExit("DISTKV_BIN must name the distkv binary (make chaos sets it)")
    rng = random.Random(args.seed)
    print(f"chaos: seed {args.seed}, {args.duration:.0f} s, {args.shards} shards with a replica "
          f"each, {args.clients} clients, {args.keys * args.shards} keys", flush=True)

    work = tempfile.mkdtemp(prefix="distkv-chaos-")
    ports = claim_ports(2 * args.shards)
    shards = [(f"shard-{i}", f"127.0.0.1:{ports[2 * i]}", f"127.0.0.1:{ports[2 * i + 1]}")
              for i in range(args.shards)]
    config = os.path.join(work, "sharding.toml")
    write_config(config, shards)
    nodes = []
    for name, primary, replica in shards:
        for addr, is_replica in ((primary, False), (replica, True)):
            label = name + ("-replica" if is_replica else "")
            nodes.append(Node(label, binary, config, name, addr, os.path.join(work, label),
                              os.path.join(work, label + ".log"), is_replica))
    failures = []
    try:
        for n in nodes:
            n.start()
        keys_of = owner_keys(shards, args.keys)
        route = {}
        for name, primary, replica in shards:
            for k in keys_of[name]:
                route[k] = (primary, replica)
        keys = sorted(route)

        history = []
        deadline = time.monotonic() + args.duration
        clients = [Client(i, keys, route, random.Random(rng.random()), deadline, history)
                   for i in range(args.clients)]
        nemesis = Nemesis(nodes, random.Random(rng.random()), deadline)
        for t in clients + [nemesis]:
            t.start()
        for t in clients + [nemesis]:
            t.join()
        for t in clients + [nemesis]:
            if t.error:
                failures.append(t.error)

        # Heal: every node running and not stopped.
        for n in nodes:
            n.signal(signal.SIGCONT)
            if n.proc.poll() is not None:
                n.start()

        # Final reads, one at a time, after everything else.
        for k in keys:
            op = Op(-1, "get", k, 0, node=route[k][0])
            final = Client(-1, keys, route, rng, 0, history)
            for _ in range(50):
                if final.send(op, route[k][0], "GET", "/kv/" + k) and not op.indeterminate:
                    break
                time.sleep(0.1)
            history.append(op)

        primary_ops = [o for o in history if o.node == route[o.key][0]]
        replica_reads = [o for o in history if o.node == route[o.key][1]]
        writes = [o for o in primary_ops if o.kind != "get"]
        indeterminate = sum(1 for o in history if o.indeterminate)
        refused = sum(c.refused for c in clients)
        t0 = time.monotonic()
        ok, why = linearizable(primary_ops)
        check_s = time.monotonic() - t0
        verdicts = [("primary history linearizable", ok, why)]
        ok, why = replica_reads_ok(replica_reads, writes)
        verdicts.append(("replica reads monotonic and written", ok, why))

        converged, why = True, None
        for name, primary, replica in shards:
            end = time.monotonic() + 30
            while True:
                p, r = digest(primary), digest(replica)
                if p and r and p == r:
                    break
                if time.monotonic() > end:
                    converged, why = False, f"{name}: replica {r} != primary {p} after 30 s"
                    break
                time.sleep(0.2)
        verdicts.append(("replicas converge to their primaries", converged, why))

        for n in nodes:
            code = n.stop()
            if code != 0:
                failures.append(f"{n.label} exited {code} on SIGTERM")
        for n in nodes:
            with open(n.log_path, errors="replace") as f:
                text = f.read()
            for marker in ("Sanitizer", "runtime error:"):
                if marker in text:
                    failures.append(f"{n.label}: a sanitizer report in {n.log_path}")
        verdicts.append(("nodes and clients without errors", not failures, "; ".join(failures)))

        faults = sum(nemesis.counts.values())
        print(f"chaos: {len(history)} ops ({len(primary_ops)} on primaries, "
              f"{len(replica_reads)} replica reads), {indeterminate} indeterminate, {refused} "
              f"refused (not sent); {faults} faults ("
              + ", ".join(f"{k} {v}" for k, v in nemesis.counts.items())
              + f"); checked in {check_s:.1f} s")
        passed = 0
        for name, ok, why in verdicts:
            print(f"chaos: {name}: {'yes' if ok else 'NO'}")
            if not ok:
                print(why)
            passed += ok
        print("chaos: " + ("linearizable" if verdicts[0][1] else "NOT linearizable"))
        print(f"[check] {passed} passed, {len(verdicts) - passed} failed")
        if passed == len(verdicts):
            shutil.rmtree(work, ignore_errors=True)
            return 0
        with open(os.path.join(work, "history.jsonl"), "w") as out:
            for o in sorted(history, key=lambda o: o.call):
                out.write(json.dumps({s: getattr(o, s) for s in Op.__slots__},
                                     default=str) + "\n")
        with open(os.path.join(work, "faults.txt"), "w") as out:
            for start, end, name, label in nemesis.log:
                out.write(f"{start:.6f} .. {end:.6f} {name} {label}\n")
        print(f"chaos: data and logs kept in {work} (history.jsonl: every request; faults.txt: "
              f"the nemesis; both on the monotonic clock)")
        return 1
    finally:
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.signal(signal.SIGCONT)
                n.kill()


if __name__ == "__main__":
    sys.exit(main())
