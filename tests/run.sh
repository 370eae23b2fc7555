#!/usr/bin/env bash
# Runs test binaries one after the other and closes with a single line
# "N passed, N failed" summed over all of them (the line CI reads), preceded
# by the names of the failed test cases, so that a failure in a long log is
# found from its last lines. A binary reports either doctest's summary or a
# line "[check] N passed, N failed" (the fuzz regression run, the chaos run).
# An argument may carry arguments of its own ("build/cluster-tests
# -tc=durability*"): it is split on spaces and not globbed.
# Exit status is non-zero when any test case failed or a binary crashed.
set -u -f
passed=0; failed=0; status=0; failures=()
for bin in "$@"; do
  out=$(mktemp)
  start=$SECONDS
  $bin 2>&1 | tee "$out"
  rc=${PIPESTATUS[0]}
  line=$(grep -E '^\[doctest\] test cases:|^\[check\] [0-9]+ passed' "$out" | tail -n 1)
  # doctest's console reporter prints "TEST CASE:  <name>" above each
  # failure (and above each MESSAGE, hence the check for an ERROR line).
  while IFS= read -r name; do
    failures+=("$bin: $name")
  done < <(awk '/^TEST CASE:/ { sub(/^TEST CASE:[ \t]+/, ""); name = $0 }
                / ERROR: / && name != "" { print name }' "$out" | sort -u)
  rm -f "$out"
  echo "[run] $bin: exit $rc in $((SECONDS - start)) s"
  if [ -z "$line" ]; then
    echo "$bin: exited $rc without a doctest summary (crash?)"
    failures+=("$bin: exited $rc without a summary")
    failed=$((failed + 1)); status=1; continue
  fi
  p=$(sed -E 's/.*[]|][[:space:]]*([0-9]+) passed.*/\1/' <<<"$line")
  f=$(sed -E 's/.*[|,][[:space:]]*([0-9]+) failed.*/\1/' <<<"$line")
  passed=$((passed + p)); failed=$((failed + f))
  if [ "$rc" -ne 0 ]; then
    status=1
    [ "$f" -gt 0 ] || failures+=("$bin: exited $rc")
  fi
done
for f in "${failures[@]+"${failures[@]}"}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
exit $status
