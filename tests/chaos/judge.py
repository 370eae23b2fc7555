"""Who served each read of a chaos run, and the checks on the history
(tests/chaos/chaos.py; the checks themselves are in checker.py).

Who served a read. Without etcd: the primary of the shard that answered, or
the replica asked. With etcd: a read counts as a primary's only if the etcd
map named the node it was sent to primary of the key's shard from before the
read began until after it ended (MapWatcher.primary_throughout); any other
read is judged like a replica's, per node and map epoch — a deposed primary
that does not know it yet serves reads as a replica does, and a node that
cut a tail the new primary never had may read older data in the new epoch
than it did in the old. A replica read that another node answered (the key
had moved, X-Distkv-Shard names another shard) is checked only for having
been written.

The checks: the primaries' history is linearizable (with keys that move:
checker.py, moves); replica reads are monotonic per stream and never show a
value no one wrote; and no replica read showed a write that the node which
answered it cut from its log afterwards (lost.py): a node whose history may
have diverged from its primary's — a deposed primary, or any replica after a
start or a change of primary — serves no replica reads until its primary has
accepted its stream and the tail the primary never had is gone.
"""
import time

from checker import linearizable, replica_reads_ok


def split_reads(history, watcher):
    """(primary_ops, replica_reads, forwarded, unsure): the primary history (every write
    and the reads judged a primary's) and the reads judged as a replica's, each given the
    stream it is judged in (Op.stream); forwarded counts the replica reads another node
    answered, unsure the reads sent to a primary that etcd did not name throughout."""
    primary_ops, replica_reads, forwarded, unsure = [], [], 0, 0
    for o in history:
        if o.kind != "get":
            primary_ops.append(o)
            continue
        meant = o.target
        if o.role == "primary":
            if watcher is None or o.client == -1 or watcher.primary_throughout(
                    meant, o.node, o.call, o.ret):
                primary_ops.append(o)
                continue
            o.stream = (o.node, watcher.epoch_at(o.call))
            unsure += not o.indeterminate
        elif o.shard is not None and o.shard != meant:
            o.stream = ("forwarded", id(o))  # another node answered: judged alone
            forwarded += 1
        else:
            o.stream = (o.node, watcher.epoch_at(o.call)) if watcher else o.node
        replica_reads.append(o)
    return primary_ops, replica_reads, forwarded, unsure


def owner_changes(history):
    """How many times the primary reads and writes saw a key's shard change."""
    owners = {}  # key -> the shards that answered for it, in order
    for o in sorted(history, key=lambda o: o.call):
        if o.shard and o.role == "primary" and not o.indeterminate:
            seen = owners.setdefault(o.key, [])
            if not seen or seen[-1] != o.shard:
                seen.append(o.shard)
    return sum(len(v) - 1 for v in owners.values())


def reads_of_cut_writes(replica_reads, cut):
    """The replica reads that showed a put their node cut: cut maps a node's address to
    the {(key, value, lsn)} of lost.cut_puts."""
    return [o for o in replica_reads
            if o.result is not None and o.stream and o.stream[0] != "forwarded"
            and (o.key, o.result, o.etag) in cut.get(o.node, ())]


def verdicts(primary_ops, replica_reads, cut):
    """[(name, ok, why)] of the history checks, and the seconds the linearizability
    check took."""
    writes = [o for o in primary_ops if o.kind != "get"]
    out = []
    t0 = time.monotonic()
    ok, why = linearizable(primary_ops, moves=True)
    check_s = time.monotonic() - t0
    out.append(("primary history linearizable", ok, why))
    ok, why = replica_reads_ok(replica_reads, writes, moves=True)
    out.append(("replica reads monotonic and written", ok, why))
    bad = reads_of_cut_writes(replica_reads, cut)
    out.append(("no replica read showed a write its node then cut", not bad,
                f"{len(bad)} replica reads showed a write that the node answering them "
                f"later cut into lost/ (never in the shard's history), e.g.:\n"
                + "\n".join(f"    {o!r}" for o in bad[:5])))
    return out, check_s
