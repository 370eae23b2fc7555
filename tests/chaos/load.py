"""The chaos run's clients (tests/chaos/chaos.py): threads with keep-alive
connections of their own, each sending a mix of requests to a small set of
keys and recording every one as a checker.Op.

Each picks a key and an operation: a put of a value no one else writes, a
get, a delete, a put with If-Match of the ETag the client last saw for the
key (all on the primary of the key's shard), or a get on a replica of it
(?read=replica). Each request is recorded with its invoke and complete
times (one monotonic clock). A refused connection means the request was
never sent and is dropped, as is a 403 (a write sent to a node that is no
longer primary) or a 421 (a forwarded request the owner refused): neither
was applied. A timeout, a connection lost after sending, or a 5xx leaves
the outcome unknown (indeterminate).

A client keeps its own idea of the primaries and looks at the topology again
only when a node fails it (refused, timed out, 403, 421, 5xx) — so, like a
real client library, it keeps sending to a paused primary that was deposed
meanwhile until that node answers.
"""
import http.client
import threading
import time

from checker import Op
from cluster import REQUEST_TIMEOUT_S


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

