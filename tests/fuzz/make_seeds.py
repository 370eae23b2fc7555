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


def fdp_string(s):
    """s as FuzzedDataProvider::ConsumeRandomLengthString reads it from the front."""
    return s.replace(b"\\", b"\\\\") + b"\\;"


def hint_entry(lsn, offset, key, vlen=0, flags=0, expiry=None):
    e = struct.pack("<QQIBI", lsn, offset, vlen, flags, len(key)) + key
    return e + (struct.pack("<Q", expiry) if expiry is not None else b"")


def hint_seed(mode, damage_tail=b"", forged=False):
    """An input of hint_fuzz: its records (ops and strings), then what mode does to the hint.
    Numbers come from the end (last byte first), strings from the front."""
    history = 0x0123456789abcdef
    ops = [  # (op byte, strings it consumes, hint entry fields)
        (0 | 1 << 3, [b"hello"]),                 # put k1
        (3 | 2 << 3, [b"v2"]),                    # put k2 with an expiry
        (2 | 1 << 3, []),                         # delete k1
        (4 | 2 << 3, []),                         # gap record, 2 LSNs skipped
        (0 | 3 << 3 | 0x80, [b"g1"]),             # an atomic group: k3 ...
        (0 | 4 << 3, [b"g2"]),                    # ... and k4
        (0x40, [b"custom", b"x"]),                # put of a key of its own
    ]
    front, tail, entries, lsn, off = b"", [mode, len(ops) - 1], b"", 0, 0
    for op, strings in ops:
        tail.append(op)
        front += b"".join(fdp_string(x) for x in strings)
        kind = (op & 7) % 5
        if kind == 4:
            prev, lsn = lsn, lsn + 1 + ((op >> 3) & 3)
            entries += hint_entry(lsn, off, struct.pack("<QQ", prev, history), 0, 2)
            off += 21 + 16
            continue
        lsn += 1
        key = strings[0] if op & 0x40 else b"k%d" % ((op >> 3) & 7)
        value = b"" if kind == 2 else strings[-1]
        expiry = 4102444800000 + (op & 7) if kind == 3 else None
        vlen = len(value) + (8 if expiry else 0)
        flags = (1 if kind == 2 else 0) | (4 if expiry else 0)
        entries += hint_entry(lsn, off, key, vlen, flags, expiry)
        off += 21 + len(key) + vlen
    if forged:  # mode 3: the entry count, "the right segment size", then the body
        tail += [len(ops), 0]
        front += entries
    return front + damage_tail + bytes(reversed(tail))


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

    # hint_fuzz: the mode is the last byte (0 as written, 1 bytes overwritten, 2 cut and
    # appended, 3 forged under a right trailer).
    write("hint_fuzz", "as_written", hint_seed(0))
    write("hint_fuzz", "overwritten", hint_seed(1, damage_tail=bytes(reversed([2, 17, 0x5a, 40, 0x01]))))
    write("hint_fuzz", "cut", hint_seed(2, damage_tail=bytes(reversed([90]))))
    write("hint_fuzz", "forged_true", hint_seed(3, forged=True))

    # client_json_fuzz: the first byte is the number of batch results expected.
    cluster = (b'{"slots":16384,"epoch":7,"self":{"shard":"A"},"shards":['
               b'{"name":"A","idx":0,"slots":[[0,8191]],"primary":{"address":"10.0.0.1:80",'
               b'"reachable":true},"replicas":[{"address":"10.0.0.11:80","reachable":false}]},'
               b'{"name":"B","idx":1,"slots":[[8192,16383]],"primary":{"address":"10.0.0.2:80",'
               b'"reachable":true},"replicas":[]}],"migrations":[{"id":3,"slots":[0,10],'
               b'"source":"A","target":"B","state":"copying"}]}')
    write("client_json_fuzz", "cluster", b"\x00" + cluster)
    write("client_json_fuzz", "scan", b"\x00" + b'{"keys":["a",{"base64":"/w=="}],'
          b'"values":["1",{"base64":"AAE="}],"cursor":"c2:17"}\n')
    write("client_json_fuzz", "scan_end", b"\x00" + b'{"keys":[],"cursor":""}\n')
    write("client_json_fuzz", "mget", b"\x03" + b'{"results":[{"key":"a","status":200,'
          b'"value":"1","etag":"\\"12\\""},{"key":"b","status":404,"error":"not_found"},'
          b'{"key":{"base64":"/w=="},"status":200,"value":{"base64":"AAE="},'
          b'"etag":"\\"9\\""}]}\n')
    write("client_json_fuzz", "mput", b"\x02" + b'{"results":[{"key":"a","status":201,'
          b'"etag":"\\"13\\""},{"key":"b","status":200,"etag":"\\"14\\""}]}\n')
    write("client_json_fuzz", "error", b"\x01" + b'{"error":"shard_unavailable","message":'
          b'"shard A at 10.0.0.1:80 refused the connection"}')

    # api_fuzz: the first byte is the parser plus 6 times a variant (for batch bodies the
    # Content-Type: 0 JSON, 1 text/plain, 2 NDJSON, 6 none), the second the node's limits
    # (max_key_bytes index in the low nibble; 0x0d: 4096 bytes and 16 MiB values) or the
    # number of results a batch answer must have.
    def api(name, mode, text, limits=0x0D, variant=0):
        write("api_fuzz", name, bytes([mode + 6 * variant, limits]) + text)

    requests = {
        "get": b"GET /kv/user%3A42\nHost: 127.0.0.1:8080\n\n",
        "put_ttl": b"PUT /kv/a%20b%2Fc?ttl=60\nContent-Length: 5\n\nhello",
        "put_if_match": b'PUT /kv/k\nIf-Match: "42"\nX-Distkv-TTL: 30\n\nv',
        "put_create": b"PUT /kv/k?ack=replica\nIf-None-Match: *\n\nnew",
        "get_etags": b'GET /kv/k?read=replica\nIf-None-Match: "7", W/"8"\n\n',
        "delete_binary": b"DELETE /kv/%00%FF\n\n",
        "head": b"HEAD /kv/k\n\n",
        "seed_set": b"GET /set?key=a+b&value=x%26y&ttl=5\n\n",
        "seed_store": b"POST /store?key=k\n\nfrom body",
        "seed_get": b"GET /get?key=k&read=replica\n\n",
        "seed_delete": b"POST /delete?key=k&ack=replica\n\n",
        "scan": b"GET /kv?prefix=user%3A&limit=10&values=true"
                b"&cursor=1-00000000000000ff-0123456789abcdef\n\n",
        "shard_scan": b"GET /internal/scan?hash=ff&limit=5&values=1&shard=A&prefix=u\n\n",
        "mget": b'POST /kv/_mget\nContent-Type: application/json\n\n["a",{"base64":"/w=="}]',
        "mget_lines": b"POST /kv/_mget\n\nuser:1\nuser:2\n",
        "mput_ndjson": b"POST /kv/_mput\nContent-Type: application/x-ndjson\n\n"
                       b'{"key":"a","value":"1"}\n{"key":{"base64":"AAE="},"value":{"base64":"/w=="}}\n',
        "mput_object": b'POST /kv/_mput\n\n{"user:1":"Ada","user:2":"Grace"}',
        "put_key_mget": b"POST /kv/%5Fmget\n\nvalue",
        "mget_ttl": b"POST /kv/_mget?ttl=5\n\na",
        "health": b"GET /health\n\n",
        "compact": b"POST /admin/compact\n\n",
        "no_endpoint": b"GET /nowhere\n\n",
        "bad_escape": b"GET /kv/a%zz\n\n",
        "ttl_too_long": b"PUT /kv/k?ttl=99999999999999\n\nv",
        "duplicate_param": b"GET /get?key=a&key=b\n\n",
    }
    for name, text in requests.items():
        api("request_" + name, 0, text)
    api("request_key_over_limit", 0, b"GET /kv/abcde\n\n", limits=0x03)   # max_key_bytes 4
    api("request_value_over_limit", 0, b"PUT /kv/k\n\nvv", limits=0x2D)  # max_value_bytes 1

    api("mget_json", 1, b'["user:1","user:2",{"base64":"/w=="}]')
    api("mget_text", 1, b"user:1\nuser:2\r\n\nuser:3", variant=1)
    api("mget_untyped_lines", 1, b"a\nb\n", variant=6)
    api("mget_untyped_json", 1, b' ["a","b"]', variant=6)
    api("mget_text_bracket", 1, b"[not json\n", variant=1)
    api("mget_key_over_limit", 1, b'["abc"]', limits=0x01)
    api("mput_object", 2, b'{"user:1":"Ada","user:2":{"base64":"AAE="}}')
    api("mput_ndjson", 2, b'{"key":"a","value":"1"}\n\n{"key":{"base64":"/w=="},"value":""}\r\n',
        variant=2)
    api("mput_ndjson_charset", 2, b'{"key":"a","value":"1"}\n', variant=4)
    api("mput_untyped", 2, b'{"k":"v"}', variant=6)
    api("mput_bad_line", 2, b'{"key":"a"}\n', variant=2)

    api("answer_mget", 3, b'{"results":[{"key":"a","status":200,"value":"1","etag":"\\"12\\""},'
        b'{"key":"b","status":404,"error":"not_found"},{"key":{"base64":"/w=="},"status":200,'
        b'"value":{"base64":"AAE="},"etag":"\\"9\\""}]}\n', limits=3)
    api("answer_mput", 3, b'{"results":[{"key":"a","status":201,"etag":"\\"13\\""},'
        b'{"key":"b","status":200,"etag":"\\"14\\""}]}\n', limits=2)
    api("answer_unavailable", 3, b'{"results":[{"key":"a","status":503,"error":"migrating"}]}',
        limits=1)
    api("answer_empty", 3, b'{"results":[]}', limits=0)

    api("scan_query", 4, b"cursor=1-00000000000000ff-0123456789abcdef&limit=10&prefix=a&values=1")
    api("scan_cursor", 4, b"2-FFFFFFFFFFFFFFFF-0000000000000000")
    api("scan_shard_query", 4, b"hash=ff&limit=5&values=1&shard=A&prefix=u%2Fv")
    api("scan_bad_limit", 4, b"limit=10001")

    def page(nxt, end, entries):
        out = b"%x %d %d\n" % (nxt, end, len(entries))
        for key, value, lsn in entries:
            out += b"%d %d %d\n" % (len(key), len(value), lsn) + key + value
        return out

    api("page", 5, page(0x1234, 0, [(b"k\x00\n1", b"v \n\x00", 7), (b"plain", b"", 9)]))
    api("page_end", 5, page(0, 1, []))
    api("page_truncated", 5, page(0xff, 0, [(b"key", b"value", 3)])[:-1])


if __name__ == "__main__":
    main()
