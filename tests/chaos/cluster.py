"""The chaos run's cluster: ports, node processes, a local etcd, the config,
and plain HTTP requests to them (tests/chaos/chaos.py).

Nodes listen on 127.0.0.1 ports claimed like the cluster tests' (a block of
ports held with flock on $TMPDIR/distkv-test-ports/<block>.lock, released
when the process exits). Each shard is a primary and one replica,
fsync=always; with etcd the config adds the [coordinator] section (automatic
failover, lease_ttl_ms LEASE_TTL_MS) and min_acks = 1, so that a write is
acknowledged only once the replica that may take over holds it.
"""
import fcntl
import http.client
import json
import os
import signal
import socket
import subprocess
import time

PORT_BASE, PORT_LIMIT, PORT_BLOCK = 20000, 32000, 100  # as tests/cluster/harness.h
REQUEST_TIMEOUT_S = 2.0
LEASE_TTL_MS = 2000  # etcd mode


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
        # Skip ports something else listens on, as the harness does.
        start = PORT_BASE + block * PORT_BLOCK
        free = [p for p in range(start, start + PORT_BLOCK) if port_bindable(p)]
        if len(free) >= n:
            return free[:n]
    raise SystemExit(f"every port block in {d} is claimed")


def port_bindable(port):
    """True when port can be bound on 127.0.0.1 now (nothing else listens there)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the node binds
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


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


def cluster_map(address):
    status, _, body = request(address, "GET", "/cluster", timeout=5)
    return json.loads(body) if status == 200 else None


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
