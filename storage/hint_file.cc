// Hint files; the format is described in hint_file.h.
#include "storage/hint_file.h"

#include <errno.h>

#include <cstdio>
#include <cstring>

#include "storage/coding.h"
#include "storage/crc32c.h"
#include "storage/file_util.h"

namespace distkv::storage {

namespace {

constexpr size_t kEntryHeaderBytes = HintFile::kEntryHeaderBytes;
constexpr size_t kTrailerBytes = HintFile::kTrailerBytes;
constexpr uint32_t kMagic = HintFile::kMagic;
constexpr uint8_t kTombstoneFlag = HintFile::kTombstoneFlag;
constexpr uint8_t kGapFlag = HintFile::kGapFlag;
constexpr uint8_t kExpiresFlag = HintFile::kExpiresFlag;

}  // namespace

std::string HintFileName(uint64_t segment_id) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%012llu.hint", static_cast<unsigned long long>(segment_id));
  return buf;
}

void HintBuilder::Add(const Record& r, uint64_t offset) {
  const size_t at = buf_.size();
  buf_.resize(at + kEntryHeaderBytes);
  char* p = buf_.data() + at;
  EncodeFixed64(p, r.lsn);
  EncodeFixed64(p + 8, offset);
  const bool gap = r.type == RecordType::kGap;
  EncodeFixed32(p + 16,
                gap ? 0 : static_cast<uint32_t>(StoredValueBytes(r.value.size(), r.expires_ms)));
  p[20] = static_cast<char>((r.type == RecordType::kDelete ? kTombstoneFlag
                             : gap                         ? kGapFlag
                                                           : 0) |
                            (r.expires_ms != 0 ? kExpiresFlag : 0));
  const std::string_view key = gap ? r.value : r.key;
  EncodeFixed32(p + 21, static_cast<uint32_t>(key.size()));
  buf_.append(key);
  if (r.expires_ms != 0) {
    char t[kExpiryBytes];
    EncodeFixed64(t, r.expires_ms);
    buf_.append(t, sizeof t);
  }
  entries_++;
}

std::string HintBuilder::Finish(uint64_t segment_size) const {
  std::string out;
  out.reserve(buf_.size() + kTrailerBytes);
  out = buf_;
  char t[kTrailerBytes];
  EncodeFixed64(t, segment_size);
  EncodeFixed64(t + 8, entries_);
  EncodeFixed32(t + 16, kMagic);
  out.append(t, 20);
  const uint32_t crc = crc32c::Value(out.data(), out.size());
  EncodeFixed32(t + 20, crc);
  out.append(t + 20, 4);
  return out;
}

void HintBuilder::Clear() {
  buf_.clear();
  entries_ = 0;
}

Status HintFile::Read(Io* io, const std::string& path, uint64_t segment_size) {
  entry_bytes_ = 0;
  entries_ = 0;
  int fd;
  if (int err = io->Open(path, Io::kOpenExisting, &fd)) {
    if (err == ENOENT) return Status::NotFound(path);
    return Status::FromErrno(err, "open " + path);
  }
  uint64_t size = 0;
  Status s = FileSize(io, fd, &size, path);
  if (s.ok() && size > capacity_) {
    // Not zeroed: every byte is read over at once.
    data_ = std::make_unique_for_overwrite<char[]>(size);
    capacity_ = size;
  }
  if (s.ok()) s = PreadExact(io, fd, data_.get(), size, 0, path);
  io->Close(fd);
  if (!s.ok()) return s;
  return Check(path, segment_size, size);
}

// Checks the first `size` bytes of data_ as a hint file: its trailer and CRC,
// then every entry, in one walk.
Status HintFile::Check(const std::string& path, uint64_t segment_size, uint64_t size) {
  const char* buf = data_.get();
  if (size < kTrailerBytes) return Status::Corruption(path + ": shorter than its trailer");
  const char* t = buf + size - kTrailerBytes;
  if (DecodeFixed32(t + 16) != kMagic) return Status::Corruption(path + ": bad magic");
  if (crc32c::Value(buf, size - 4) != DecodeFixed32(t + 20)) {
    return Status::Corruption(path + ": CRC mismatch");
  }
  if (DecodeFixed64(t) != segment_size) {
    return Status::Corruption(path + ": describes a segment of " +
                              std::to_string(DecodeFixed64(t)) + " bytes, the segment has " +
                              std::to_string(segment_size));
  }
  const uint64_t count = DecodeFixed64(t + 8);
  // Check every entry before a cursor walks one: its bounds, that it is an
  // entry HintBuilder can write, and that the entries describe records
  // lying back to back from offset 0 to the segment's end, as every writer
  // of hint files (the hint job, compaction, a snapshot) adds them. A hint
  // that passes its CRC but not this was written wrong; trusting it would
  // put offsets the segment does not have into the index.
  const size_t end = size - kTrailerBytes;
  size_t pos = 0;
  uint64_t seen = 0;
  uint64_t next_offset = 0;
  while (pos < end) {
    if (end - pos < kEntryHeaderBytes) return Status::Corruption(path + ": entry cut short");
    const char* p = buf + pos;
    const uint32_t klen = DecodeFixed32(p + 21);
    const uint32_t vlen = DecodeFixed32(p + 16);
    const uint8_t flags = static_cast<uint8_t>(p[20]);
    const bool gap = (flags & kGapFlag) != 0;
    const bool tombstone = (flags & kTombstoneFlag) != 0;
    const size_t extra = (flags & kExpiresFlag) ? kExpiryBytes : 0;
    if ((flags & ~(kTombstoneFlag | kGapFlag | kExpiresFlag)) != 0 || (gap && tombstone)) {
      return Status::Corruption(path + ": bad flags");
    }
    if ((klen == 0 && !gap) || klen > kMaxKeyBytes || end - pos - kEntryHeaderBytes < klen) {
      return Status::Corruption(path + ": bad key length");
    }
    if (extra &&
        (gap || tombstone || vlen < kExpiryBytes || end - pos - kEntryHeaderBytes - klen < extra)) {
      return Status::Corruption(path + ": bad expiry");
    }
    if ((gap && (klen != kGapValueBytes || vlen != 0)) || (tombstone && vlen != 0)) {
      return Status::Corruption(path + ": a gap or tombstone entry with a value length");
    }
    if (DecodeFixed64(p) == 0) return Status::Corruption(path + ": an entry without an LSN");
    if (DecodeFixed64(p + 8) != next_offset) {
      return Status::Corruption(path + ": entry " + std::to_string(seen) + " is at offset " +
                                std::to_string(DecodeFixed64(p + 8)) + ", its record at " +
                                std::to_string(next_offset));
    }
    next_offset += EncodedRecordSize(klen, vlen);  // a gap's key is its 16-byte value
    pos += kEntryHeaderBytes + klen + extra;
    seen++;
  }
  if (seen != count) return Status::Corruption(path + ": entry count does not match");
  if (next_offset != segment_size) {
    return Status::Corruption(path + ": its records end at offset " + std::to_string(next_offset) +
                              ", the segment at " + std::to_string(segment_size));
  }
  entry_bytes_ = end;
  entries_ = count;
  return Status::OK();
}

Status ReadHintFile(Io* io, const std::string& path, uint64_t segment_size,
                    const std::function<void(const HintEntry& e)>& fn) {
  HintFile file;
  Status s = file.Read(io, path, segment_size);
  if (!s.ok()) return s;
  HintEntry e;
  for (HintFile::Cursor c(file); !c.done();) {
    c.Next(&e);
    fn(e);
  }
  return Status::OK();
}

bool ReadHintEntryCount(Io* io, const std::string& path, uint64_t* entries) {
  int fd;
  if (io->Open(path, Io::kOpenExisting, &fd) != 0) return false;
  uint64_t size = 0;
  char t[kTrailerBytes];
  bool ok = FileSize(io, fd, &size, path).ok() && size >= kTrailerBytes &&
            PreadExact(io, fd, t, kTrailerBytes, size - kTrailerBytes, path).ok() &&
            DecodeFixed32(t + 16) == kMagic;
  io->Close(fd);
  // Every entry takes at least its header: a count the file cannot hold
  // (a damaged or forged trailer) sizes nothing.
  ok = ok && DecodeFixed64(t + 8) <= (size - kTrailerBytes) / kEntryHeaderBytes;
  if (ok) *entries = DecodeFixed64(t + 8);
  return ok;
}

}  // namespace distkv::storage
