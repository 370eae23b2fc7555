#!/usr/bin/env python3
"""make chaos: a replicated distkv cluster under mixed load while a nemesis
injects faults; the recorded history is then checked.

    tests/chaos/chaos.py [--mode static|etcd] [--duration S] [--seed N] [--shards N]
                         [--clients N] [--keys N]
    (DISTKV_BIN names the binary; CHAOS_DURATION sets the default duration)

The run, one module per job:

    cluster.py   ports, node processes, etcd, the config (--shards shards, each
                 a primary and one replica, fsync=always; --mode etcd adds a
                 local etcd, automatic failover and min_acks = 1)
    topology.py  what the clients know of where things are; in etcd mode a
                 watcher of etcd's map, which also keeps the map's history
    load.py      --clients client threads, each request recorded (checker.Op)
    nemesis.py   the faults: kill, pause, restart and migrate in both modes,
                 failover with etcd
    judge.py     whose read each read was, and the checks on the history
    checker.py   the linearizability and replica-read checkers
    lost.py      the records nodes cut into lost/

Verdict, after the nemesis stops and every node is up again with no
migration left: the primaries' history is linearizable; the replica reads are
monotonic per replica and never return a value no one wrote; no replica read
showed a write its node then cut; each replica converges to its primary's
digest; no node exited non-zero on SIGTERM or wrote a sanitizer report, and no
fault failed. It prints the counts and "[check] N passed, N failed"; the exit
status is non-zero on any failure, and the data and logs are kept for
inspection.
"""
import argparse
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import judge  # noqa: E402
from checker import Op  # noqa: E402
from cluster import (Etcd, Node, Run, claim_ports, cluster_map, digest, owner_keys,  # noqa: E402
                     write_config)
from load import Client  # noqa: E402
from lost import cut_puts  # noqa: E402
from nemesis import FAULTS, Nemesis  # noqa: E402
from topology import MAP_POLL_S, MapWatcher, Topology  # noqa: E402


def heal(nodes):
    """Every node running and not stopped, and no migration left in the map."""
    for n in nodes:
        n.signal(signal.SIGCONT)
        if n.proc.poll() is not None:
            n.start()
    end = time.monotonic() + 60
    while time.monotonic() < end:
        m = cluster_map(nodes[0].address)
        if m and not m.get("migrations"):
            return
        time.sleep(0.2)


def final_reads(keys, topology, rng, history, etcd_mode):
    """Each key read once more on its primary now, one at a time, after everything else."""
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


def converged(shards, watcher):
    """(ok, why): each replica reaches its primary's digest (the primaries etcd names now)."""
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
                return False, f"{name}: replica {r} != primary {p} after 60 s"
            time.sleep(0.2)
    return True, None


def stop_and_scan(nodes):
    """Stops every node; the failures: a non-zero exit on SIGTERM, a sanitizer report."""
    failures = []
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
    return failures


def keep_evidence(work, history, nemesis, watcher):
    with open(os.path.join(work, "history.jsonl"), "w") as out:
        for o in sorted(history, key=lambda o: o.call):
            out.write(json.dumps({s: getattr(o, s) for s in Op.__slots__}, default=str) + "\n")
    with open(os.path.join(work, "faults.txt"), "w") as out:
        for start, end, name, what in nemesis.log:
            out.write(f"{start:.6f} .. {end:.6f} {name} {what}\n")
    if watcher:
        with open(os.path.join(work, "maps.txt"), "w") as out:
            for t, epoch, primaries in watcher.samples:
                out.write(f"{t:.6f} epoch {epoch} {primaries}\n")
    print(f"chaos: data and logs kept in {work} (history.jsonl: every request; faults.txt: "
          f"the nemesis; both on the monotonic clock)")


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
          + ("etcd, automatic failover, min_acks 1, " if etcd_mode else "no etcd, ")
          + f"migrations), {args.shards} shards with a replica each, {args.clients} clients, "
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
        failures = [t.error for t in clients + [nemesis] if t.error]

        heal(nodes)
        final_reads(keys, topology, rng, history, etcd_mode)
        stop_watch.set()

        primary_ops, replica_reads, forwarded, unsure = judge.split_reads(history, watcher)
        cut = {n.address: cut_puts(os.path.join(work, n.label)) for n in nodes}
        verdicts, check_s = judge.verdicts(primary_ops, replica_reads, cut)
        ok, why = converged(shards, watcher)
        verdicts.append(("replicas converge to their primaries", ok, why))
        failures += stop_and_scan(nodes)
        verdicts.append(("nodes and clients without errors", not failures, "; ".join(failures)))

        faults = sum(nemesis.counts.values())
        print(f"chaos: {len(history)} ops ({len(primary_ops)} in the primary history, "
              f"{len(replica_reads)} replica reads, {forwarded} of them forwarded"
              + (f", {unsure} reads sent to a primary that etcd did not name throughout"
                 if etcd_mode else "") + "), "
              f"{sum(1 for o in history if o.indeterminate)} indeterminate, "
              f"{sum(c.refused for c in clients)} refused (not sent), "
              f"{sum(c.dropped for c in clients)} answered 403/421 (not applied); "
              f"{faults} faults (" + ", ".join(f"{k} {v}" for k, v in nemesis.counts.items())
              + f"); checked in {check_s:.1f} s")
        if run.moves:
            done = sum(1 for m in run.moves if m[3] == 0)
            print(f"chaos: migrations: {done} of {len(run.moves)} finished (exit 0); keys seen "
                  f"changing owner {judge.owner_changes(history)} times")
        print(f"chaos: writes nodes cut into lost/: {sum(len(c) for c in cut.values())}")
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
        keep_evidence(work, history, nemesis, watcher)
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
