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
#include <memory>
#include <string>
#include <string_view>

#include "storage/coding.h"
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

// A hint file read whole into memory and checked once, whose entries can
// then be walked as often as the caller needs without reading or checking
// anything again (recovery walks them twice: once to check that the LSNs
// follow each other before anything is applied, once to apply them).
//
// The buffer is kept from one Read to the next: recovery reads one file
// after another of about the same size into the same pages, instead of
// having the kernel fault in and zero fresh ones for each.
class HintFile {
 public:
  // Reads the hint file at path and checks the whole file's CRC, that it
  // describes a segment of segment_size bytes, and every entry (see the
  // top of this file). NotFound if there is no file; Corruption (with the
  // reason) if it cannot be trusted, and then it holds no entries.
  Status Read(Io* io, const std::string& path, uint64_t segment_size);

  uint64_t entries() const { return entries_; }

  // Walks the entries of the file Read last accepted, in file order. Keys
  // view the file's buffer: valid until the next Read.
  class Cursor {
   public:
    explicit Cursor(const HintFile& f) : p_(f.data_.get()), end_(p_ + f.entry_bytes_) {}
    bool done() const { return p_ == end_; }
    // Decodes the entry at the cursor and moves past it. Read checked every
    // entry's bounds and flags, so nothing is checked here.
    void Next(HintEntry* e) {
      const uint8_t flags = static_cast<uint8_t>(p_[20]);
      const uint32_t klen = DecodeFixed32(p_ + 21);
      e->lsn = DecodeFixed64(p_);
      e->offset = DecodeFixed64(p_ + 8);
      e->value_len = DecodeFixed32(p_ + 16);
      e->tombstone = (flags & kTombstoneFlag) != 0;
      e->gap = (flags & kGapFlag) != 0;
      e->key = std::string_view(p_ + kEntryHeaderBytes, klen);
      p_ += kEntryHeaderBytes + klen;
      e->expires_ms = 0;
      if (flags & kExpiresFlag) {
        e->expires_ms = DecodeFixed64(p_);
        p_ += kExpiryBytes;
      }
    }

   private:
    const char* p_;
    const char* end_;
  };

  // The entry layout (top of this file), for the writer and the cursor.
  static constexpr size_t kEntryHeaderBytes = 8 + 8 + 4 + 1 + 4;
  static constexpr size_t kTrailerBytes = 8 + 8 + 4 + 4;
  static constexpr uint32_t kMagic = 0x31484B44;  // "DKH1"
  static constexpr uint8_t kTombstoneFlag = 1;
  static constexpr uint8_t kGapFlag = 2;
  static constexpr uint8_t kExpiresFlag = 4;

 private:
  Status Check(const std::string& path, uint64_t segment_size, uint64_t size);

  std::unique_ptr<char[]> data_;  // the whole file; capacity_ bytes
  size_t capacity_ = 0;
  size_t entry_bytes_ = 0;  // the entries: every byte before the trailer
  uint64_t entries_ = 0;
};

// Reads the hint file at path (HintFile::Read) and calls fn for each entry,
// in order; fn is called only once the whole file is known to be good, so a
// caller never has to undo part of a bad hint.
Status ReadHintFile(Io* io, const std::string& path, uint64_t segment_size,
                    const std::function<void(const HintEntry& e)>& fn);

// The entry count a hint file's trailer states, read without the rest of
// the file and without checking it: only a size for the key index before
// recovery loads the hints (HintFile::Read checks everything). False when the
// file has no trailer to read.
bool ReadHintEntryCount(Io* io, const std::string& path, uint64_t* entries);

}  // namespace distkv::storage
