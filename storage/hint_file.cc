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

constexpr size_t kEntryHeaderBytes = 8 + 8 + 4 + 1 + 4;
constexpr size_t kTrailerBytes = 8 + 8 + 4 + 4;
constexpr uint32_t kMagic = 0x31484B44;  // "DKH1"
constexpr uint8_t kTombstoneFlag = 1;
constexpr uint8_t kGapFlag = 2;
constexpr uint8_t kExpiresFlag = 4;

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

Status ReadHintFile(Io* io, const std::string& path, uint64_t segment_size,
                    const std::function<void(const HintEntry& e)>& fn,
                    const std::function<void(std::string_view key)>& ahead) {
  int fd;
  if (int err = io->Open(path, Io::kOpenExisting, &fd)) {
    if (err == ENOENT) return Status::NotFound(path);
    return Status::FromErrno(err, "open " + path);
  }
  uint64_t size = 0;
  Status s = FileSize(io, fd, &size, path);
  std::string buf;
  if (s.ok()) {
    buf.resize(size);
    s = PreadExact(io, fd, buf.data(), size, 0, path);
  }
  io->Close(fd);
  if (!s.ok()) return s;
  if (buf.size() < kTrailerBytes) return Status::Corruption(path + ": shorter than its trailer");
  const char* t = buf.data() + buf.size() - kTrailerBytes;
  if (DecodeFixed32(t + 16) != kMagic) return Status::Corruption(path + ": bad magic");
  if (crc32c::Value(buf.data(), buf.size() - 4) != DecodeFixed32(t + 20)) {
    return Status::Corruption(path + ": CRC mismatch");
  }
  if (DecodeFixed64(t) != segment_size) {
    return Status::Corruption(path + ": describes a segment of " +
                              std::to_string(DecodeFixed64(t)) + " bytes, the segment has " +
                              std::to_string(segment_size));
  }
  const uint64_t count = DecodeFixed64(t + 8);
  // Check every entry before calling fn once: its bounds, that it is an entry
  // HintBuilder can write, and that the entries describe records lying back
  // to back from offset 0 to the segment's end, as every writer of hint files
  // (the hint job, compaction, a snapshot) adds them. A hint that passes its
  // CRC but not this was written wrong; trusting it would put offsets the
  // segment does not have into the index.
  const size_t end = buf.size() - kTrailerBytes;
  size_t pos = 0;
  uint64_t seen = 0;
  uint64_t next_offset = 0;
  while (pos < end) {
    if (end - pos < kEntryHeaderBytes) return Status::Corruption(path + ": entry cut short");
    const char* p = buf.data() + pos;
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
  // The entries are known good: step over one without looking at it again.
  auto next = [&](size_t at) {
    const char* p = buf.data() + at;
    const uint32_t klen = DecodeFixed32(p + 21);
    const bool expires = (static_cast<uint8_t>(p[20]) & kExpiresFlag) != 0;
    return at + kEntryHeaderBytes + klen + (expires ? kExpiryBytes : 0);
  };
  size_t lead = 0;  // kHintLookahead entries past pos, or end
  if (ahead) {
    for (size_t i = 0; i < kHintLookahead && lead < end; i++) lead = next(lead);
  }
  pos = 0;
  HintEntry e;
  while (pos < end) {
    if (ahead && lead < end) {
      const char* q = buf.data() + lead;
      if (!(static_cast<uint8_t>(q[20]) & kGapFlag)) {
        ahead(std::string_view(q + kEntryHeaderBytes, DecodeFixed32(q + 21)));
      }
      lead = next(lead);
    }
    const char* p = buf.data() + pos;
    e.lsn = DecodeFixed64(p);
    e.offset = DecodeFixed64(p + 8);
    e.value_len = DecodeFixed32(p + 16);
    e.tombstone = (static_cast<uint8_t>(p[20]) & kTombstoneFlag) != 0;
    e.gap = (static_cast<uint8_t>(p[20]) & kGapFlag) != 0;
    const uint32_t klen = DecodeFixed32(p + 21);
    e.key = std::string_view(p + kEntryHeaderBytes, klen);
    const bool expires = (static_cast<uint8_t>(p[20]) & kExpiresFlag) != 0;
    e.expires_ms = expires ? DecodeFixed64(p + kEntryHeaderBytes + klen) : 0;
    fn(e);
    pos += kEntryHeaderBytes + klen + (expires ? kExpiryBytes : 0);
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
