// The on-disk and on-the-wire format of a log record, described once.
//
// A record is a self-checking, self-delimiting byte string. Every multi-byte
// integer is little-endian:
//
//   offset  size  field
//   0       4     crc     CRC-32C (Castagnoli) of bytes [4, 21 + klen + vlen)
//   4       8     lsn     log sequence number, >= 1, strictly increasing per shard
//   12      1     type    1 = put, 2 = delete (a tombstone), 3 = gap; bit 0x80
//                         set on a put or delete: "group continues" (see
//                         Atomic groups below); bit 0x40 set on a put: the
//                         value begins with an expiry (see Expiry below);
//                         bit 0x20 on any record: "write continues" (see
//                         Writes below)
//   13      4     klen    key length, 1 .. 65536 (0 for a gap)
//   17      4     vlen    value length, 0 .. 2^32 - 1 (0 for a delete, 16 for a gap)
//   21      klen  key
//   21+klen vlen  value
//
// A gap record says that no record has an LSN between its previous LSN and
// its own: its value is the previous LSN (u64) and the id of the history the
// log continues in (u64). LSNs are otherwise dense: every record's LSN is the
// one before plus 1. The store writes a gap record before the first write
// after LSNs were burned (a batch that failed, a crash that may have handed
// out LSNs it lost, a new history), so that an LSN is never used twice and a
// missing record is still detectable.
//
// The same bytes are written to segment files, scanned by recovery, read by a
// LogCursor and sent to replicas, which decode them with DecodeRecord() and so
// check the same CRC. A record never changes once encoded: compaction copies
// live records verbatim, keeping their LSN.
//
// Atomic groups. A group of records that must survive a crash all or none
// (one _mput to one shard) is written back to back in one segment, every
// record but the last with bit 0x80 of its type set. Recovery holds the
// records of a group until it reads the group's last record (bit clear) and
// only then applies them; if the newest segment ends inside a group (a torn
// batch), the group is dropped and the file cut back to its first record.
// A sealed segment is complete by construction, so there a record with the
// bit set is applied like any other (compaction, which copies live records
// alone, needs no care). Records without the bit, i.e. every record written
// before groups existed, are groups of one: the format change is one bit
// that older logs never set.
//
// Writes. The bytes one group commit puts into a segment (one write call)
// are marked: every record but the last has bit 0x20 of its type set. The
// store sets the bit when it hands the batch to its writer (a replica marks
// its own batches, whatever the primary's were), changing the CRC by the
// bit's known contribution instead of computing it again (crc32c::XorDelta).
// The bit means nothing to a reader; recovery uses it to tell the trace of a
// crash from damage in the newest segment, whose file is pre-allocated (zero
// bytes written and synced ahead of the writer) when fsync = "always": a
// write into such a file changes no metadata, so its fdatasync skips the
// journal commit an append needs, but its pages may reach the disk in any
// order, leaving a hole of zeros with valid records after it. Valid records
// after a bad one are still damage when one of them ends a write (bit 0x20
// clear) and another follows it: only the last write can have been cut by a
// crash. So damage confined to the last write of the newest segment reads as
// a torn write, as damage in its last record always did. Records written
// before the bit existed have it clear (each is its own write), which keeps
// the check as strict as it was for old logs.
//
// Expiry. A put whose key expires (PUT ?ttl=) has bit 0x40 of its type set,
// and its stored value is the expiry time, u64 milliseconds since the Unix
// epoch, followed by the user's value (so vlen counts those 8 bytes too).
// Which clock decides that the time has come is the store owner's business
// (the shard's primary, storage/store.h); the record only carries the time,
// so a restart and a replica know it. Records without the bit never expire:
// every record written before expiry existed reads as before, and the
// format needs no version.
//
// Segment files. A shard's directory holds:
//   LOCK               flock(2)ed by the one Store that has the directory open
//   MANIFEST           what recovery must not guess; see storage/manifest.h
//   <id>.seg.<offset>.corrupt  bytes --repair cut from segment <id> at <offset>
//   <id>.seg           a segment: records back to back, nothing else (the
//                      active one may end in zero bytes: its pre-allocated
//                      space, cut when it is sealed or the store opens); <id>
//                      is a decimal number, zero-padded to 12 digits
//   <id>.hint          (compaction) the index of segment <id>, where one exists
//   *.tmp              work in progress; deleted at open
// The segment with the highest id is the active one: it alone is appended to
// and it alone may end in a torn record after a crash. A segment file is
// created only after the previous one was written in full and synced, so a
// segment that is not the newest is always complete ("sealed").
// Which record of a key wins is decided by LSN alone, never by file order:
// recovery keeps, for each key, the record with the highest LSN in any file,
// tombstones included. Compaction therefore may give its output any unused id
// below the active segment's (or allocate one and roll the active segment past
// it) without a format change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "storage/status.h"

namespace distkv::storage {

enum class RecordType : uint8_t { kPut = 1, kDelete = 2, kGap = 3 };
inline constexpr size_t kGapValueBytes = 16;

inline constexpr size_t kRecordHeaderBytes = 21;
inline constexpr size_t kMaxKeyBytes = 64 * 1024;
inline constexpr uint64_t kMaxValueBytes = 0xFFFFFFFFull;

inline constexpr uint8_t kGroupContinuesBit = 0x80;
inline constexpr uint8_t kExpiresBit = 0x40;
inline constexpr uint8_t kWriteContinuesBit = 0x20;
inline constexpr uint8_t kTypeMask = 0x1F;
inline constexpr size_t kExpiryBytes = 8;

// A decoded record. key and value point into the buffer it was decoded from.
struct Record {
  uint64_t lsn = 0;
  RecordType type = RecordType::kPut;
  std::string_view key;
  std::string_view value;
  bool group_continues = false;  // another record of its atomic group follows
  bool write_continues = false;  // another record of the same write follows
  // A put's expiry (Unix ms; 0: none). value is the user's value, without the
  // expiry field that precedes it on disk.
  uint64_t expires_ms = 0;
};

inline constexpr uint64_t EncodedRecordSize(size_t key_bytes, uint64_t value_bytes) {
  return kRecordHeaderBytes + key_bytes + value_bytes;
}
// The bytes the value field takes on disk (vlen): the value and its expiry.
inline constexpr uint64_t StoredValueBytes(uint64_t value_bytes, uint64_t expires_ms) {
  return value_bytes + (expires_ms != 0 ? kExpiryBytes : 0);
}
inline uint64_t EncodedRecordSize(const Record& r) {
  return EncodedRecordSize(r.key.size(), StoredValueBytes(r.value.size(), r.expires_ms));
}

// Appends the encoding of r to *out. The caller has checked the limits above.
void EncodeRecord(const Record& r, std::string* out);

// The value of a gap record, and its fields.
std::string EncodeGapValue(uint64_t prev_lsn, uint64_t history_id);
void DecodeGapValue(std::string_view value, uint64_t* prev_lsn, uint64_t* history_id);

// Sets or clears bit 0x20 of the encoded record at `record` (total bytes,
// a valid CRC) and updates its CRC to match.
void SetWriteContinues(char* record, uint64_t total, bool on);

// Sets rec's type, group_continues and whether an expiry follows from the
// type byte (offset 12) of an encoded record.
void DecodeTypeByte(uint8_t byte, Record* rec, bool* has_expiry);

// Checks the header at the start of buf (at least kRecordHeaderBytes) without
// the CRC. OK with *total the record's encoded size, or Corruption.
Status CheckRecordHeader(std::string_view buf, uint64_t* total);

// Decodes the record at the start of buf and checks its CRC.
//   OK          *out is the record (viewing buf), *consumed its encoded size
//   Incomplete  buf ends inside the record: decode again with more bytes
//   Corruption  the bytes are not a valid record (bad header field or CRC)
Status DecodeRecord(std::string_view buf, Record* out, size_t* consumed);

// Segment file names (see above).
std::string SegmentFileName(uint64_t id);
// True, with *id, if name is a segment file name.
bool ParseSegmentFileName(std::string_view name, uint64_t* id);

}  // namespace distkv::storage
