// What follows a bad record of a segment; see bad_record.h.
#include "storage/bad_record.h"

#include <algorithm>
#include <string>

#include "storage/coding.h"
#include "storage/crc32c.h"
#include "storage/file_util.h"
#include "storage/record_format.h"

namespace distkv::storage {

namespace {

constexpr size_t kWindowBytes = 1 << 20;

// The part of the file after the bad record, read through one window of up
// to 1 MiB that is refilled only when a look falls outside it. The searches
// below walk forward over the same bytes (the zero check, the record search,
// one search per record of the last write), so each byte is read from the
// file about once, not once per record.
class Tail {
 public:
  Tail(Io* io, int fd, const std::string& name, uint64_t size)
      : io_(io), fd_(fd), name_(name), size_(size) {}
  uint64_t size() const { return size_; }
  const std::string& name() const { return name_; }

  // The bytes from off on that the window holds, refilled from off when it
  // holds fewer than min(want, size - off) of them (want <= kWindowBytes).
  // Shorter only where the file is shorter than size.
  Status At(uint64_t off, size_t want, std::string_view* out) {
    if (off >= size_) {
      *out = {};
      return Status::OK();
    }
    const uint64_t need = std::min<uint64_t>(want, size_ - off);
    if (off < buf_off_ || off + need > buf_off_ + buf_.size()) {
      buf_off_ = off;
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kWindowBytes, size_ - off));
      buf_.resize(n);
      size_t got = 0;
      Status s = PreadSome(io_, fd_, buf_.data(), n, off, &got, name_);
      buf_.resize(s.ok() ? got : 0);
      if (!s.ok()) return s;
    }
    *out = std::string_view(buf_).substr(static_cast<size_t>(off - buf_off_));
    return Status::OK();
  }

  // Like At, but exactly min(want, size - off) bytes or an error.
  Status Exact(uint64_t off, size_t want, std::string_view* out) {
    Status s = At(off, want, out);
    if (!s.ok()) return s;
    const uint64_t need = std::min<uint64_t>(want, size_ - std::min(off, size_));
    if (out->size() < need) {
      return Status::Corruption("short read of " + name_ + " at offset " + std::to_string(off));
    }
    *out = out->substr(0, static_cast<size_t>(need));
    return Status::OK();
  }

  // For a record larger than the window: its CRC over [from, to), streamed
  // through a buffer of its own so the window stays where the search is.
  Status ExtendCrc(uint32_t* crc, uint64_t from, uint64_t to, bool* whole) {
    *whole = false;
    std::string piece;
    for (uint64_t p = from; p < to;) {
      const size_t n = static_cast<size_t>(std::min<uint64_t>(kWindowBytes, to - p));
      piece.resize(n);
      size_t got;
      Status s = PreadSome(io_, fd_, piece.data(), n, p, &got, name_);
      if (!s.ok()) return s;
      if (got < n) return Status::OK();
      *crc = crc32c::Extend(*crc, piece.data(), n);
      p += n;
    }
    *whole = true;
    return Status::OK();
  }

 private:
  Io* io_;
  int fd_;
  const std::string& name_;
  uint64_t size_;
  std::string buf_;
  uint64_t buf_off_ = 0;
};

// A valid record found after a bad one.
struct FoundRecord {
  uint64_t offset = 0;
  uint64_t total = 0;  // its encoded size
  uint64_t lsn = 0;
  bool write_continues = false;
};

// Looks for a whole, valid record starting anywhere in (from, size) with an
// LSN above prev_lsn (and not absurdly far above it).
Status FindValidRecordAfter(Tail* tail, uint64_t from, uint64_t prev_lsn, bool* found,
                            FoundRecord* record) {
  *found = false;
  const uint64_t size = tail->size();
  for (uint64_t off = from + 1; off + kRecordHeaderBytes <= size; off++) {
    std::string_view at;
    Status s = tail->At(off, kRecordHeaderBytes, &at);
    if (!s.ok()) return s;
    if (at.size() < kRecordHeaderBytes) return Status::OK();  // the file is shorter
    uint64_t total;
    if (!CheckRecordHeader(at, &total).ok()) continue;
    const uint64_t lsn = DecodeFixed64(at.data() + 4);
    if (lsn <= prev_lsn || lsn - prev_lsn > (1ull << 32) || total > size - off) continue;
    uint32_t crc;
    if (total <= at.size()) {
      crc = crc32c::Value(at.data() + 4, total - 4);
    } else {
      crc = crc32c::Extend(0, at.data() + 4, at.size() - 4);
      bool whole;
      s = tail->ExtendCrc(&crc, off + at.size(), off + total, &whole);
      if (!s.ok()) return s;
      if (!whole) continue;
    }
    if (crc == DecodeFixed32(at.data())) {
      *found = true;
      record->offset = off;
      record->total = total;
      record->lsn = lsn;
      record->write_continues = (static_cast<uint8_t>(at[12]) & kWriteContinuesBit) != 0;
      return Status::OK();
    }
  }
  return Status::OK();
}

// The disk's unit of atomic writes: a sector is written whole or not at all.
constexpr uint64_t kSectorBytes = 512;

bool IsZeros(std::string_view bytes) { return bytes.find_first_not_of('\0') == std::string::npos; }

// Whether [from, to) shows a sector of pre-allocated space that a crash kept
// from the disk: a sector ending at or before `to` whose bytes from `from` on
// are all zero (the part of it before `from` may be the previous write's).
Status HasUnwrittenSector(Tail* tail, uint64_t from, uint64_t to, bool* found) {
  *found = false;
  for (uint64_t start = from; start < to;) {
    const uint64_t end = (start / kSectorBytes + 1) * kSectorBytes;
    if (end > to) return Status::OK();
    std::string_view sector;
    Status s = tail->Exact(start, static_cast<size_t>(end - start), &sector);
    if (!s.ok()) return s;
    if (IsZeros(sector)) {
      *found = true;
      return Status::OK();
    }
    start = end;
  }
  return Status::OK();
}

// Whether bytes [from, size) of the file are all zero: space pre-allocated
// ahead of the writer and never written.
Status AllZeros(Tail* tail, uint64_t from, bool* zeros) {
  *zeros = true;
  for (uint64_t off = from; off < tail->size();) {
    std::string_view piece;
    Status s = tail->Exact(off, kWindowBytes, &piece);
    if (!s.ok()) return s;
    if (!IsZeros(piece)) {
      *zeros = false;
      return Status::OK();
    }
    off += piece.size();
  }
  return Status::OK();
}

// Whether every valid record after the bad one at `from` can be the file's
// last write, cut by a crash: none of them ends a write and is followed by
// another valid record, and a sector of zeros lies between the bad record
// and the first valid one (a flipped bit, say, leaves none: it is damage).
Status OnlyLastWriteFollows(Tail* tail, uint64_t from, const FoundRecord& first,
                            bool* last_write_only) {
  Status s = HasUnwrittenSector(tail, from, first.offset, last_write_only);
  if (!s.ok() || !*last_write_only) return s;
  FoundRecord r = first;
  for (;;) {
    const bool ended = !r.write_continues;
    bool found;
    s = FindValidRecordAfter(tail, r.offset + r.total - 1, r.lsn, &found, &r);
    if (!s.ok() || !found) return s;
    if (ended) {
      *last_write_only = false;
      return Status::OK();
    }
  }
}

}  // namespace

Status ExamineAfterBadRecord(Io* io, int fd, const std::string& name, uint64_t cut_at,
                             uint64_t bad_at, uint64_t size, uint64_t prev_lsn, bool newest,
                             AfterBadRecord* out) {
  *out = AfterBadRecord{};
  Tail tail(io, fd, name, size);
  if (newest) {
    bool zeros;
    Status s = AllZeros(&tail, cut_at, &zeros);
    if (!s.ok() || zeros) {
      out->kind = AfterBadRecord::kZeros;
      return s;
    }
  }
  bool found;
  FoundRecord first;
  Status s = FindValidRecordAfter(&tail, bad_at, prev_lsn, &found, &first);
  if (!s.ok() || !found) {
    out->kind = AfterBadRecord::kTorn;
    return s;
  }
  out->first_valid = first.offset;
  bool last_write_only = false;
  if (newest) {
    s = OnlyLastWriteFollows(&tail, bad_at, first, &last_write_only);
    if (!s.ok()) return s;
  }
  out->kind = last_write_only ? AfterBadRecord::kTornLastWrite : AfterBadRecord::kDamage;
  return Status::OK();
}

}  // namespace distkv::storage
