#!/usr/bin/env python3
"""make chaos: a replicated distkv cluster under mixed load while a nemesis
injects faults; the recorded history is then checked (checker.py).

    tests/chaos/chaos.py [--mode static|etcd] [--duration S] [--seed N] [--shards N]
                         [--clients N] [--keys N]
    (DISTKV_BIN names the binary; CHAOS_DURATION sets the default duration)

Cluster: --shards shards, each a primary and one replica, fsync=always, on
127.0.0.1 ports claimed like the cluster tests' (a block of ports held with
flock on $TMPDIR/distkv-test-ports/<block>.lock). --mode etcd adds a local
etcd (/usr/bin/etcd) and the [coordinator] section: automatic failover, with
min_acks = 1 so that a write is acknowledged only once the replica that may
take over holds it.

Load: --clients threads, each with its own keep-alive connections, pick a
key and an operation: put of a value no one else writes, get, delete, put
with If-Match of the ETag the client last saw for the key (all on the
primary of the key's shard), or get on a replica of it (?read=replica). Each
request is recorded with its invoke and complete times (one monotonic
clock). A refused connection means the request was never sent and is
dropped, as is a 403 (a write sent to a node that is no longer primary) or a
421 (a forwarded request the owner refused): neither was applied. A timeout,
a connection lost after sending, or a 5xx leaves the outcome unknown
(indeterminate). Clients learn where things are as a client library does:
a key's shard from the X-Distkv-Shard of the answers (a node forwards a key
it does not own), each shard's primary from the cluster map (etcd mode: read
from etcd every 100 ms by a watcher, which also keeps the map's history),
which a client looks at again only when a node fails it (refused, timed out,
403, 421, 5xx) — so, like a real client, it keeps sending to a paused
primary that was deposed meanwhile until that node answers.

Nemesis: every 1-3 s one fault from the mode's FAULTS: SIGKILL of a random
node and a restart a moment later, SIGSTOP then SIGCONT, a clean restart
(SIGTERM); static mode: a migration of a slot range to another shard
(`distkv reshard`); etcd mode: a failover (SIGKILL of a shard's primary, wait
until etcd names another, restart the old one, which comes back a replica).

Who served a read. Static mode: the primary of the shard that answered, or
the replica asked (a replica read another node answered, because the key had
moved, is checked only for having been written). Etcd mode: a read counts as
a primary's only if the etcd map named the node it was sent to primary of
the key's shard from before the read began until after it ended; any other
read is judged like a replica's, per node and map epoch (a deposed primary
cuts the tail the new primary never had, so its reads may go back across a
failover); reads that showed a deposed primary's own never-acknowledged tail
before the cut are counted and printed, not judged for going back
(deposed_tail_reads).

Verdict, after the nemesis stops and every node is up again: the primaries'
history is linearizable (with keys that moved: checker.py, moves); the
replica reads are monotonic per replica and never return a value no one
wrote; each replica converges to its primary's digest; no node log holds a
sanitizer report. It prints the counts and "[check] N passed, N failed"; the
exit status is non-zero on any failure, and the data and logs are kept for
inspection.
"""
import argparse
import base64
import bisect
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
import tomllib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from checker import Op, linearizable, replica_reads_ok  # noqa: E402

PORT_BASE, PORT_LIMIT, PORT_BLOCK = 20000, 32000, 100  # as tests/cluster/harness.h
REQUEST_TIMEOUT_S = 2.0
LEASE_TTL_MS = 2000  # etcd mode
MAP_POLL_S = 0.1  # etcd mode: how often the watcher reads the map
SLOT_COUNT = 16384
MOVE_RANGES = 4  # migrations move one of this many equal slot ranges


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


# --- where things are -------------------------------------------------------------------


class Topology:
    """What the clients know: each shard's primary and replicas, each key's shard."""

    def __init__(self, shards, key_shard):
        self.lock = threading.Lock()
        self.primary = {name: p for name, p, _ in shards}
        self.replicas = {name: [r] for name, _, r in shards}
        self.key_shard = dict(key_shard)

    def route(self, key):
        """(shard, its primary, a replica of it) for key."""
        with self.lock:
            shard = self.key_shard[key]
            return shard, self.primary[shard], self.replicas[shard][0]

    def shard_of(self, key):
        with self.lock:
            return self.key_shard[key]

    def roles(self):
        """Copies of {shard: primary} and {shard: [replica]}."""
        with self.lock:
            return dict(self.primary), {k: list(v) for k, v in self.replicas.items()}

    def learned(self, key, shard):
        with self.lock:
            if shard in self.primary:
                self.key_shard[key] = shard

    def set_roles(self, primaries, replicas):
        with self.lock:
            self.primary.update(primaries)
            self.replicas.update(replicas)


def etcd_get(etcd, key):
    """The value of key in etcd (v3 JSON gateway), or None."""
    body = json.dumps({"key": base64.b64encode(key.encode()).decode()})
    status, _, data = request(etcd, "POST", "/v3/kv/range", body,
                              {"Content-Type": "application/json"}, timeout=2)
    if status != 200:
        return None
    kvs = json.loads(data).get("kvs")
    return base64.b64decode(kvs[0]["value"]).decode() if kvs else None


class MapWatcher(threading.Thread):
    """Etcd mode: reads the cluster map from etcd every MAP_POLL_S, points the clients at the
    primaries it names and keeps (time, epoch, {shard: primary}) for each read."""

    def __init__(self, etcd, topology, stop):
        super().__init__(daemon=True)
        self.etcd, self.topology, self.stop = etcd, topology, stop
        self.samples = []  # (time, epoch, {shard: primary}), in time order
        self.times = []
        self.epochs = set()

    def read(self):
        text = etcd_get(self.etcd, "/distkv/map")
        if text is None:
            return None
        m = tomllib.loads(text)
        return (m["epoch"], {s["name"]: s["address"] for s in m["shards"]},
                {s["name"]: s["replicas"] for s in m["shards"]})

    def run(self):
        while not self.stop.is_set():
            t = time.monotonic()
            try:
                got = self.read()
            except (ValueError, KeyError, tomllib.TOMLDecodeError):
                got = None
            if got:
                epoch, primaries, replicas = got
                self.samples.append((t, epoch, primaries))
                self.times.append(t)
                self.epochs.add(epoch)
                self.topology.set_roles(primaries, {k: v for k, v in replicas.items() if v})
            time.sleep(MAP_POLL_S)

    def primary_throughout(self, shard, node, start, end):
        """True if every map read from the last one before start to the first one after end
        named node primary of shard (no read in between: unknown, False)."""
        first = bisect.bisect_right(self.times, start) - 1
        last = bisect.bisect_left(self.times, end)
        if first < 0 or last >= len(self.times):
            return False
        return all(x[2].get(shard) == node for x in self.samples[first:last + 1])

    def epoch_at(self, t):
        i = bisect.bisect_right(self.times, t) - 1
        return self.samples[i][1] if i >= 0 else 0


def cluster_map(address):
    status, _, body = request(address, "GET", "/cluster", timeout=5)
    return json.loads(body) if status == 200 else None


# --- faults ------------------------------------------------------------------------------


class Kill:
    name = "kill"

    def run(self, run, rng):
        node = rng.choice(run.nodes)
        node.kill()
        time.sleep(rng.uniform(0.2, 1.5))
        node.start()
        return node.label


class Pause:
    name = "pause"

    def run(self, run, rng):
        node = rng.choice(run.nodes)
        node.signal(signal.SIGSTOP)
        node.stopped = True
        time.sleep(rng.uniform(0.3, 2.5))  # past the clients' timeout at times
        node.signal(signal.SIGCONT)
        node.stopped = False
        return node.label


class Restart:
    name = "restart"

    def run(self, run, rng):
        node = rng.choice(run.nodes)
        code = node.stop()
        if code != 0:
            raise RuntimeError(f"{node.label} exited {code} on SIGTERM; see {node.log_path}")
        node.start()
        return node.label


class Migrate:
    """Moves one of MOVE_RANGES slot ranges to a shard that does not own all of it, with
    `distkv reshard` (which waits for the move to finish)."""
    name = "migrate"
    timeout_s = 60

    def run(self, run, rng):
        first = rng.randrange(MOVE_RANGES) * (SLOT_COUNT // MOVE_RANGES)
        last = first + SLOT_COUNT // MOVE_RANGES - 1
        m = None
        for n in run.nodes:
            m = cluster_map(n.address)
            if m:
                break
        owners = set()
        for sh in (m or {}).get("shards", []):
            for a, b in sh.get("slots", []):
                if a <= last and b >= first:
                    owners.add(sh["name"])
        choices = [name for name in run.shard_names if owners != {name}]
        target = rng.choice(choices)
        cmd = [run.binary, "reshard", "--config", run.config, "--slots", f"{first}-{last}",
               "--to", target]
        with open(os.path.join(run.work, "reshard.log"), "ab") as log:
            log.write(f"==== {' '.join(cmd)}\n".encode())
            log.flush()
            try:
                code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                                      timeout=self.timeout_s).returncode
            except subprocess.TimeoutExpired:
                code = "timeout"
        run.moves.append((first, last, target, code))
        return f"slots {first}-{last} -> {target} (exit {code})"


class Failover:
    """SIGKILLs a shard's primary (as etcd names it), waits until etcd names another, then
    restarts the old one, which finds itself a replica."""
    name = "failover"
    timeout_s = 30

    def run(self, run, rng):
        shard = rng.choice(run.shard_names)
        got = run.watcher.read()
        if not got:
            return f"{shard}: etcd did not answer"
        old = got[1][shard]
        node = run.by_address[old]
        node.kill()
        deadline = time.monotonic() + self.timeout_s
        new = old
        while time.monotonic() < deadline:
            got = run.watcher.read()
            if got and got[1][shard] != old:
                new = got[1][shard]
                break
            time.sleep(0.1)
        node.start()
        if new == old:
            raise RuntimeError(f"no failover of {shard} within {self.timeout_s} s")
        return f"{shard}: {old} -> {new}"


FAULTS = {"static": [Kill(), Pause(), Restart(), Migrate()],
          "etcd": [Kill(), Pause(), Restart(), Failover()]}


class Nemesis(threading.Thread):
    def __init__(self, run, faults, rng, deadline):
        super().__init__(daemon=True)
        self.run_, self.faults, self.rng, self.deadline = run, faults, rng, deadline
        self.counts = {f.name: 0 for f in faults}
        self.log = []  # (start, end, fault, what) on the monotonic clock
        self.error = None

    def run(self):
        try:
            while time.monotonic() + 1 < self.deadline:
                time.sleep(self.rng.uniform(1.0, 3.0))
                fault = self.rng.choice(self.faults)
                start = time.monotonic()
                what = fault.run(self.run_, self.rng)
                self.log.append((start, time.monotonic(), fault.name, what))
                self.counts[fault.name] += 1
        except Exception as e:  # reported in the verdict
            self.error = f"nemesis: {e}"


# --- clients -----------------------------------------------------------------------------


class Client(threading.Thread):
    def __init__(self, cid, keys, topology, rng, deadline, history):
        super().__init__(daemon=True)
        self.cid, self.keys, self.topology, self.rng = cid, keys, topology, rng
        self.deadline, self.history = deadline, history
        self.conns = {}
        self.seq = 0
        self.etags = {}
        self.refused = 0
        self.dropped = 0
        self.error = None
        # The client's own idea of the primaries, refreshed only when a node fails it, as a
        # client library does: so requests do reach a deposed primary that is back.
        self.primary, self.replicas = topology.roles()

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
        """Fills op's outcome; False when the request was surely not applied (never sent,
        or refused with 403/421)."""
        try:
            c = self.conn(address)
        except OSError:
            self.refused += 1
            self.primary, self.replicas = self.topology.roles()
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
            self.primary, self.replicas = self.topology.roles()
            return True
        op.ret = time.monotonic()
        if r.will_close:
            self.drop(address)
        op.shard = r.getheader("X-Distkv-Shard")
        if status >= 500 or status in (403, 421):
            self.primary, self.replicas = self.topology.roles()
        if status >= 500:
            return True  # indeterminate
        if status in (403, 421):
            self.dropped += 1
            return False
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
        shard = self.topology.shard_of(key)
        primary, replica = self.primary[shard], self.replicas[shard][0]
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
            op.role = "replica"
            sent = self.send(op, replica, "GET", path + "?read=replica")
        op.role = op.role or "primary"
        op.target = shard
        if op.shard and op.shard != shard:
            self.topology.learned(key, op.shard)
        if not sent:
            time.sleep(0.02)  # the node is down or not what the client thought; do not spin
            return
        if op.etag is not None:
            self.etags[key] = op.etag
        self.history.append(op)  # list.append is atomic


# --- the run -------------------------------------------------------------------------------


def write_config(path, shards, etcd=None):
    lines = ["[storage]", 'fsync = "always"', "", "[server]", "idle_timeout_ms = 5000", ""]
    if etcd:
        lines += ["[coordinator]", f'etcd = ["{etcd}"]', f"lease_ttl_ms = {LEASE_TTL_MS}", "",
                  "[replication]", "min_acks = 1", ""]
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


def deposed_tail_reads(replica_reads, writes, primary_ops):
    """Replica reads that showed a deposed primary's own tail: a value written to that node
    by a write that was never acknowledged and that no primary read ever showed.

    A primary that is killed with writes in flight has them in its log but not on the
    replica that takes over. Restarted as a replica, it serves them until it asks the new
    primary for the log, is told its history diverged, and cuts them (README "Writes a
    deposed primary kept"): the same node then reads older data. Such a read shows a value
    that was written (the check for that still applies) but not part of the shard's history,
    so it is left out of the check that a replica's reads do not go back."""
    seen = {(o.key, o.result) for o in primary_ops if o.kind == "get" and o.result is not None}
    unacked = {(w.key, w.value): w.node for w in writes
               if w.kind in ("put", "cas") and w.indeterminate}
    return [r for r in replica_reads
            if r.result is not None and (r.key, r.result) not in seen
            and unacked.get((r.key, r.result)) == r.node]


class Etcd:
    def __init__(self, work, client_port, peer_port):
        self.address = f"127.0.0.1:{client_port}"
        peer = f"http://127.0.0.1:{peer_port}"
        self.args = ["/usr/bin/etcd", "--name", "chaos", "--data-dir", os.path.join(work, "etcd"),
                     "--listen-client-urls", "http://" + self.address,
                     "--advertise-client-urls", "http://" + self.address,
                     "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                     "--initial-cluster", "chaos=" + peer]
        self.log_path = os.path.join(work, "etcd.log")
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if request(self.address, "GET", "/health", timeout=1)[0] == 200:
                return
            time.sleep(0.1)
        raise RuntimeError(f"etcd not ready after 30 s; see {self.log_path}")


class Run:
    """What the faults act on."""

    def __init__(self, binary, config, work, nodes, shard_names, watcher):
        self.binary, self.config, self.work = binary, config, work
        self.nodes, self.shard_names, self.watcher = nodes, shard_names, watcher
        self.by_address = {n.address: n for n in nodes}
        self.moves = []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mode", choices=("static", "etcd"),
                    default=os.environ.get("CHAOS_MODE", "static"))
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
    etcd_mode = args.mode == "etcd"
    print(f"chaos: seed {args.seed}, {args.duration:.0f} s, mode {args.mode} ("
          + ("etcd, automatic failover, min_acks 1" if etcd_mode else "no etcd, migrations")
          + f"), {args.shards} shards with a replica each, {args.clients} clients, "
          f"{args.keys * args.shards} keys", flush=True)

    work = tempfile.mkdtemp(prefix="distkv-chaos-")
    ports = claim_ports(2 * args.shards + 2)
    shards = [(f"shard-{i}", f"127.0.0.1:{ports[2 * i]}", f"127.0.0.1:{ports[2 * i + 1]}")
              for i in range(args.shards)]
    etcd = Etcd(work, ports[-2], ports[-1]) if etcd_mode else None
    config = os.path.join(work, "sharding.toml")
    write_config(config, shards, etcd.address if etcd else None)
    nodes = []
    for name, primary, replica in shards:
        for addr, is_replica in ((primary, False), (replica, True)):
            label = name + ("-replica" if is_replica else "")
            nodes.append(Node(label, binary, config, name, addr, os.path.join(work, label),
                              os.path.join(work, label + ".log"), is_replica))
    failures = []
    stop_watch = threading.Event()
    try:
        if etcd:
            etcd.start()
        for n in nodes:
            n.start()
        keys_of = owner_keys(shards, args.keys)
        topology = Topology(shards, {k: name for name, ks in keys_of.items() for k in ks})
        keys = sorted(topology.key_shard)
        watcher = None
        if etcd:
            watcher = MapWatcher(etcd.address, topology, stop_watch)
            end = time.monotonic() + 30
            while watcher.read() is None:  # the primaries publish the map at start
                if time.monotonic() > end:
                    raise RuntimeError("no cluster map in etcd after 30 s")
                time.sleep(0.2)
            watcher.start()
        run = Run(binary, config, work, nodes, [s[0] for s in shards], watcher)

        history = []
        deadline = time.monotonic() + args.duration
        clients = [Client(i, keys, topology, random.Random(rng.random()), deadline, history)
                   for i in range(args.clients)]
        nemesis = Nemesis(run, FAULTS[args.mode], random.Random(rng.random()), deadline)
        for t in clients + [nemesis]:
            t.start()
        for t in clients + [nemesis]:
            t.join()
        for t in clients + [nemesis]:
            if t.error:
                failures.append(t.error)

        # Heal: every node running and not stopped, no migration left.
        for n in nodes:
            n.signal(signal.SIGCONT)
            if n.proc.poll() is not None:
                n.start()
        end = time.monotonic() + 60
        while not etcd_mode and time.monotonic() < end:
            m = cluster_map(nodes[0].address)
            if m and not m.get("migrations"):
                break
            time.sleep(0.2)

        # Final reads, one at a time, after everything else, on each key's primary now.
        time.sleep(2 * MAP_POLL_S if etcd_mode else 0)
        final = Client(-1, keys, topology, rng, 0, [])
        for k in keys:
            for _ in range(100):
                shard, primary, _ = topology.route(k)
                op = Op(-1, "get", k, 0, node=primary)
                if final.send(op, primary, "GET", "/kv/" + k) and not op.indeterminate:
                    break
                if op.shard and op.shard != shard:
                    topology.learned(k, op.shard)
                time.sleep(0.2)
            op.role, op.target = "primary", topology.route(k)[0]
            history.append(op)
        stop_watch.set()

        # Which reads were a primary's (see the top of this file).
        primary_ops, replica_reads, forwarded, unsure = [], [], 0, 0
        for o in history:
            if o.kind != "get":
                primary_ops.append(o)
                continue
            meant = o.target
            if o.role == "primary":
                if not etcd_mode or o.client == -1 or watcher.primary_throughout(
                        meant, o.node, o.call, o.ret):
                    primary_ops.append(o)
                    continue
                o.stream = (o.node, watcher.epoch_at(o.call))
                unsure += not o.indeterminate
            elif o.shard is not None and o.shard != meant:
                o.stream = ("forwarded", id(o))  # another node answered: judged alone
                forwarded += 1
            else:
                o.stream = (o.node, watcher.epoch_at(o.call)) if etcd_mode else o.node
            replica_reads.append(o)
        owners = {}  # key -> the shards that answered for it, in order
        for o in sorted(history, key=lambda o: o.call):
            if o.shard and o.role == "primary" and not o.indeterminate:
                seen = owners.setdefault(o.key, [])
                if not seen or seen[-1] != o.shard:
                    seen.append(o.shard)
        owner_changes = sum(len(v) - 1 for v in owners.values())
        writes = [o for o in history if o.kind != "get"]
        tail_reads = deposed_tail_reads(replica_reads, writes, primary_ops) if etcd_mode else []
        replica_reads = [o for o in replica_reads if o not in tail_reads]
        indeterminate = sum(1 for o in history if o.indeterminate)
        refused = sum(c.refused for c in clients)
        dropped = sum(c.dropped for c in clients)
        moves = not etcd_mode
        t0 = time.monotonic()
        ok, why = linearizable(primary_ops, moves)
        check_s = time.monotonic() - t0
        verdicts = [("primary history linearizable", ok, why)]
        ok, why = replica_reads_ok(replica_reads, writes, moves)
        verdicts.append(("replica reads monotonic and written", ok, why))

        converged, why = True, None
        for name, primary, replica in shards:
            end = time.monotonic() + 60
            while True:
                if watcher:
                    got = watcher.read()
                    if got:
                        primary, replica = got[1][name], got[2][name][0]
                p, r = digest(primary), digest(replica)
                if p and r and p == r:
                    break
                if time.monotonic() > end:
                    converged, why = False, f"{name}: replica {r} != primary {p} after 60 s"
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
        print(f"chaos: {len(history)} ops ({len(primary_ops)} in the primary history, "
              f"{len(replica_reads)} replica reads, {forwarded} of them forwarded"
              + (f", {unsure} reads sent to a primary that etcd did not name throughout"
                 if etcd_mode else "") + "), "
              f"{indeterminate} indeterminate, {refused} refused (not sent), {dropped} "
              f"answered 403/421 (not applied); {faults} faults ("
              + ", ".join(f"{k} {v}" for k, v in nemesis.counts.items())
              + f"); checked in {check_s:.1f} s")
        if tail_reads:
            print(f"chaos: {len(tail_reads)} replica reads showed a deposed primary's own tail "
                  f"before it was cut (not judged for going back; see deposed_tail_reads):")
            for o in tail_reads[:5]:
                print(f"    {o!r}")
        if run.moves:
            done = sum(1 for m in run.moves if m[3] == 0)
            print(f"chaos: migrations: {done} of {len(run.moves)} finished (exit 0); keys seen "
                  f"changing owner {owner_changes} times")
        if watcher:
            print(f"chaos: map epochs seen in etcd: {min(watcher.epochs)}..{max(watcher.epochs)}")
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
            for start, end, name, what in nemesis.log:
                out.write(f"{start:.6f} .. {end:.6f} {name} {what}\n")
        if watcher:
            with open(os.path.join(work, "maps.txt"), "w") as out:
                for t, epoch, primaries in watcher.samples:
                    out.write(f"{t:.6f} epoch {epoch} {primaries}\n")
        print(f"chaos: data and logs kept in {work} (history.jsonl: every request; faults.txt: "
              f"the nemesis; both on the monotonic clock)")
        return 1
    finally:
        stop_watch.set()
        for n in nodes:
            if n.proc and n.proc.poll() is None:
                n.signal(signal.SIGCONT)
                n.kill()
        if etcd and etcd.proc and etcd.proc.poll() is None:
            etcd.proc.kill()
            etcd.proc.wait()


if __name__ == "__main__":
    sys.exit(main())
