// The record format: round trips, and DecodeRecord's three answers (a whole
// record, "incomplete", "corrupt") for every prefix and every flipped byte.
#include <doctest/doctest.h>

#include <string>

#include "storage/crc32c.h"
#include "storage/record_format.h"

using namespace distkv::storage;

TEST_CASE("a record round-trips and its layout is the documented one") {
  std::string buf;
  const std::string key("k\0y", 3);
  EncodeRecord(Record{0x0102030405060708ull, RecordType::kPut, key, "value"}, &buf);
  REQUIRE(buf.size() == EncodedRecordSize(3, 5));
  CHECK(buf.size() == 21 + 3 + 5);
  CHECK(static_cast<uint8_t>(buf[4]) == 0x08);  // LSN, little-endian
  CHECK(static_cast<uint8_t>(buf[11]) == 0x01);
  CHECK(buf[12] == 1);  // type put
  CHECK(buf[13] == 3);  // key length
  CHECK(buf[17] == 5);  // value length
  CHECK(buf.substr(21, 3) == key);
  CHECK(buf.substr(24) == "value");
  const uint32_t crc = crc32c::Value(buf.data() + 4, buf.size() - 4);
  CHECK(static_cast<uint8_t>(buf[0]) == (crc & 0xFF));
  CHECK(static_cast<uint8_t>(buf[3]) == (crc >> 24));

  EncodeRecord(Record{9, RecordType::kDelete, "gone", {}}, &buf);
  Record r;
  size_t n;
  REQUIRE(DecodeRecord(buf, &r, &n).ok());
  CHECK(n == 29);
  CHECK(r.lsn == 0x0102030405060708ull);
  CHECK(r.type == RecordType::kPut);
  CHECK(r.key == key);
  CHECK(r.value == "value");
  REQUIRE(DecodeRecord(std::string_view(buf).substr(n), &r, &n).ok());
  CHECK(r.lsn == 9);
  CHECK(r.type == RecordType::kDelete);
  CHECK(r.key == "gone");
  CHECK(r.value.empty());
}

TEST_CASE("every proper prefix of a record is incomplete") {
  std::string buf;
  EncodeRecord(Record{42, RecordType::kPut, "key", "some value"}, &buf);
  for (size_t len = 0; len < buf.size(); len++) {
    Record r;
    size_t n;
    CAPTURE(len);
    CHECK(DecodeRecord(std::string_view(buf).substr(0, len), &r, &n).IsIncomplete());
  }
}

TEST_CASE("a flipped bit anywhere is never accepted; outside the lengths it is corruption") {
  std::string good;
  EncodeRecord(Record{42, RecordType::kPut, "key", "some value"}, &good);
  for (size_t i = 0; i < good.size(); i++) {
    for (int bit = 0; bit < 8; bit++) {
      std::string bad = good;
      bad[i] ^= static_cast<char>(1 << bit);
      Record r;
      size_t n;
      Status s = DecodeRecord(bad, &r, &n);
      CAPTURE(i);
      CAPTURE(bit);
      CHECK_FALSE(s.ok());
      const bool in_lengths = i >= 13 && i < 21;
      if (!in_lengths) CHECK(s.IsCorruption());
    }
  }
}

TEST_CASE("bad header fields are corruption, not a wait for more bytes") {
  std::string zeros(64, '\0');
  Record r;
  size_t n;
  CHECK(DecodeRecord(zeros, &r, &n).IsCorruption());  // LSN 0, type 0
  std::string buf;
  EncodeRecord(Record{1, RecordType::kPut, "k", "v"}, &buf);
  std::string huge_key = buf;
  huge_key[16] = 0x7F;  // key length far above 64 KiB
  CHECK(DecodeRecord(huge_key, &r, &n).IsCorruption());
}

TEST_CASE("segment file names") {
  CHECK(SegmentFileName(1) == "000000000001.seg");
  CHECK(SegmentFileName(4294967295ull) == "004294967295.seg");
  uint64_t id = 0;
  CHECK(ParseSegmentFileName("000000000042.seg", &id));
  CHECK(id == 42);
  CHECK_FALSE(ParseSegmentFileName("000000000042.hint", &id));
  CHECK_FALSE(ParseSegmentFileName("42.seg", &id));
  CHECK_FALSE(ParseSegmentFileName("00000000004x.seg", &id));
  CHECK_FALSE(ParseSegmentFileName("000000000042.seg.tmp", &id));
  CHECK_FALSE(ParseSegmentFileName("LOCK", &id));
  // 2^64 + 1 would wrap to segment 1's id.
  CHECK_FALSE(ParseSegmentFileName("18446744073709551617.seg", &id));
  CHECK(ParseSegmentFileName("18446744073709551615.seg", &id));
  CHECK(id == UINT64_MAX);
}
