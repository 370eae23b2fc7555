#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into tests/fuzz/corpus/.

Seeds are small valid inputs (requests, records, segments, frames, configs)
from which the fuzzers mutate; rerun after a format change. Inputs the
fuzzers found (crashes, interesting cases) are added next to them by hand
and are not rewritten here.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def record(lsn, key, value=b"", delete=False):
    body = struct.pack("<QBII", lsn, 2 if delete else 1, len(key), len(value)) + key + value
    return struct.pack("<I", crc32c(body)) + body


def frame_records(lsn, stamp, records):
    payload = struct.pack("<QQ", lsn, stamp) + records
    return struct.pack("<BI", 1, len(payload)) + payload


def frame_heartbeat(lsn, clock):
    return struct.pack("<BI", 2, 16) + struct.pack("<QQ", lsn, clock)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    # HTTP: FuzzedDataProvider takes chunk sizes from the input's tail.
    reqs = {
        "get": b"GET /kv/a HTTP/1.1\r\nHost: x\r\n\r\n",
        "put": b"PUT /kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        "chunked": b"PUT /stream HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
                   b"3\r\nabc\r\n0\r\n\r\n",
        "pipelined": b"GET /defer HTTP/1.1\r\n\r\nGET /a HTTP/1.1\r\n\r\n"
                     b"HEAD /stream HTTP/1.1\r\n\r\nDELETE /close HTTP/1.1\r\nConnection: close\r\n\r\n",
        "http10": b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET / HTTP/1.0\r\n\r\n",
        "expect": b"PUT /a HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
        "bad": b"GET /a HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx",
    }
    for name, data in reqs.items():
        write("http_server_fuzz", name, data + b"\x07\x03\x11")

    recs = (record(1, b"a", b"1") + record(2, b"bb", b"x" * 40) + record(3, b"a", delete=True)
            + record(4, b"k" * 20, b"v"))
    # record_fuzz: the reader's buffer size comes from the last byte.
    write("record_fuzz", "records", recs + b"\x05")
    write("record_fuzz", "torn", recs[:-3] + b"\x40")
    write("record_fuzz", "one", record(7, b"key", b"value") + b"\x01")

    # segment_recovery_fuzz: segment count and split points from the tail.
    write("segment_recovery_fuzz", "one_segment", recs + b"\x00")
    seg2 = record(5, b"c", b"3") + record(6, b"bb", delete=True)
    write("segment_recovery_fuzz", "two_segments",
          recs + seg2 + struct.pack("<Q", len(recs)) + b"\x01")
    write("segment_recovery_fuzz", "torn_tail", recs + seg2[:-4] + b"\x00")

    write("frame_fuzz", "stream",
          frame_heartbeat(4, 1700000000000000) + frame_records(4, 1700000000000001, recs)
          + frame_heartbeat(4, 1700000000000002) + b"\x03\x05\x07\x01")
    write("frame_fuzz", "partial", frame_records(2, 0, recs[:30]) + b"\x02\x09")

    with open(os.path.join(HERE, "..", "..", "sharding.toml"), "rb") as f:
        write("config_fuzz", "sharding", f.read())
    write("config_fuzz", "full", b"""[cluster]
routing = "redirect"
forward_timeout_ms = 1000
[storage]
fsync = "everysec"
segment_bytes = 1048576
[limits]
max_key_bytes = 100
[server]
max_connections = 10
[replication]
min_acks = 1
ack_timeout_ms = 100

[[shards]]
name = "a"
idx = 0
address = "127.0.0.1:1"
replicas = ["127.0.0.1:2"]
slots = [[0, 100], [200, 16383]]

[[shards]]
name = "b"
idx = 1
address = "127.0.0.1:3"
replica = "127.0.0.1:4"
slots = [[101, 199]]
""")

    # manifest_fuzz: the flags byte is the last one (1: append the crc line).
    body = (b"distkv-manifest 1\nstate open always\nhigh_water 1000004\nlog_start 1\n"
            b"tombstone_horizon 0\nactive_segment 1 1\n"
            b"history 0123456789abcdef 1 0\n")
    write("manifest_fuzz", "open", body + b"crc %08x\n" % crc32c(body) + b"\x00")
    write("manifest_fuzz", "open_crc_appended", body + b"\x01")
    closed = (b"distkv-manifest 1\nstate closed\nhigh_water 4\nlog_start 1\n"
              b"tombstone_horizon 0\nactive_segment 1 1\n"
              b"history 0123456789abcdef 1 0\n")
    write("manifest_fuzz", "closed", closed + b"\x01")
    write("manifest_fuzz", "closed_no_segment", closed + b"\x03")
    full = (b"distkv-manifest 1\nstate open everysec\nhigh_water 2000000\nlog_start 3\n"
            b"tombstone_horizon 2\nactive_segment 7 900\n"
            b"history 00000000000000aa 1 0\nhistory 00000000000000bb 500 498\n"
            b"gap 499 499\ngap 700 710\ncompacted 5 3 400\ncompacted 6 401 899\n")
    write("manifest_fuzz", "full", full + b"\x01")


if __name__ == "__main__":
    main()
