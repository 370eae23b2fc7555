#!/usr/bin/env bash
# `make load-test`: distkv-bench against the example cluster of sharding.toml.
#
# If the cluster is not up (its first primary does not answer /health), it is
# started with scripts/cluster.sh and left running afterwards (`make stop`).
# One distkv-bench run then writes the whole key space (--preload) and drives
# LOAD_SECONDS of a 90:10 GET:PUT mix over random keys of every shard, with
# --verify: each read must return the value of the key's latest write. The
# summary ends with the exact command; the exit status is non-zero on any
# verification mismatch.
#
# Knobs (environment): CONFIG, LOAD_SECONDS (20), LOAD_KEYS (100000),
# LOAD_CONNECTIONS (50), LOAD_PIPELINE (1), LOAD_VALUE_BYTES (100), LOAD_JSON,
# LOAD_ARGS (more distkv-bench flags: "--tls --ca ca.crt" for a cluster with
# [tls]; a token for [auth] goes in DISTKV_TOKEN, which distkv-bench reads).
set -euo pipefail
cd "$(dirname "$0")/.."
CONFIG=${CONFIG:-sharding.toml}
BENCH=${DISTKV_BENCH_BIN:-build/distkv-bench}
SECONDS_RUN=${LOAD_SECONDS:-20}
KEYS=${LOAD_KEYS:-100000}
CONNS=${LOAD_CONNECTIONS:-50}
PIPELINE=${LOAD_PIPELINE:-1}
VALUE_BYTES=${LOAD_VALUE_BYTES:-100}

# The first shard's primary: `address = "host:port"` of the first [[shards]].
probe=$(awk -F'"' '/^[[:space:]]*address[[:space:]]*=/ {print $2; exit}' "$CONFIG")
probe=${probe:-127.0.0.2:8080}

scheme=http
[[ " ${LOAD_ARGS:-} " == *" --tls "* ]] && scheme=https
# /health needs no token; the probe only asks whether something answers.
if ! curl -kfsS -o /dev/null --max-time 1 "$scheme://$probe/health" 2>/dev/null; then
  echo "no cluster answers at $probe: starting it (scripts/cluster.sh start $CONFIG)"
  scripts/cluster.sh start "$CONFIG"
  echo "(the cluster keeps running after this test: \`make stop\` stops it)"
  echo
fi

args=(--config "$CONFIG" --preload --keys "$KEYS" --duration "$SECONDS_RUN" --ratio 90:10
      --connections "$CONNS" --pipeline "$PIPELINE" --value-bytes "$VALUE_BYTES" --verify)
[ -n "${LOAD_JSON:-}" ] && args+=(--json "$LOAD_JSON")
# shellcheck disable=SC2206 # LOAD_ARGS is a list of flags
[ -n "${LOAD_ARGS:-}" ] && args+=(${LOAD_ARGS})

set +e
"$BENCH" "${args[@]}"
status=$?
set -e
if [ $status -ne 0 ]; then
  echo "load test FAILED (distkv-bench exit status $status)" >&2
fi
exit $status
