// Encoding and decoding of log records; the layout is in record_format.h.
#include "storage/record_format.h"

#include <cstdio>
#include <cstring>

#include "storage/coding.h"
#include "storage/crc32c.h"

namespace distkv::storage {

namespace {

constexpr size_t kSegmentIdDigits = 12;

}  // namespace

void EncodeRecord(const Record& r, std::string* out) {
  const size_t start = out->size();
  const uint64_t vlen = StoredValueBytes(r.value.size(), r.expires_ms);
  out->resize(start + EncodedRecordSize(r.key.size(), vlen));
  char* p = out->data() + start;
  EncodeFixed64(p + 4, r.lsn);
  p[12] = static_cast<char>(
      static_cast<uint8_t>(r.type) | (r.group_continues ? kGroupContinuesBit : 0) |
      (r.expires_ms != 0 ? kExpiresBit : 0) | (r.write_continues ? kWriteContinuesBit : 0));
  EncodeFixed32(p + 13, static_cast<uint32_t>(r.key.size()));
  EncodeFixed32(p + 17, static_cast<uint32_t>(vlen));
  char* q = p + kRecordHeaderBytes;
  // memcpy from a null pointer is undefined even for 0 bytes, and an empty
  // string_view (a gap record's key) may hold one.
  if (!r.key.empty()) std::memcpy(q, r.key.data(), r.key.size());
  q += r.key.size();
  if (r.expires_ms != 0) {
    EncodeFixed64(q, r.expires_ms);
    q += kExpiryBytes;
  }
  if (!r.value.empty()) std::memcpy(q, r.value.data(), r.value.size());
  const size_t body = kRecordHeaderBytes - 4 + r.key.size() + vlen;
  EncodeFixed32(p, crc32c::Value(p + 4, body));
}

void SetWriteContinues(char* record, uint64_t total, bool on) {
  const uint8_t type = static_cast<uint8_t>(record[12]);
  if (((type & kWriteContinuesBit) != 0) == on) return;
  record[12] = static_cast<char>(type ^ kWriteContinuesBit);
  // The CRC covers bytes [4, total); the type byte is followed by total - 13.
  const uint32_t crc = DecodeFixed32(record) ^ crc32c::XorDelta(kWriteContinuesBit, total - 13);
  EncodeFixed32(record, crc);
}

void DecodeTypeByte(uint8_t byte, Record* rec, bool* has_expiry) {
  rec->type = static_cast<RecordType>(byte & kTypeMask);
  rec->group_continues = (byte & kGroupContinuesBit) != 0;
  rec->write_continues = (byte & kWriteContinuesBit) != 0;
  *has_expiry = (byte & kExpiresBit) != 0;
}

std::string EncodeGapValue(uint64_t prev_lsn, uint64_t history_id) {
  std::string v(kGapValueBytes, '\0');
  EncodeFixed64(v.data(), prev_lsn);
  EncodeFixed64(v.data() + 8, history_id);
  return v;
}

void DecodeGapValue(std::string_view value, uint64_t* prev_lsn, uint64_t* history_id) {
  *prev_lsn = value.size() >= 8 ? DecodeFixed64(value.data()) : 0;
  *history_id = value.size() >= 16 ? DecodeFixed64(value.data() + 8) : 0;
}

Status CheckRecordHeader(std::string_view buf, uint64_t* total) {
  const char* p = buf.data();
  const uint64_t lsn = DecodeFixed64(p + 4);
  const uint8_t type = static_cast<uint8_t>(p[12]) & kTypeMask;
  const bool grouped = (static_cast<uint8_t>(p[12]) & kGroupContinuesBit) != 0;
  const bool expires = (static_cast<uint8_t>(p[12]) & kExpiresBit) != 0;
  const uint32_t klen = DecodeFixed32(p + 13);
  const uint32_t vlen = DecodeFixed32(p + 17);
  // Header fields are checked before the length is trusted, so a damaged
  // length reads as corruption rather than as a record still to come.
  if (lsn == 0) return Status::Corruption("record has LSN 0");
  switch (static_cast<RecordType>(type)) {
    case RecordType::kPut:
      if (klen == 0 || klen > kMaxKeyBytes) return Status::Corruption("bad key length");
      if (expires && vlen < kExpiryBytes) return Status::Corruption("expiry cut short");
      break;
    case RecordType::kDelete:
      if (klen == 0 || klen > kMaxKeyBytes) return Status::Corruption("bad key length");
      if (vlen != 0 || expires) return Status::Corruption("tombstone with a value");
      break;
    case RecordType::kGap:
      if (klen != 0 || vlen != kGapValueBytes || grouped || expires) {
        return Status::Corruption("bad gap record");
      }
      break;
    default:
      return Status::Corruption("bad record type");
  }
  *total = EncodedRecordSize(klen, vlen);
  return Status::OK();
}

Status DecodeRecord(std::string_view buf, Record* out, size_t* consumed) {
  if (buf.size() < kRecordHeaderBytes) return Status::Incomplete("record header");
  uint64_t total;
  Status s = CheckRecordHeader(buf, &total);
  if (!s.ok()) return s;
  if (buf.size() < total) return Status::Incomplete("record body");
  const char* p = buf.data();
  const uint32_t crc = crc32c::Value(p + 4, total - 4);
  if (crc != DecodeFixed32(p)) return Status::Corruption("CRC mismatch");
  const uint32_t klen = DecodeFixed32(p + 13);
  out->lsn = DecodeFixed64(p + 4);
  bool has_expiry;
  DecodeTypeByte(static_cast<uint8_t>(p[12]), out, &has_expiry);
  out->key = std::string_view(p + kRecordHeaderBytes, klen);
  std::string_view value(p + kRecordHeaderBytes + klen, total - kRecordHeaderBytes - klen);
  out->expires_ms = 0;
  if (has_expiry) {
    out->expires_ms = DecodeFixed64(value.data());
    if (out->expires_ms == 0) return Status::Corruption("expiry of 0");
    value.remove_prefix(kExpiryBytes);
  }
  out->value = value;
  *consumed = total;
  return Status::OK();
}

std::string SegmentFileName(uint64_t id) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%0*llu.seg", static_cast<int>(kSegmentIdDigits),
                static_cast<unsigned long long>(id));
  return buf;
}

bool ParseSegmentFileName(std::string_view name, uint64_t* id) {
  constexpr std::string_view kSuffix = ".seg";
  if (name.size() <= kSuffix.size() || !name.ends_with(kSuffix)) return false;
  std::string_view digits = name.substr(0, name.size() - kSuffix.size());
  if (digits.size() < kSegmentIdDigits || digits.size() > 20) return false;
  uint64_t v = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return false;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    // A name past 2^64-1 is no segment of ours; wrapped, it could name one.
    if (v > (UINT64_MAX - digit) / 10) return false;
    v = v * 10 + digit;
  }
  *id = v;
  return true;
}

}  // namespace distkv::storage
