// Pre-allocated segments and the "write continues" bit (record_format.h,
// Writes): with fsync = "always" the active segment is zero-filled ahead of
// the writer and trimmed when sealed or closed; every record of a write but
// the last carries bit 0x20; recovery cuts a last write whose sectors reached
// the disk out of order, and still calls a hole in an earlier write damage.
// The pre-allocation's own failures: a trim that fails at a seal fails that
// batch, at a close leaves the close unrecorded; an I/O error writing the
// zeros fails the batch, a full disk only skips them.
#include <doctest/doctest.h>

#include <errno.h>

#include <algorithm>
#include <filesystem>

#include "storage/faulty_io.h"
#include "storage/io_wrapper.h"
#include "storage/manifest.h"
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

// The records at the start of a segment's bytes: bit 0x20 of each, in
// order, and where they end (what follows: zeros or damage).
struct Records {
  std::vector<bool> write_bits;
  size_t end = 0;
};
Records ReadRecords(const std::string& bytes) {
  Records out;
  std::string_view rest = bytes;
  Record r;
  size_t n;
  while (DecodeRecord(rest, &r, &n).ok()) {
    out.write_bits.push_back(r.write_continues);
    rest.remove_prefix(n);
  }
  out.end = bytes.size() - rest.size();
  return out;
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
  CHECK(ReadRecords(ReadFile(dir.file(SegmentFileName(1)))).write_bits ==
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

TEST_CASE("a segment is no background job's input until the batch that seals it has trimmed it") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.fsync = FsyncMode::kAlways;
  o.segment_bytes = 32 * kRec;
  auto s = MustOpen(o);
  PutWrite(*s, 0, 2);  // segment 1: two records, zeros to its end
  uint64_t lsn;
  REQUIRE(s->Put("big", std::string(31 * kRec, 'v'), &lsn).ok());  // fits only a new segment
  auto batch = s->TakeBatch();
  REQUIRE(batch != nullptr);
  // Segment 1 is sealed now, every record of it synced, but this batch
  // still trims its zeros through its descriptor.
  CHECK(s->TakeHintJob() == nullptr);
  CHECK(s->TakeCompaction({}) == nullptr);
  Status ran = batch->Run();
  REQUIRE(s->FinishBatch(std::move(batch), ran).ok());
  CHECK(std::filesystem::file_size(dir.file(SegmentFileName(1))) == 2 * kRec);
  auto job = s->TakeHintJob();  // trimmed: its hint file may be written now
  REQUIRE(job != nullptr);
  Status st = job->Run();
  s->FinishJob(std::move(job), st);
  CHECK(st.ok());
}

TEST_CASE("recovery reads a torn last write of many records and the zeros after it about once") {
  TempDir dir;
  std::vector<std::string> log;
  Options o = TestOptions(dir.path(), &log);
  o.fsync = FsyncMode::kAlways;
  o.segment_bytes = 64 << 20;
  {
    auto s = MustOpen(o);
    PutWrite(*s, 0, 10);
    PutWrite(*s, 10, 3000);  // one write of 2,990 records
  }
  const std::string seg = dir.file(SegmentFileName(1));
  std::string bytes = ReadFile(seg);
  const size_t hole = (10 * kRec / 512 + 2) * 512;  // a sector early in the last write
  bytes.replace(hole, 512, 512, '\0');
  WriteFile(seg, bytes + std::string(1 << 20, '\0'));  // and the pre-allocated space
  MarkCrashed(dir.path());
  const uint64_t file_size = std::filesystem::file_size(seg);

  ReadCountingIo io;
  o.io = &io;
  auto s = MustOpen(o);
  CHECK(LogMentions(log, "torn last write"));
  CHECK(GetOr(*s, Key(9)) == Value(9));
  CHECK(GetOr(*s, Key(2999)) == "<absent>");
  // Each byte about once: not a fresh window read for every record after the hole.
  CHECK(io.bytes_read < 4 * file_size);
  MESSAGE("read " << io.bytes_read << " bytes to open a " << file_size << "-byte segment");
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

namespace {

// Fails the next `truncates` calls of Truncate with EIO, and writes of zeros
// alone (the pre-allocation's) with zero_err — after writing half of the
// first such write, when half_then_fail is set.
class PreallocFaultIo : public IoWrapper {
 public:
  explicit PreallocFaultIo(Io* base) : IoWrapper(base) {}
  int Truncate(int handle, uint64_t size) override {
    if (truncates > 0) {
      truncates--;
      return EIO;
    }
    return IoWrapper::Truncate(handle, size);
  }
  int Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) override {
    const bool zeros = n >= 4096 && std::all_of(data, data + n, [](char c) { return c == 0; });
    if (zeros && zero_err != 0) {
      if (half_then_fail) {
        half_then_fail = false;
        IoWrapper::Write(handle, data, n / 2, off, done);
      } else {
        *done = 0;
      }
      return zero_err;
    }
    return IoWrapper::Write(handle, data, n, off, done);
  }
  int truncates = 0;
  int zero_err = 0;
  bool half_then_fail = false;
};

// A store at fsync = "always" on an in-memory disk under PreallocFaultIo.
struct PreallocFaults {
  PreallocFaults() {
    o = TestOptions("/db", &log);
    o.io = &io;
    o.fsync = FsyncMode::kAlways;
  }
  std::string Segment(uint32_t id) { return disk.Contents("/db/" + SegmentFileName(id)); }
  FaultyIo disk;
  PreallocFaultIo io{&disk};
  std::vector<std::string> log;
  Options o;
};

}  // namespace

TEST_CASE("a trim that fails when a segment is sealed fails that batch alone; the next one seals it") {
  PreallocFaults f;
  f.o.segment_bytes = 32 * kRec + 40;  // 32 records fill it but for 40 zero bytes to trim
  auto s = MustOpen(f.o);
  PutWrite(*s, 0, 2);
  REQUIRE(f.Segment(1).size() == f.o.segment_bytes);
  f.io.truncates = 1;  // the trim of segment 1 in the batch that seals it
  uint64_t lsn;
  for (int i = 2; i < 40; i++) REQUIRE(s->Put(Key(i), Value(i), &lsn).ok());
  Status failed = s->Flush();
  CHECK_FALSE(failed.ok());
  CHECK(failed.ToString().find("trim") != std::string::npos);
  CHECK(s->writable().ok());  // undone: the store goes on
  CHECK(GetOr(*s, Key(1)) == Value(1));
  CHECK(GetOr(*s, Key(2)) == "<absent>");
  PutWrite(*s, 2, 40);
  const std::string sealed = f.Segment(1);
  CHECK(ReadRecords(sealed).end == sealed.size());  // sealed: records alone, no zeros left
  CHECK(sealed.size() < f.o.segment_bytes);
  s.reset();
  s = MustOpen(f.o);
  for (int i = 0; i < 40; i++) CHECK(GetOr(*s, Key(i)) == Value(i));
}

TEST_CASE("a trim that fails at close leaves the close unrecorded; the next open cuts the zeros") {
  PreallocFaults f;
  auto s = MustOpen(f.o);
  PutWrite(*s, 0, 3);
  f.io.truncates = 1;
  s.reset();
  Manifest m;
  bool found = false;
  REQUIRE(ReadManifest(&f.disk, "/db", &m, &found).ok());
  REQUIRE(found);
  CHECK_FALSE(m.clean);  // not claimed: the files still hold the zeros
  CHECK(f.Segment(1).size() == 3 * kRec + (1 << 20));
  s = MustOpen(f.o);
  CHECK(LogMentions(f.log, "cut the pre-allocated space"));
  for (int i = 0; i < 3; i++) CHECK(GetOr(*s, Key(i)) == Value(i));
}

TEST_CASE("an I/O error while writing the zeros fails the batch as any write error does") {
  PreallocFaults f;
  auto s = MustOpen(f.o);
  PutWrite(*s, 0, 1);
  f.io.zero_err = EIO;
  // Past the 1 MiB filled ahead: this write's batch fills the next step.
  const std::string big(1 << 20, 'v');
  uint64_t lsn;
  REQUIRE(s->Put("big", big, &lsn).ok());
  Status failed = s->Flush();
  CHECK_FALSE(failed.ok());
  CHECK(failed.IsIOError());
  CHECK(s->writable().ok());
  CHECK(GetOr(*s, "big") == "<absent>");
  f.io.zero_err = 0;
  REQUIRE(s->Put("big", big, &lsn).ok());
  REQUIRE(s->Flush().ok());
  s.reset();
  s = MustOpen(f.o);
  CHECK(GetOr(*s, "big") == big);
  CHECK(GetOr(*s, Key(0)) == Value(0));
}

TEST_CASE("on a full disk whose truncate fails too, the zeros left after the records do no harm") {
  PreallocFaults f;
  auto s = MustOpen(f.o);
  f.io.zero_err = ENOSPC;
  f.io.half_then_fail = true;  // some zeros reach the file before the disk is full
  f.io.truncates = 1;          // and cutting them fails
  PutWrite(*s, 0, 3);
  CHECK(f.Segment(1).size() > 3 * kRec);
  f.io.zero_err = 0;
  s.reset();
  s = MustOpen(f.o);
  for (int i = 0; i < 3; i++) CHECK(GetOr(*s, Key(i)) == Value(i));
  PutWrite(*s, 3, 6);
  s.reset();
  s = MustOpen(f.o);
  for (int i = 0; i < 6; i++) CHECK(GetOr(*s, Key(i)) == Value(i));
}
