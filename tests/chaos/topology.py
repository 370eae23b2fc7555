"""Where things are, as the chaos run's clients know it (tests/chaos/chaos.py).

Topology holds what the clients believe: each shard's primary and replicas
and each key's shard. A key's shard is learned from the X-Distkv-Shard of the
answers (a node forwards a key it does not own); the primaries come from the
cluster map. In etcd mode a MapWatcher reads the map from etcd every
MAP_POLL_S, points the topology at the primaries it names, and keeps the
map's history, which decides afterwards whose read was a primary's.
"""
import base64
import bisect
import json
import threading
import time
import tomllib

from cluster import request

MAP_POLL_S = 0.1  # etcd mode: how often the watcher reads the map


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

