// SegmentReader; see segment_reader.h.
#include "storage/segment_reader.h"

#include <algorithm>

#include "storage/file_util.h"

namespace distkv::storage {

SegmentReader::SegmentReader(int fd, std::string_view name, uint64_t offset, uint64_t limit,
                             size_t read_bytes)
    : fd_(fd), name_(name), limit_(limit), read_bytes_(read_bytes), buf_offset_(offset) {}

// Keeps the unconsumed bytes and reads more after them: at least read_bytes_,
// and at least as many again as are buffered, so a record larger than the
// buffer is completed in a few doubling reads.
Status SegmentReader::Fill() {
  buf_.erase(0, pos_);
  buf_offset_ += pos_;
  pos_ = 0;
  const uint64_t file_pos = buf_offset_ + buf_.size();
  const uint64_t want = std::min<uint64_t>(std::max(read_bytes_, buf_.size()), limit_ - file_pos);
  const size_t old = buf_.size();
  buf_.resize(old + want);
  size_t got;
  Status s = PreadSome(fd_, buf_.data() + old, want, file_pos, &got, name_);
  buf_.resize(old + (s.ok() ? got : 0));
  if (s.ok() && got < want) {
    // The file is shorter than the caller believed: treat its end as the limit.
    limit_ = file_pos + got;
  }
  return s;
}

Status SegmentReader::Next(Record* rec, std::string_view* raw, uint64_t* rec_offset) {
  for (;;) {
    std::string_view avail(buf_.data() + pos_, buf_.size() - pos_);
    size_t consumed;
    Status s = DecodeRecord(avail, rec, &consumed);
    if (s.ok()) {
      *raw = avail.substr(0, consumed);
      *rec_offset = offset();
      pos_ += consumed;
      return s;
    }
    if (!s.IsIncomplete()) return s;
    if (buf_offset_ + buf_.size() >= limit_) {
      return avail.empty() ? Status::NotFound() : s;
    }
    s = Fill();
    if (!s.ok()) return s;
  }
}

}  // namespace distkv::storage
