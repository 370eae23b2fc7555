// The replication stream's framing: frames survive being split at any byte,
// and malformed input is refused at once rather than buffered.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "src/replication/stream_format.h"
#include "storage/record_format.h"

using distkv::AppendHeartbeatFrame;
using distkv::AppendRecordsFrame;
using distkv::BeginRecordsFrame;
using distkv::FinishRecordsFrame;
using distkv::Frame;
using distkv::FrameDecoder;
using distkv::FrameKind;

namespace {

std::string EncodedRecords(uint64_t first_lsn, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    distkv::storage::Record r;
    r.lsn = first_lsn + static_cast<uint64_t>(i);
    r.type = i % 3 == 2 ? distkv::storage::RecordType::kDelete : distkv::storage::RecordType::kPut;
    std::string key = "key-" + std::to_string(i);
    std::string value = r.type == distkv::storage::RecordType::kPut ? std::string(i * 7, 'v') : "";
    r.key = key;
    r.value = value;
    distkv::storage::EncodeRecord(r, &out);
  }
  return out;
}

struct Decoded {
  FrameKind kind;
  uint64_t lsn;
  uint64_t time_us;
  std::string records;
};

// Feeds stream in the given pieces and collects every frame.
std::vector<Decoded> DecodeAll(const std::string& stream, const std::vector<size_t>& cuts,
                               FrameDecoder::Result* last = nullptr) {
  FrameDecoder decoder(1 << 20);
  std::vector<Decoded> out;
  size_t from = 0;
  FrameDecoder::Result result = FrameDecoder::Result::kNeedMore;
  auto drain = [&]() {
    Frame f;
    while ((result = decoder.Next(&f)) == FrameDecoder::Result::kFrame) {
      out.push_back({f.kind, f.primary_lsn, f.time_us, std::string(f.records)});
    }
  };
  for (size_t cut : cuts) {
    decoder.Feed(std::string_view(stream).substr(from, cut - from));
    drain();
    from = cut;
  }
  decoder.Feed(std::string_view(stream).substr(from));
  drain();
  if (last) *last = result;
  return out;
}

}  // namespace

TEST_CASE("a records frame and a heartbeat decode to what was encoded") {
  const std::string records = EncodedRecords(7, 5);
  std::string stream;
  AppendRecordsFrame(&stream, 11, 123456789, records);
  AppendHeartbeatFrame(&stream, 12, 987654321);
  FrameDecoder::Result last;
  std::vector<Decoded> frames = DecodeAll(stream, {}, &last);
  REQUIRE(frames.size() == 2);
  CHECK(frames[0].kind == FrameKind::kRecords);
  CHECK(frames[0].lsn == 11);
  CHECK(frames[0].time_us == 123456789);
  CHECK(frames[0].records == records);
  CHECK(frames[1].kind == FrameKind::kHeartbeat);
  CHECK(frames[1].lsn == 12);
  CHECK(frames[1].time_us == 987654321);
  CHECK(frames[1].records.empty());
  CHECK(last == FrameDecoder::Result::kNeedMore);
}

TEST_CASE("a frame built in place carries the bytes appended after its prefix") {
  const std::string records = EncodedRecords(1, 3);
  std::string built;
  size_t start = BeginRecordsFrame(&built);
  built += records;
  CHECK(FinishRecordsFrame(&built, start, 3, 42));
  std::string appended;
  AppendRecordsFrame(&appended, 3, 42, records);
  CHECK(built == appended);
}

TEST_CASE("a frame built in place with nothing appended is removed") {
  std::string buf = "before";
  size_t start = BeginRecordsFrame(&buf);
  CHECK_FALSE(FinishRecordsFrame(&buf, start, 1, 1));
  CHECK(buf == "before");
}

TEST_CASE("frames split at every byte decode identically") {
  std::string stream;
  AppendHeartbeatFrame(&stream, 0, 1);
  AppendRecordsFrame(&stream, 4, 2, EncodedRecords(1, 4));
  AppendRecordsFrame(&stream, 9, 3, EncodedRecords(5, 5));
  AppendHeartbeatFrame(&stream, 9, 4);
  const std::vector<Decoded> whole = DecodeAll(stream, {});
  REQUIRE(whole.size() == 4);
  // One cut anywhere, and the stream fed one byte at a time.
  for (size_t cut = 0; cut <= stream.size(); ++cut) {
    std::vector<Decoded> split = DecodeAll(stream, {cut});
    REQUIRE(split.size() == whole.size());
    for (size_t i = 0; i < whole.size(); ++i) {
      CHECK(split[i].kind == whole[i].kind);
      CHECK(split[i].lsn == whole[i].lsn);
      CHECK(split[i].time_us == whole[i].time_us);
      CHECK(split[i].records == whole[i].records);
    }
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < stream.size(); ++i) every.push_back(i);
  std::vector<Decoded> bytewise = DecodeAll(stream, every);
  REQUIRE(bytewise.size() == whole.size());
  for (size_t i = 0; i < whole.size(); ++i) CHECK(bytewise[i].records == whole[i].records);
}

TEST_CASE("records inside a decoded frame pass the storage decoder's CRC check") {
  std::string stream;
  AppendRecordsFrame(&stream, 3, 0, EncodedRecords(1, 3));
  FrameDecoder decoder(1 << 20);
  decoder.Feed(stream);
  Frame f;
  REQUIRE(decoder.Next(&f) == FrameDecoder::Result::kFrame);
  std::string_view rest = f.records;
  uint64_t expect = 1;
  while (!rest.empty()) {
    distkv::storage::Record r;
    size_t used = 0;
    REQUIRE(distkv::storage::DecodeRecord(rest, &r, &used).ok());
    CHECK(r.lsn == expect++);
    rest.remove_prefix(used);
  }
  CHECK(expect == 4);
}

TEST_CASE("an unknown frame kind is an error as soon as its header arrives") {
  std::string stream = std::string("\x07", 1) + std::string("\x10\x00\x00\x00", 4);
  FrameDecoder decoder(1 << 20);
  decoder.Feed(stream);
  Frame f;
  CHECK(decoder.Next(&f) == FrameDecoder::Result::kError);
  CHECK(decoder.error().find("unknown frame kind 7") != std::string::npos);
  // The error sticks: the stream cannot be resynchronised.
  decoder.Feed("more");
  CHECK(decoder.Next(&f) == FrameDecoder::Result::kError);
}

TEST_CASE("a records frame above the payload limit is refused before its bytes arrive") {
  std::string stream;
  AppendRecordsFrame(&stream, 1, 0, std::string(2000, 'x'));
  FrameDecoder decoder(1000);
  decoder.Feed(std::string_view(stream).substr(0, distkv::kFrameHeaderBytes));
  Frame f;
  CHECK(decoder.Next(&f) == FrameDecoder::Result::kError);
  CHECK(decoder.error().find("exceeds the limit") != std::string::npos);
}

TEST_CASE("a heartbeat with a payload of the wrong size is an error") {
  std::string stream;
  AppendHeartbeatFrame(&stream, 1, 1);
  stream[1] = 17;  // length 17 instead of 16
  FrameDecoder decoder(1 << 20);
  decoder.Feed(stream);
  Frame f;
  CHECK(decoder.Next(&f) == FrameDecoder::Result::kError);
}

TEST_CASE("a records frame with no records after its prefix is an error") {
  std::string stream;
  AppendHeartbeatFrame(&stream, 1, 1);
  stream[0] = static_cast<char>(FrameKind::kRecords);
  FrameDecoder decoder(1 << 20);
  decoder.Feed(stream);
  Frame f;
  CHECK(decoder.Next(&f) == FrameDecoder::Result::kError);
}

TEST_CASE("Reset clears a sticky error and the buffered bytes") {
  FrameDecoder decoder(1 << 20);
  decoder.Feed(std::string("\x09\x00\x00\x00\x00", 5));
  Frame f;
  REQUIRE(decoder.Next(&f) == FrameDecoder::Result::kError);
  decoder.Reset();
  CHECK(decoder.buffered() == 0);
  std::string stream;
  AppendHeartbeatFrame(&stream, 5, 6);
  decoder.Feed(stream);
  REQUIRE(decoder.Next(&f) == FrameDecoder::Result::kFrame);
  CHECK(f.primary_lsn == 5);
}
