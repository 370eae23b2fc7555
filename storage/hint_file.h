// Hint files: the index of one segment, so that recovery can rebuild the key
// index without reading the segment's values (the Bitcask hint file).
//
// A hint file "<id>.hint" sits beside "<id>.seg" and is written once the
// segment is complete: when the writer seals it, and for every segment a
// compaction produces. It holds one entry per record of the segment, in file
// order, then a trailer. Every integer is little-endian:
//
//   entry    u64 lsn | u64 offset (of the record in the segment) |
//            u32 value length | u8 flags (1 = tombstone, 2 = gap,
//            4 = expires) | u32 key length | key [| u64 expiry]
//
// A put with an expiry (record_format.h) has flag 4 and its expiry (Unix ms)
// after the key; its value length is the stored one (the expiry's 8 bytes
// included), as in the record. Entries of other records are as they were
// before expiry existed.
//
// A gap record (record_format.h) has no key; its entry carries the record's
// value (previous LSN and history id) in the key's place, so that recovery
// can check that the log's LSNs follow each other without reading the
// segment.
//   trailer  u64 segment size | u64 entry count | u32 magic "DKH1" |
//            u32 CRC-32C of every byte before it
//
// The trailer's segment size ties the hint to the exact segment it
// describes: a segment cut back by `--repair`, or any other change, no longer
// matches, and the hint is ignored. A hint file that is missing, short, of the
// wrong size or with a bad CRC is never an error: recovery scans the segment
// instead (and writes a fresh hint for it). The same goes for a hint whose CRC
// is right but whose entries no writer makes: unknown flags, a value length
// on a gap or tombstone, or records that do not lie back to back from offset
// 0 to the segment's end.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "storage/io.h"
#include "storage/record_format.h"
#include "storage/status.h"

namespace distkv::storage {

struct HintEntry {
  uint64_t lsn = 0;
  uint64_t offset = 0;
  uint32_t value_len = 0;
  bool tombstone = false;
  bool gap = false;         // a gap record: key holds its value
  uint64_t expires_ms = 0;  // a put's expiry (Unix ms; 0: none)
  std::string_view key;     // views the hint file's buffer
};

std::string HintFileName(uint64_t segment_id);

// Builds a hint file in memory, one record at a time, in file order.
class HintBuilder {
 public:
  void Add(const Record& r, uint64_t offset);
  size_t entries() const { return entries_; }
  // The whole file (entries and trailer) for a segment of segment_size bytes.
  std::string Finish(uint64_t segment_size) const;
  void Clear();

 private:
  std::string buf_;
  uint64_t entries_ = 0;
};

// Reads the hint file at path and calls fn for each entry, in order, after
// checking the whole file's CRC and that it describes a segment of
// segment_size bytes. NotFound if there is no file; Corruption (with the
// reason) if it cannot be trusted. fn is called only once the file is known
// to be good, so a caller never has to undo part of a bad hint. ahead, if
// given, is called with the key of the entry kHintLookahead entries past
// the one fn is about to get (nothing past the last): recovery prefetches
// that key's place in the index, so the cache misses of consecutive
// inserts overlap instead of following one another.
inline constexpr size_t kHintLookahead = 8;
Status ReadHintFile(Io* io, const std::string& path, uint64_t segment_size,
                    const std::function<void(const HintEntry& e)>& fn,
                    const std::function<void(std::string_view key)>& ahead = nullptr);

// The entry count a hint file's trailer states, read without the rest of
// the file and without checking it: only a size for the key index before
// recovery loads the hints (ReadHintFile checks everything). False when the
// file has no trailer to read.
bool ReadHintEntryCount(Io* io, const std::string& path, uint64_t* entries);

}  // namespace distkv::storage
