#!/usr/bin/env bash
# Runs the libFuzzer targets.
#   run.sh regress DIR TARGET...   replays tests/fuzz/corpus/TARGET once with DIR/TARGET
#   run.sh fuzz DIR TARGET...      fuzzes each target for FUZZ_SECONDS (default 60)
#   run.sh                         regress, every target in build-fuzz/fuzz
# Ends with "[check] N passed, N failed" (one check per target), which
# tests/run.sh counts.
set -u
mode=${1:-regress}; dir=${2:-build-fuzz/fuzz}; shift 2 2>/dev/null || shift $#
[ $# -gt 0 ] || set -- $(cd "$dir" && ls)
here=$(cd "$(dirname "$0")" && pwd)
work=$(dirname "$dir")
passed=0; failed=0
for t in "$@"; do
  seeds="$here/corpus/$t"
  mkdir -p "$seeds"
  if [ "$mode" = regress ]; then
    log=$(mktemp)
    if "$dir/$t" -runs=0 -artifact_prefix="$work/" "$seeds" >"$log" 2>&1; then
      echo "fuzz regression $t: $(find "$seeds" -type f | wc -l) inputs ok"
      passed=$((passed + 1))
    else
      tail -n 40 "$log"; echo "fuzz regression $t: FAILED"
      failed=$((failed + 1))
    fi
    rm -f "$log"
  else
    mkdir -p "$work/corpus/$t" "$work/crashes/$t"
    echo "fuzzing $t for ${FUZZ_SECONDS:-60} s"
    if "$dir/$t" -max_total_time="${FUZZ_SECONDS:-60}" -print_final_stats=1 -timeout=10 \
         -rss_limit_mb=2048 -artifact_prefix="$work/crashes/$t/" \
         "$work/corpus/$t" "$seeds" 2>&1 | tee "$work/$t.log" | grep -E '^#[0-9]+.*(DONE|pulse)|^stat::|ERROR'; \
       [ "${PIPESTATUS[0]}" -eq 0 ]; then
      passed=$((passed + 1))
    else
      echo "fuzz $t: crash; input in $work/crashes/$t/ (log $work/$t.log)"
      failed=$((failed + 1))
    fi
  fi
done
echo "[check] $passed passed, $failed failed"
[ "$failed" -eq 0 ]
