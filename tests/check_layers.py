#!/usr/bin/env python3
"""The floors of the code, checked on its #include lines.

The Makefile says what each layer may use (its LINK_<layer> lists: the layer
and the ones below it), and links each layer's unit tests against those
libraries only, which catches a call into a layer above. A header-only use
(an inline function, a struct) links anyway; this check catches those: every
`#include "<folder>/..."` of a file in storage/, net/, bench/ or src/<layer>/
must name a layer of that file's LINK list, or src/common (headers shared by
all). bench/'s in-process storage benchmarks, built apart from the load
generator (the Makefile's filter-out), use storage/ as well.

    tests/check_layers.py            (from the project's root; make test runs it)
"""
import glob
import re
import sys

makefile = open("Makefile").read()
links = {m.group(1): set(m.group(2).split())
         for m in re.finditer(r"^LINK_(\w+)\s*:=\s*(.*)$", makefile, re.M)}
storage_benches = set(re.search(r"BENCH_SRCS\s*:=\s*\$\(filter-out ([^,]*),", makefile)
                      .group(1).split())


def layer_of(path):
    parts = path.split("/")
    if parts[0] == "src" and len(parts) > 2:
        return parts[1]
    if parts[0] in ("storage", "net", "bench"):
        return parts[0]
    return None


problems = []
files = sorted(glob.glob("src/*/*.cc") + glob.glob("src/*/*.h") + glob.glob("storage/*.[ch]*") +
               glob.glob("net/*.[ch]*") + glob.glob("bench/*.[ch]*"))
for f in files:
    layer = layer_of(f)
    if layer not in links:
        continue
    allowed = links[layer] | {"common"}
    if layer == "bench" and (f in storage_benches or f == "bench/storage_bench_util.h"):
        allowed = allowed | {"storage"}
    for n, line in enumerate(open(f), 1):
        m = re.match(r'\s*#\s*include\s+"([^"]+)"', line)
        if not m:
            continue
        used = layer_of(m.group(1))
        if used is not None and used not in allowed:
            problems.append(f"{f}:{n}: layer {layer} includes {m.group(1)} "
                            f"(layer {used} is not in LINK_{layer})")

for p in problems:
    print(p)
bad_files = len({p.split(":")[0] for p in problems})
print(f"[check] {len(files) - bad_files} passed, {bad_files} failed (files whose includes "
      "stay on their floor)")
sys.exit(1 if problems else 0)
