"""The records a node cut from its log (tests/chaos/chaos.py).

A node whose log went further than its new primary's history cuts the
records after the fork into <data>/lost/epoch-<E>-after-lsn-<N>.log, in the
log's record format (storage/record_format.h): every integer little-endian,

    crc u32 | lsn u64 | type u8 | klen u32 | vlen u32 | key | value

type 1 is a put (bit 0x80: the group continues; bit 0x40: the value begins
with an 8-byte expiry), 2 a delete, 3 a gap. Those writes never became part
of the shard's history, so no read may ever show one.
"""
import glob
import os
import struct

HEADER = struct.Struct("<IQBII")
PUT, EXPIRES = 1, 0x40


def cut_puts(data_dir):
    """{(key, value, lsn)} of the puts in data_dir/lost/*.log."""
    out = set()
    for path in sorted(glob.glob(os.path.join(data_dir, "lost", "*.log"))):
        with open(path, "rb") as f:
            data = f.read()
        at = 0
        while at + HEADER.size <= len(data):
            _, lsn, kind, klen, vlen = HEADER.unpack_from(data, at)
            body = at + HEADER.size
            if body + klen + vlen > len(data):
                break  # a file cut short by a crash during the cut
            key = data[body:body + klen].decode(errors="replace")
            value = data[body + klen:body + klen + vlen]
            if kind & 0x1F == PUT:
                if kind & EXPIRES:
                    value = value[8:]
                out.add((key, value.decode(errors="replace"), lsn))
            at = body + klen + vlen
    return out
