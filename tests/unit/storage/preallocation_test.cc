// Pre-allocated segments and the "write continues" bit (record_format.h,
// Writes): with fsync = "always" the active segment is zero-filled ahead of
// the writer and trimmed when sealed or closed; every record of a write but
// the last carries bit 0x20; recovery cuts a last write whose sectors reached
// the disk out of order, and still calls a hole in an earlier write damage.
#include <doctest/doctest.h>

#include <filesystem>

#include "storage/faulty_io.h"
#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;

namespace {

// key kNN, 60-byte value: 84 bytes a record.
constexpr uint64_t kRec = EncodedRecordSize(3, 60);

std::string Key(int i) { return "k" + std::string(i < 10 ? "0" : "") + std::to_string(i); }
std::string Value(int i) { return std::string(60, static_cast<char>('a' + i % 26)); }

// Puts keys [from, to) and makes them one write.
void PutWrite(Store& s, int from, int to) {
  uint64_t lsn;
  for (int i = from; i < to; i++) REQUIRE(s.Put(Key(i), Value(i), &lsn).ok());
  REQUIRE(s.Flush().ok());
}

// Bit 0x20 of each record in a segment's bytes, in order.
std::vector<bool> WriteBits(const std::string& bytes) {
  std::vector<bool> bits;
  std::string_view rest = bytes;
  Record r;
  size_t n;
  while (DecodeRecord(rest, &r, &n).ok()) {
    bits.push_back(r.write_continues);
    rest.remove_prefix(n);
  }
  return bits;
}

}  // namespace

TEST_CASE("a record's write bit round-trips and changing it keeps the CRC valid") {
  Record r{7, RecordType::kPut, "key", "value"};
  std::string buf;
  EncodeRecord(r, &buf);
  CHECK((static_cast<uint8_t>(buf[12]) & kWriteContinuesBit) == 0);
  SetWriteContinues(buf.data(), buf.size(), true);
  Record back;
  size_t n;
  REQUIRE(DecodeRecord(buf, &back, &n).ok());
  CHECK(back.write_continues);
  CHECK(back.type == RecordType::kPut);
  CHECK(back.key == "key");
  r.write_continues = true;
  std::string encoded;
  EncodeRecord(r, &encoded);
  CHECK(encoded == buf);  // the same bytes as encoding it with the bit
  SetWriteContinues(buf.data(), buf.size(), false);
  REQUIRE(DecodeRecord(buf, &back, &n).ok());
  CHECK_FALSE(back.write_continues);
}

TEST_CASE("every record of a write but the last has bit 0x20") {
  TempDir dir;
  auto s = MustOpen(TestOptions(dir.path()));
  PutWrite(*s, 0, 3);
  PutWrite(*s, 3, 4);
  PutWrite(*s, 4, 6);
  s.reset();
  CHECK(WriteBits(ReadFile(dir.file(SegmentFileName(1)))) ==
        std::vector<bool>{true, true, false, false, true, false});
}

TEST_CASE("with fsync=always the active segment is zero-filled ahead, trimmed when sealed or closed") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.fsync = FsyncMode::kAlways;
  o.segment_bytes = 32 * kRec;
  const std::string seg1 = dir.file(SegmentFileName(1));
  const std::string seg2 = dir.file(SegmentFileName(2));
  {
    auto s = MustOpen(o);
    PutWrite(*s, 0, 2);
    CHECK(std::filesystem::file_size(seg1) == o.segment_bytes);  // filled to the segment's end
    const std::string bytes = ReadFile(seg1);
    CHECK(bytes.find_first_not_of('\0', 2 * kRec) == std::string::npos);
    PutWrite(*s, 2, 40);  // rolls into segment 2
    CHECK(std::filesystem::file_size(seg1) == 32 * kRec);  // sealed: records alone
    CHECK(std::filesystem::file_size(seg2) == o.segment_bytes);
  }
  CHECK(std::filesystem::file_size(seg2) == 8 * kRec);  // closed: records alone

  // A large segment is filled one step (1 MiB) ahead, not to its end.
  o.segment_bytes = 64 << 20;
  o.dir = dir.path() + "/big";
  {
    auto s = MustOpen(o);
    PutWrite(*s, 0, 1);
    CHECK(std::filesystem::file_size(o.dir + "/" + SegmentFileName(1)) == kRec + (1 << 20));
  }

  // Without "always" nothing is pre-allocated.
  o.fsync = FsyncMode::kNever;
  o.dir = dir.path() + "/never";
  auto s = MustOpen(o);
  PutWrite(*s, 0, 1);
  CHECK(std::filesystem::file_size(o.dir + "/" + SegmentFileName(1)) == kRec);
}

TEST_CASE("after a power cut the pre-allocated zeros are cut at open, with a log line") {
  FaultyIo io;
  std::vector<std::string> log;
  Options o = TestOptions("/db", &log);
  o.io = &io;
  o.fsync = FsyncMode::kAlways;
  {
    auto s = MustOpen(o);
    PutWrite(*s, 0, 3);
    CHECK(io.Contents("/db/" + SegmentFileName(1)).size() == 3 * kRec + (1 << 20));
    io.PowerCut();
  }
  io.Restart();
  auto s = MustOpen(o);
  CHECK(LogMentions(log, "cut the pre-allocated space"));
  CHECK_FALSE(LogMentions(log, "torn"));
  for (int i = 0; i < 3; i++) CHECK(GetOr(*s, Key(i)) == Value(i));
  CHECK(io.Contents("/db/" + SegmentFileName(1)).size() == 3 * kRec);
}

TEST_CASE("zero sectors inside the last write are a torn write; inside an earlier one, damage") {
  // Write A: records 0-9 at [0, 840); write B: records 10-29 at [840, 2520).
  TempDir dir;
  std::vector<std::string> log;
  Options o = TestOptions(dir.path(), &log);
  o.fsync = FsyncMode::kAlways;
  {
    auto s = MustOpen(o);
    PutWrite(*s, 0, 10);
    PutWrite(*s, 10, 30);
  }
  const std::string seg = dir.file(SegmentFileName(1));
  const std::string clean = ReadFile(seg);
  REQUIRE(clean.size() == 30 * kRec);
  // Pre-allocated space after the records, as a crash leaves it.
  const std::string tail(4096, '\0');

  SUBCASE("a sector of B never written: B is cut where the hole begins") {
    std::string bytes = clean;
    bytes.replace(1024, 512, 512, '\0');  // records 12-17 lose bytes; 18-29 are whole
    WriteFile(seg, bytes + tail);
    MarkCrashed(dir.path());
    auto s = MustOpen(o);
    CHECK(LogMentions(log, "torn last write"));
    for (int i = 0; i < 12; i++) CHECK(GetOr(*s, Key(i)) == Value(i));  // A, and B before 1008
    for (int i = 12; i < 30; i++) CHECK(GetOr(*s, Key(i)) == "<absent>");
    CHECK(std::filesystem::file_size(seg) == 12 * kRec);
  }
  SUBCASE("the first sector of A never written, B whole after it: damage") {
    std::string bytes = clean;
    bytes.replace(0, 512, 512, '\0');
    WriteFile(seg, bytes + tail);
    MarkCrashed(dir.path());
    std::unique_ptr<Store> s;
    Status st = Store::Open(o, &s);
    CHECK(st.IsCorruption());
    CHECK(st.ToString().find("damage") != std::string::npos);
    CHECK(std::filesystem::file_size(seg) == clean.size() + tail.size());  // untouched
  }
  SUBCASE("a flipped byte in B, with no zero sector: damage even in the last write") {
    std::string bytes = clean;
    bytes[1100] ^= 0x10;
    WriteFile(seg, bytes + tail);
    MarkCrashed(dir.path());
    std::unique_ptr<Store> s;
    CHECK(Store::Open(o, &s).IsCorruption());
  }
}

TEST_CASE("on a disk too full for the pre-allocation, writes go on without it") {
  FaultyIo io;
  Options o = TestOptions("/db");
  o.io = &io;
  o.fsync = FsyncMode::kAlways;
  auto s = MustOpen(o);
  io.SetCapacity(64 << 10);  // room for the records, not for 1 MiB of zeros
  PutWrite(*s, 0, 3);
  CHECK(io.Contents("/db/" + SegmentFileName(1)).size() == 3 * kRec);  // no zeros after them
  PutWrite(*s, 3, 6);
  for (int i = 0; i < 6; i++) CHECK(GetOr(*s, Key(i)) == Value(i));
  s.reset();
  s = MustOpen(o);
  for (int i = 0; i < 6; i++) CHECK(GetOr(*s, Key(i)) == Value(i));
}
