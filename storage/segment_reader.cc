// SegmentReader; see segment_reader.h.
#include "storage/segment_reader.h"

#include <algorithm>

#include "storage/coding.h"
#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace distkv::storage {

SegmentReader::SegmentReader(Io* io, int fd, std::string_view name, uint64_t offset, uint64_t limit,
                             size_t read_bytes, bool skip_large_values)
    : io_(io),
      fd_(fd),
      name_(name),
      limit_(limit),
      read_bytes_(read_bytes),
      skip_large_values_(skip_large_values),
      buf_offset_(offset) {}

// Keeps the unconsumed bytes and reads more after them: at least read_bytes_,
// and at least enough to hold `need` unconsumed bytes, never past limit_.
Status SegmentReader::Fill(size_t need) {
  buf_.erase(0, pos_);
  buf_offset_ += pos_;
  pos_ = 0;
  const uint64_t file_pos = buf_offset_ + buf_.size();
  const uint64_t wanted =
      std::max<uint64_t>(read_bytes_, need > buf_.size() ? need - buf_.size() : 0);
  const uint64_t want = std::min<uint64_t>(wanted, limit_ - file_pos);
  const size_t old = buf_.size();
  buf_.resize(old + want);
  size_t got;
  Status s = PreadSome(io_, fd_, buf_.data() + old, want, file_pos, &got, name_);
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
    if (avail.size() >= kRecordHeaderBytes) {
      uint64_t total;
      Status h = CheckRecordHeader(avail, &total);
      if (!h.ok()) return h;
      if (total > limit_ - offset()) return Status::Incomplete("record runs past the end");
      if (avail.size() < total && skip_large_values_ && total > read_bytes_) {
        return NextStreamed(total, rec, raw, rec_offset);
      }
      if (avail.size() >= total) {
        size_t consumed;
        Status s = DecodeRecord(avail, rec, &consumed);
        if (!s.ok()) return s;
        *raw = avail.substr(0, consumed);
        *rec_offset = offset();
        pos_ += consumed;
        value_bytes_ = consumed - kRecordHeaderBytes - rec->key.size();  // expiry included
        record_bytes_ = consumed;
        return s;
      }
      Status s = Fill(total);
      if (!s.ok()) return s;
      continue;
    }
    if (buf_offset_ + buf_.size() >= limit_) {
      return avail.empty() ? Status::NotFound() : Status::Incomplete("record header");
    }
    Status s = Fill(kRecordHeaderBytes);
    if (!s.ok()) return s;
  }
}

// A record too large to hold: check its CRC piece by piece and return its
// header and key only.
Status SegmentReader::NextStreamed(uint64_t total, Record* rec, std::string_view* raw,
                                   uint64_t* rec_offset) {
  const uint64_t start = offset();
  std::string_view avail(buf_.data() + pos_, buf_.size() - pos_);
  const uint32_t klen = DecodeFixed32(avail.data() + 13);
  bool has_expiry;
  DecodeTypeByte(static_cast<uint8_t>(avail[12]), rec, &has_expiry);
  // The head kept is the header, the key and the expiry, if any.
  const size_t head = kRecordHeaderBytes + klen + (has_expiry ? kExpiryBytes : 0);
  if (avail.size() < head) {
    Status s = Fill(head);
    if (!s.ok()) return s;
    if (buf_.size() - pos_ < head) return Status::Incomplete("record key");
    avail = std::string_view(buf_.data() + pos_, buf_.size() - pos_);
  }
  uint32_t crc = crc32c::Extend(0, avail.data() + 4, head - 4);
  std::string piece;
  for (uint64_t off = start + head; off < start + total;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(read_bytes_, start + total - off));
    piece.resize(n);
    size_t got;
    Status s = PreadSome(io_, fd_, piece.data(), n, off, &got, name_);
    if (!s.ok()) return s;
    if (got < n) return Status::Incomplete("record body");
    crc = crc32c::Extend(crc, piece.data(), n);
    off += n;
  }
  if (crc != DecodeFixed32(avail.data())) return Status::Corruption("CRC mismatch");
  head_.assign(avail.data(), head);  // the buffer is dropped below
  rec->lsn = DecodeFixed64(head_.data() + 4);
  rec->key = std::string_view(head_).substr(kRecordHeaderBytes, klen);
  rec->value = std::string_view();
  rec->expires_ms = has_expiry ? DecodeFixed64(head_.data() + kRecordHeaderBytes + klen) : 0;
  if (has_expiry && rec->expires_ms == 0) return Status::Corruption("expiry of 0");
  *raw = head_;
  *rec_offset = start;
  value_bytes_ = total - kRecordHeaderBytes - klen;  // the stored value: expiry included
  record_bytes_ = total;
  // Skip the record: drop the buffer and continue after it.
  buf_.clear();
  pos_ = 0;
  buf_offset_ = start + total;
  return Status::OK();
}

}  // namespace distkv::storage
