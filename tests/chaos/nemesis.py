"""The chaos run's nemesis (tests/chaos/chaos.py): every 1-3 s one fault of
the mode's FAULTS, run to its end before the next.

    kill      SIGKILL of a random node and a restart a moment later
    pause     SIGSTOP, then SIGCONT (past the clients' timeout at times)
    restart   a clean restart (SIGTERM, which must exit 0)
    migrate   a slot range moved to another shard with `distkv reshard` (with
              etcd, the migration is listed and committed in etcd's map)
    failover  (etcd) SIGKILL of a shard's primary, a wait until etcd names
              another, a restart of the old one, which comes back a replica

A fault acts on a cluster.Run; the Nemesis counts and logs what it did.
"""
import os
import signal
import subprocess
import threading
import time

from cluster import cluster_map

SLOT_COUNT = 16384
MOVE_RANGES = 4  # migrations move one of this many equal slot ranges


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
          "etcd": [Kill(), Pause(), Restart(), Migrate(), Failover()]}


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

