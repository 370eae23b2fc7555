// SegmentReader: reads a segment file front to back, one record at a time,
// through a buffer refilled with large preads. Used by recovery (which scans
// whole files) and by LogCursor (which reads the log for replication).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/record_format.h"
#include "storage/status.h"

namespace distkv::storage {

class SegmentReader {
 public:
  // Reads the records of fd in [offset, limit). name is for messages.
  SegmentReader(int fd, std::string_view name, uint64_t offset, uint64_t limit,
                size_t read_bytes = 1 << 20);

  // OK          *rec is the next record (valid until the next call), *raw its
  //             encoded bytes, *rec_offset where it starts
  // NotFound    clean end: limit reached on a record boundary
  // Incomplete  limit falls inside a record (a torn tail)
  // Corruption  a record fails its checks
  // IOError     a read failed
  // After a non-OK status, offset() is where the bad part begins.
  Status Next(Record* rec, std::string_view* raw, uint64_t* rec_offset);

  // File offset of the first byte not yet returned as part of a record.
  uint64_t offset() const { return buf_offset_ + pos_; }

 private:
  Status Fill();

  int fd_;
  std::string name_;
  uint64_t limit_;
  size_t read_bytes_;
  std::string buf_;
  uint64_t buf_offset_;  // file offset of buf_[0]
  size_t pos_ = 0;       // first unconsumed byte of buf_
};

}  // namespace distkv::storage
