#!/usr/bin/env bash
# The API, sharding, replication and auth cluster tests again, with TLS on
# everywhere (DISTKV_TEST_TLS=1: see tests/cluster/test_tls.h): clients,
# forwarding and replication all over HTTPS. Tests that write raw bytes on a
# plain socket (pipelining by hand, HTTP/1.0, chunked bodies) are left out.
# The binary is $CLUSTER_TESTS_BIN (make test sets it).
exec env DISTKV_TEST_TLS=1 "${CLUSTER_TESTS_BIN:?set CLUSTER_TESTS_BIN}" \
  -tc="node:*,sharding:*,replication:*,auth:*" \
  -tce="*body-less*,*chunked*,*HTTP/1.0*,*pipelined GETs*" "$@"
