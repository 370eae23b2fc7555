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

// A valid record found after a bad one.
struct FoundRecord {
  uint64_t offset = 0;
  uint64_t total = 0;  // its encoded size
  uint64_t lsn = 0;
  bool write_continues = false;
};

// Looks for a whole, valid record starting anywhere in (from, size) with an
// LSN above prev_lsn (and not absurdly far above it). Reads in bounded
// pieces; a candidate larger than a piece has its CRC streamed.
Status FindValidRecordAfter(Io* io, int fd, const std::string& name, uint64_t from, uint64_t size,
                            uint64_t prev_lsn, bool* found, FoundRecord* record) {
  *found = false;
  constexpr size_t kWindow = 1 << 20;
  std::string buf;
  uint64_t buf_off = 0;
  for (uint64_t off = from + 1; off + kRecordHeaderBytes <= size; off++) {
    if (off < buf_off || off + kRecordHeaderBytes > buf_off + buf.size()) {
      buf_off = off;
      const size_t want = static_cast<size_t>(std::min<uint64_t>(kWindow, size - off));
      buf.resize(want);
      size_t got;
      Status s = PreadSome(io, fd, buf.data(), want, off, &got, name);
      if (!s.ok()) return s;
      buf.resize(got);
      if (got < kRecordHeaderBytes) return Status::OK();
    }
    std::string_view at(buf.data() + (off - buf_off), buf.size() - (off - buf_off));
    uint64_t total;
    if (!CheckRecordHeader(at, &total).ok()) continue;
    const uint64_t lsn = DecodeFixed64(at.data() + 4);
    if (lsn <= prev_lsn || lsn - prev_lsn > (1ull << 32) || total > size - off) continue;
    uint32_t crc;
    if (total <= at.size()) {
      crc = crc32c::Value(at.data() + 4, total - 4);
    } else {
      crc = crc32c::Extend(0, at.data() + 4, at.size() - 4);
      std::string piece;
      for (uint64_t p = off + at.size(); p < off + total;) {
        const size_t n = static_cast<size_t>(std::min<uint64_t>(kWindow, off + total - p));
        piece.resize(n);
        size_t got;
        Status s = PreadSome(io, fd, piece.data(), n, p, &got, name);
        if (!s.ok()) return s;
        if (got < n) break;
        crc = crc32c::Extend(crc, piece.data(), n);
        p += n;
      }
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

// Whether [from, to) shows a sector of pre-allocated space that a crash kept
// from the disk: a sector ending at or before `to` whose bytes from `from` on
// are all zero (the part of it before `from` may be the previous write's).
Status HasUnwrittenSector(Io* io, int fd, const std::string& name, uint64_t from, uint64_t to,
                          bool* found) {
  *found = false;
  std::string buf;
  for (uint64_t start = from; start < to;) {
    const uint64_t end = (start / kSectorBytes + 1) * kSectorBytes;
    if (end > to) return Status::OK();
    buf.resize(static_cast<size_t>(end - start));
    Status s = PreadExact(io, fd, buf.data(), buf.size(), start, name);
    if (!s.ok()) return s;
    if (buf.find_first_not_of('\0') == std::string::npos) {
      *found = true;
      return Status::OK();
    }
    start = end;
  }
  return Status::OK();
}

// Whether bytes [from, size) of the file are all zero: space pre-allocated
// ahead of the writer and never written.
Status AllZeros(Io* io, int fd, const std::string& name, uint64_t from, uint64_t size,
                bool* zeros) {
  *zeros = true;
  std::string buf;
  for (uint64_t off = from; off < size;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(1 << 20, size - off));
    buf.resize(n);
    Status s = PreadExact(io, fd, buf.data(), n, off, name);
    if (!s.ok()) return s;
    if (buf.find_first_not_of('\0') != std::string::npos) {
      *zeros = false;
      return Status::OK();
    }
    off += n;
  }
  return Status::OK();
}

// Whether every valid record after the bad one at `from` can be the file's
// last write, cut by a crash: none of them ends a write and is followed by
// another valid record, and a sector of zeros lies between the bad record
// and the first valid one (a flipped bit, say, leaves none: it is damage).
Status OnlyLastWriteFollows(Io* io, int fd, const std::string& name, uint64_t from,
                            uint64_t size, const FoundRecord& first, bool* last_write_only) {
  Status s = HasUnwrittenSector(io, fd, name, from, first.offset, last_write_only);
  if (!s.ok() || !*last_write_only) return s;
  FoundRecord r = first;
  for (;;) {
    const bool ended = !r.write_continues;
    bool found;
    s = FindValidRecordAfter(io, fd, name, r.offset + r.total - 1, size, r.lsn, &found, &r);
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
  if (newest) {
    bool zeros;
    Status s = AllZeros(io, fd, name, cut_at, size, &zeros);
    if (!s.ok() || zeros) {
      out->kind = AfterBadRecord::kZeros;
      return s;
    }
  }
  bool found;
  FoundRecord first;
  Status s = FindValidRecordAfter(io, fd, name, bad_at, size, prev_lsn, &found, &first);
  if (!s.ok() || !found) {
    out->kind = AfterBadRecord::kTorn;
    return s;
  }
  out->first_valid = first.offset;
  bool last_write_only = false;
  if (newest) {
    s = OnlyLastWriteFollows(io, fd, name, bad_at, size, first, &last_write_only);
    if (!s.ok()) return s;
  }
  out->kind = last_write_only ? AfterBadRecord::kTornLastWrite : AfterBadRecord::kDamage;
  return Status::OK();
}

}  // namespace distkv::storage
