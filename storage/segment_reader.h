// SegmentReader: reads a segment file front to back, one record at a time,
// through a buffer refilled with large preads. Used by recovery (which scans
// whole files) and by LogCursor (which reads the log for replication).
//
// Memory stays bounded by what the records really are: a header whose length
// runs past the end of the range is reported at once (Incomplete) without
// reading on, and with skip_large_values a record above the buffer size is
// checked by streaming its CRC in buffer-sized pieces instead of being held
// whole, so a damaged length field never makes a scan read the rest of a
// file into memory.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/io.h"
#include "storage/record_format.h"
#include "storage/status.h"

namespace distkv::storage {

class SegmentReader {
 public:
  // Reads the records of fd in [offset, limit). name is for messages.
  SegmentReader(Io* io, int fd, std::string_view name, uint64_t offset, uint64_t limit,
                size_t read_bytes = 1 << 20, bool skip_large_values = false);

  // OK          *rec is the next record (valid until the next call), *raw its
  //             encoded bytes, *rec_offset where it starts. For a record whose
  //             value was skipped (see above), rec->value and *raw end after
  //             the key; value_bytes() and record_bytes() give the sizes.
  // NotFound    clean end: limit reached on a record boundary
  // Incomplete  limit falls inside a record (a torn tail)
  // Corruption  a record fails its checks
  // IOError     a read failed
  // After a non-OK status, offset() is where the bad part begins.
  Status Next(Record* rec, std::string_view* raw, uint64_t* rec_offset);

  // File offset of the first byte not yet returned as part of a record.
  uint64_t offset() const { return buf_offset_ + pos_; }
  // Sizes of the record the last OK Next() returned.
  uint64_t value_bytes() const { return value_bytes_; }
  uint64_t record_bytes() const { return record_bytes_; }

 private:
  Status Fill(size_t need);
  Status NextStreamed(uint64_t total, Record* rec, std::string_view* raw, uint64_t* rec_offset);

  Io* io_;
  int fd_;
  std::string name_;
  uint64_t limit_;
  size_t read_bytes_;
  bool skip_large_values_;
  std::string buf_;
  std::string head_;     // header and key of a streamed record
  uint64_t buf_offset_;  // file offset of buf_[0]
  size_t pos_ = 0;       // first unconsumed byte of buf_
  uint64_t value_bytes_ = 0;
  uint64_t record_bytes_ = 0;
};

}  // namespace distkv::storage
