"""Consistency checks for histories recorded against distkv.

A history is a list of Op records, one per client request, each with the
times it was invoked and completed (one monotonic clock, seconds) and what
came back. Two checks:

linearizable(ops)
    For primary operations on single-key registers with compare-and-set:
    put, get, delete and If-Match put. Linearizability is compositional, so
    each key is checked on its own, with the Wing & Gong search as Lowe and
    Porcupine refine it: walk the history's call/return events in time order,
    try to linearize a pending call whose model step accepts its output,
    backtrack at a return whose call could not be placed, and memoize
    (set of linearized ops, model state) pairs so no configuration is explored
    twice. An indeterminate op (timeout, connection lost after sending, 5xx)
    has no return: it may take effect at any point after its call, or never.

replica_reads_ok(ops, writes)
    For reads served by a replica: every value read was written by some
    client (with the ETag its acknowledged write got, when it was
    acknowledged), and per replica and key, reads that do not overlap never
    go back (the ETag, an LSN, does not decrease; a 404 after a value needs a
    delete of that key, and a value after that 404 must be newer than the one
    before it).

The register's state is None (no value) or (value, etag); etag is "?" when
the value came from an indeterminate put (its ETag was never seen) until a
read reveals it. ETags are the shard's LSNs, so a key's successive ETags
must increase.

Keys that move (moves=True, a run that migrates slots between shards): a key
that moves is written into the target's log under the target's LSN, so its
ETag changes without a write. The target's LSNs first jump past the
source's, so the new ETag is higher: ETags still never go back. The model
allows that change at any moment: a read may show the current value with a
higher ETag than the state's (the state takes it), an If-Match with the old
ETag may fail (412) and one with a higher ETag may succeed. A value still
cannot change without a write, go back, or vanish without a delete.
"""
import collections
import math

INF = math.inf


class Op:
    """One client request. kind: put | cas | delete | get.

    value: the value put (put, cas); if_match: the ETag cas required;
    status: HTTP status, or None when indeterminate; etag: returned ETag;
    result: the value a get returned (None for 404).
    """

    __slots__ = ("client", "kind", "key", "value", "if_match", "call", "ret", "status", "etag",
                 "result", "node", "index", "shard", "stream", "role", "target")

    def __init__(self, client, kind, key, call, value=None, if_match=None, node=None):
        self.client = client
        self.kind = kind
        self.key = key
        self.value = value
        self.if_match = if_match
        self.call = call
        self.ret = INF
        self.status = None
        self.etag = None
        self.result = None
        self.node = node
        self.index = 0
        self.shard = None  # the shard that answered (X-Distkv-Shard)
        self.stream = None  # replica reads: what they are judged with for going back
        self.role = None  # what the client meant to reach: "primary" or "replica" ...
        self.target = None  # ... of this shard

    @property
    def indeterminate(self):
        return self.status is None

    def __repr__(self):
        what = {"put": f"put({self.value!r})", "cas": f"put({self.value!r}, If-Match {self.if_match})",
                "delete": "delete", "get": "get"}[self.kind]
        if self.indeterminate:
            out = "indeterminate"
        elif self.kind == "get":
            out = "404" if self.result is None else f"{self.result!r} etag {self.etag}"
        else:
            out = f"{self.status}" + (f" etag {self.etag}" if self.etag is not None else "")
        end = "inf" if self.ret == INF else f"{self.ret:.6f}"
        return (f"[client {self.client}] {self.key!r} {what} -> {out}  "
                f"({self.call:.6f} .. {end}{', ' + self.node if self.node else ''})")


def _newer(etag, state):
    """True when etag may follow the state's ETag (LSNs increase)."""
    return state is None or state[1] == "?" or etag > state[1]


def step(state, op, moves=False):
    """The states the register may be in after op, given its outcome ([] if none). With
    moves, the state's ETag may have risen since (the key moved to another shard)."""
    if op.kind == "get":
        if op.result is None:
            return [None] if state is None else []
        if state is not None and state[0] == op.result and (
                state[1] in ("?", op.etag) or moves and op.etag > state[1]):
            return [(op.result, op.etag)]
        return []
    if op.kind == "delete":
        if op.indeterminate:
            return [state] if state is None else [None, state]
        if op.status == 204:
            return [None] if state is not None else []
        if op.status == 404:
            return [None] if state is None else []
        return []
    if op.kind == "put":
        if op.indeterminate:
            return [(op.value, "?"), state]
        if op.status == 201 and state is None or op.status == 200 and state is not None:
            return [(op.value, op.etag)] if _newer(op.etag, state) else []
        return []
    if op.kind == "cas":
        may_match = state is not None and (
            state[1] in ("?", op.if_match) or moves and op.if_match > state[1])
        may_differ = state is None or state[1] != op.if_match or moves
        if op.indeterminate:
            return ([(op.value, "?")] if may_match else []) + [state]
        if op.status == 412:
            return [state] if may_differ else []
        if op.status == 200:
            return [(op.value, op.etag)] if may_match and _newer(op.etag, state) else []
        return []
    raise ValueError(op.kind)


class _Event:
    __slots__ = ("op", "is_call", "match", "prev", "next")

    def __init__(self, op, is_call):
        self.op = op
        self.is_call = is_call
        self.match = None
        self.prev = None
        self.next = None


def _check_key(ops, moves):
    """(True, None) or (False, explanation) for one key's ops."""
    for i, op in enumerate(ops):
        op.index = i
    events = []
    for op in ops:
        call, ret = _Event(op, True), _Event(op, False)
        call.match = ret
        events.append((op.call, 0, call))
        events.append((op.ret, 1, ret))
    # Calls before returns at equal times: treat touching ops as concurrent.
    events.sort(key=lambda e: (e[0], e[1]))
    head = _Event(None, True)
    prev = head
    for _, _, ev in events:
        prev.next = ev
        ev.prev = prev
        prev = ev

    def lift(call):
        call.prev.next = call.next
        if call.next:
            call.next.prev = call.prev
        ret = call.match
        ret.prev.next = ret.next
        if ret.next:
            ret.next.prev = ret.prev

    def unlift(call):
        ret = call.match
        ret.prev.next = ret
        if ret.next:
            ret.next.prev = ret
        call.prev.next = call
        if call.next:
            call.next.prev = call

    state = None
    linearized = 0
    seen = set()
    stack = []  # (call event, state before it, untried alternative states)
    best = (-1, None, None)  # (depth, op that could not be placed, state then)
    entry = head.next
    while head.next is not None:
        if entry.is_call:
            op = entry.op
            bit = linearized | (1 << op.index)
            options = [s for s in step(state, op, moves) if (bit, s) not in seen]
            if options:
                seen.add((bit, options[0]))
                stack.append((entry, state, options[1:]))
                state = options[0]
                linearized = bit
                lift(entry)
                entry = head.next
            else:
                entry = entry.next
            continue
        # A return whose call could not be linearized: backtrack.
        if len(stack) > best[0]:
            best = (len(stack), entry.op, state)
        while True:
            if not stack:
                _, op, at = best
                pending = [o for o in ops if o.call <= op.ret and o.ret >= op.call and o is not op]
                lines = [f"no linearization of key {op.key!r}: after {best[0]} ops (state then: "
                         f"{at!r}) this op cannot take effect:", f"    {op!r}",
                         "  concurrent with:"] + [f"    {o!r}" for o in pending[:12]]
                return False, "\n".join(lines)
            call, before, alternatives = stack.pop()
            bit = linearized
            alternatives = [s for s in alternatives if (bit, s) not in seen]
            if alternatives:
                seen.add((bit, alternatives[0]))
                stack.append((call, before, alternatives[1:]))
                state = alternatives[0]
                entry = head.next
                break
            linearized &= ~(1 << call.op.index)
            state = before
            unlift(call)
            entry = call.next
            break
    return True, None


def linearizable(ops, moves=False):
    """(True, None) or (False, explanation) for primary operations on many keys; moves: keys
    may have moved between shards (see the top of this file)."""
    by_key = collections.defaultdict(list)
    for op in ops:
        if op.kind == "get" and op.indeterminate:
            continue  # a read that did not answer constrains nothing
        by_key[op.key].append(op)
    for key in sorted(by_key):
        ok, why = _check_key(by_key[key], moves)
        if not ok:
            return False, why
    return True, None


def replica_reads_ok(reads, writes, moves=False):
    """(True, None) or (False, explanation); reads: gets served by replicas, writes: every
    put/cas/delete sent to primaries. Reads are judged for going back per (op.stream or
    op.node, key): a stream is what one replica served. With moves (see the top of this
    file) a value may be read with a higher ETag than its write was acknowledged with."""
    written = {}  # (key, value) -> acknowledged etag or None
    deletes = collections.defaultdict(list)
    for w in writes:
        if w.kind in ("put", "cas"):
            if w.status in (200, 201):
                written[(w.key, w.value)] = w.etag
            elif w.indeterminate:
                written.setdefault((w.key, w.value), None)
        elif w.kind == "delete" and w.status != 404:
            deletes[w.key].append(w)
    for r in reads:
        if r.indeterminate or r.result is None:
            continue
        if (r.key, r.result) not in written:
            return False, f"replica read a value no client wrote:\n    {r!r}"
        etag = written[(r.key, r.result)]
        if etag is not None and (r.etag < etag if moves else r.etag != etag):
            return False, (f"replica read {r.result!r} with ETag {r.etag}, but its write was "
                           f"acknowledged with ETag {etag}:\n    {r!r}")
    streams = collections.defaultdict(list)
    for r in reads:
        if not r.indeterminate:
            streams[(r.stream or r.node, r.key)].append(r)
    for (node, key), rs in streams.items():
        rs.sort(key=lambda o: o.call)
        # Compare each read with every earlier read that completed before it began.
        done = sorted(rs, key=lambda o: o.ret)
        high, high_op, gone, j = 0, None, None, 0
        for r in rs:
            while j < len(done) and done[j].ret < r.call:
                d = done[j]
                if d.result is not None and d.etag > high:
                    high, high_op, gone = d.etag, d, None
                if d.result is None and high_op is not None and d.call > high_op.ret:
                    gone = d  # the key was seen deleted after its newest value
                j += 1
            if high_op is None:
                continue
            if r.result is not None and (r.etag < high or gone is not None and r.etag == high):
                earlier = high_op if gone is None else gone
                return False, (f"replica {node} went back on key {key!r}:\n    {earlier!r}\n"
                               f"  then\n    {r!r}")
            if r.result is None and not any(d.call < r.ret for d in deletes[key]):
                return False, (f"replica {node} lost key {key!r} with no delete sent:\n"
                               f"    {high_op!r}\n  then\n    {r!r}")
    return True, None
