#!/usr/bin/env bash
# Restart with hint files, two builds of the storage engine on the same
# files: one store of KEYS keys (every sealed segment with its hint file) is
# written once, then each build opens it in turn, ROUNDS times, page cache
# warm. Prints every open and, per build, the fastest wall time, the opening
# thread's CPU time and the process's CPU time (recovery may use a second
# thread), with the ratios old / new. Run it under the bench lock.
#
#   scripts/bench-restart-ab.sh OLD_COMPACTION_BENCH NEW_COMPACTION_BENCH
#
# Both binaries need compaction-bench's --make-store and --reopen modes. An
# older storage engine gets them by building it with this tree's benchmark
# source, e.g. for main:
#   git archive main | tar -x -C /tmp/base
#   cp bench/compaction_bench.cc /tmp/base/bench/ && make -C /tmp/base build/compaction-bench
#
# Environment: KEYS (10000000), ROUNDS (3).
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 2 ] || { echo "usage: $0 OLD_COMPACTION_BENCH NEW_COMPACTION_BENCH" >&2; exit 2; }
OLD=$1
NEW=$2
KEYS=${KEYS:-10000000}
ROUNDS=${ROUNDS:-3}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT

echo "machine: $(nproc) cores; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "old: $OLD"
echo "new: $NEW"
"$NEW" --make-store "$W/store" --restart-keys "$KEYS"
echo "store: $KEYS keys, $(du -sm "$W/store" | cut -f1) MB"
for round in $(seq 1 "$ROUNDS"); do
  for which in old new; do
    bin=$OLD
    [ "$which" = new ] && bin=$NEW
    line=$("$bin" --reopen "$W/store")
    echo "round $round $which: $line (load $(cut -d' ' -f1 /proc/loadavg))"
    echo "$which $line" >>"$W/results"
  done
done
# "<which> reopen: N keys, wall W s, thread CPU T s, process CPU P s"
awk '
  {
    w = $6; t = $10; p = $14
    if (!($1 in wall) || w < wall[$1]) wall[$1] = w
    if (!($1 in thread) || t < thread[$1]) thread[$1] = t
    if (!($1 in proc) || p < proc[$1]) proc[$1] = p
    keys[$1] = $3
  }
  END {
    if (keys["old"] != keys["new"]) { print "the builds recovered different key counts"; exit 1 }
    printf "fastest of the rounds      wall        thread CPU  process CPU\n"
    printf "  old              %9.3f s %9.3f s %9.3f s\n", wall["old"], thread["old"], proc["old"]
    printf "  new              %9.3f s %9.3f s %9.3f s\n", wall["new"], thread["new"], proc["new"]
    printf "  old / new        %9.2fx  %9.2fx  %9.2fx\n", wall["old"] / wall["new"],
           thread["old"] / thread["new"], proc["old"] / proc["new"]
  }' "$W/results"
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
