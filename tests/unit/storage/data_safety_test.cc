// Data safety: damage is never mistaken for a torn write, missing LSNs are
// never ignored, reads never return bytes whose CRC fails, a failed sync is
// never retried ("fsyncgate"), and an LSN is never used twice.
#include <doctest/doctest.h>

#include <errno.h>

#include <algorithm>
#include <atomic>
#include <filesystem>

#include "storage/coding.h"
#include "storage/io.h"
#include "storage/record_format.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;

namespace {

bool Mentions(std::string_view text, std::string_view word) {
  return text.find(word) != std::string_view::npos;
}

// n puts of 40-byte values under keys k0..k(n-1), closed cleanly.
void Fill(const Options& o, int n) {
  auto s = MustOpen(o);
  uint64_t lsn;
  for (int i = 0; i < n; i++)
    REQUIRE(s->Put("k" + std::to_string(i), std::string(40, 'v'), &lsn).ok());
  REQUIRE(s->Flush().ok());
}

Status TryOpen(const Options& o) {
  std::unique_ptr<Store> s;
  return Store::Open(o, &s);
}

// Writes bytes over a segment as a crash left them, then opens the store
// through a read-counting Io: Open's verdict and the largest read it made.
struct DamagedOpen {
  Status status;
  size_t max_read = 0;
};
DamagedOpen OpenDamaged(Options o, const std::string& segment, const std::string& bytes) {
  WriteFile(segment, bytes);
  MarkCrashed(o.dir);
  ReadCountingIo io;
  o.io = &io;
  DamagedOpen out;
  out.status = TryOpen(o);
  out.max_read = io.max_read;
  return out;
}

constexpr uint64_t kRec = EncodedRecordSize(2, 40);  // k0..k9

}  // namespace

TEST_CASE(
    "damage inside the newest segment with valid records after it stops Open; --repair cuts") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  Fill(o, 9);  // k0..k8, one segment
  const std::string seg = dir.file(SegmentFileName(1));
  std::string bytes = ReadFile(seg);
  REQUIRE(bytes.size() == 9 * kRec);
  bytes[3 * kRec + 30] ^= 0x04;  // a third of the way in: k3's value
  WriteFile(seg, bytes);
  MarkCrashed(dir.path());  // even after a crash: valid records follow, so it is not a torn tail

  Status st = TryOpen(o);
  CHECK(st.IsCorruption());
  CHECK(Mentions(st.message(), SegmentFileName(1)));
  CHECK(Mentions(st.message(), "offset " + std::to_string(3 * kRec)));
  CHECK(Mentions(st.message(), "--repair"));
  CHECK(std::filesystem::file_size(seg) == 9 * kRec);  // untouched

  std::vector<std::string> log;
  Options repair = TestOptions(dir.path(), &log);
  repair.repair = true;
  auto s = MustOpen(repair);
  CHECK(std::filesystem::file_size(seg) == 3 * kRec);
  const std::string kept =
      dir.file(SegmentFileName(1) + "." + std::to_string(3 * kRec) + ".corrupt");
  CHECK(ReadFile(kept) == bytes.substr(3 * kRec));
  CHECK(LogMentions(log, ".corrupt"));
  CHECK(GetOr(*s, "k2") == std::string(40, 'v'));
  CHECK(GetOr(*s, "k3") == "<absent>");
  CHECK(s->size() == 3);
  uint64_t lsn;
  REQUIRE(s->Put("new", "x", &lsn).ok());
  CHECK(lsn > 9);  // LSNs 4-9 were handed out before: never again
  REQUIRE(s->Flush().ok());
  s.reset();
  s = MustOpen(o);  // repaired for good
  CHECK(GetOr(*s, "new") == "x");
}

TEST_CASE("a damaged length field is damage, and never makes recovery hold the rest of the file") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  const std::string value(64 << 10, 'v');
  {
    auto s = MustOpen(o);
    uint64_t lsn;
    for (int i = 0; i < 200; i++) REQUIRE(s->Put("k" + std::to_string(i % 10), value, &lsn).ok());
    REQUIRE(s->Flush().ok());
  }
  const std::string seg = dir.file(SegmentFileName(1));
  std::string bytes = ReadFile(seg);
  const uint64_t rec = EncodedRecordSize(2, value.size());
  // Record 5's value length now claims about 12 MiB: inside the 13 MiB file.
  EncodeFixed32(bytes.data() + 5 * rec + 17, 12u << 20);
  DamagedOpen open = OpenDamaged(o, seg, bytes);
  CHECK(open.status.IsCorruption());
  CHECK(Mentions(open.status.message(), "offset " + std::to_string(5 * rec)));
  CHECK(open.max_read <= (4u << 20));  // the scan's buffer, never the rest of the file
}

TEST_CASE("a valid record larger than recovery's read window after damage is still found") {
  // Its CRC is streamed past the 1 MiB window: missing it would read the
  // damage as a torn tail and cut a record that was acknowledged.
  TempDir dir;
  Options o = TestOptions(dir.path());
  const std::string big(3 << 20, 'b');
  {
    auto s = MustOpen(o);
    uint64_t lsn;
    REQUIRE(s->Put("k0", std::string(40, 'v'), &lsn).ok());
    REQUIRE(s->Put("k1", std::string(40, 'v'), &lsn).ok());
    REQUIRE(s->Put("big", big, &lsn).ok());
    REQUIRE(s->Flush().ok());
  }
  const std::string seg = dir.file(SegmentFileName(1));
  std::string bytes = ReadFile(seg);
  bytes[kRec + 30] ^= 0x04;  // k1's value
  DamagedOpen open = OpenDamaged(o, seg, bytes);
  CHECK(open.status.IsCorruption());
  CHECK(Mentions(open.status.message(),
                 "valid records follow at offset " + std::to_string(2 * kRec)));
  CHECK(std::filesystem::file_size(seg) == bytes.size());  // nothing cut
  CHECK(open.max_read <= (4u << 20));
}

TEST_CASE("an I/O error while looking past a bad record stops Open and cuts nothing") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  Fill(o, 9);
  const std::string seg = dir.file(SegmentFileName(1));
  std::string bytes = ReadFile(seg);
  bytes[3 * kRec + 30] ^= 0x04;
  WriteFile(seg, bytes);
  MarkCrashed(dir.path());

  // The scan reads the small segment from offset 0 in one go; every read
  // inside it after that is the look past the bad record, and fails.
  class FailingReadIo : public IoWrapper {
   public:
    explicit FailingReadIo(uint64_t size) : IoWrapper(Io::Posix()), size_(size) {}
    int Read(int handle, char* data, size_t n, uint64_t off, size_t* done) override {
      if (off > 0 && off < size_) return EIO;
      return IoWrapper::Read(handle, data, n, off, done);
    }

   private:
    uint64_t size_;
  } io(bytes.size());
  o.io = &io;
  Status st = TryOpen(o);
  CHECK(st.IsIOError());
  CHECK(ReadFile(seg) == bytes);  // untouched: neither cut as torn nor repaired
}

TEST_CASE("a sealed segment deleted or cut at a record boundary stops Open naming the LSNs") {
  for (const char* damage : {"delete", "cut"}) {
    CAPTURE(damage);
    TempDir dir;
    Options o = TestOptions(dir.path());
    o.segment_bytes = 4 * kRec;  // four records a segment
    Fill(o, 10);                 // LSNs 1-4, 5-8, 9-10
    const std::string seg2 = dir.file(SegmentFileName(2));
    if (std::string(damage) == "delete") {
      std::filesystem::remove(seg2);
    } else {
      std::filesystem::resize_file(seg2, 2 * kRec);  // LSNs 7 and 8 gone
    }
    Status st = TryOpen(o);
    CHECK(st.IsCorruption());
    CHECK(Mentions(st.message(), std::string(damage) == "delete" ? "LSNs 5-8" : "LSNs 7-8"));
    CHECK(Mentions(st.message(), "missing"));
    CHECK(Mentions(st.message(), "--repair"));

    o.repair = true;
    auto s = MustOpen(o);
    CHECK(GetOr(*s, "k7") == "<absent>");  // LSN 8
    CHECK(GetOr(*s, "k8") == std::string(40, 'v'));
    s.reset();
    o.repair = false;
    s = MustOpen(o);  // the MANIFEST now records the gap
    CHECK(GetOr(*s, "k9") == std::string(40, 'v'));
  }
}

TEST_CASE("the newest segment deleted, or cut after a clean close, stops Open naming the LSNs") {
  SUBCASE("deleted") {
    TempDir dir;
    Options o = TestOptions(dir.path());
    o.segment_bytes = 4 * kRec;
    Fill(o, 10);
    std::filesystem::remove(dir.file(SegmentFileName(3)));
    Status st = TryOpen(o);
    CHECK(st.IsCorruption());
    CHECK(Mentions(st.message(), SegmentFileName(3)));
    CHECK(Mentions(st.message(), "LSNs 9-10"));
  }
  SUBCASE("deleted after a crash") {
    TempDir dir;
    Options o = TestOptions(dir.path());
    o.segment_bytes = 4 * kRec;
    Fill(o, 10);
    MarkCrashed(dir.path());
    std::filesystem::remove(dir.file(SegmentFileName(3)));
    Status st = TryOpen(o);
    CHECK(st.IsCorruption());
    CHECK(Mentions(st.message(), SegmentFileName(3)));
    CHECK(Mentions(st.message(), "from LSN 9"));
  }
  SUBCASE("cut at a record boundary") {
    TempDir dir;
    Options o = TestOptions(dir.path());
    Fill(o, 10);
    std::filesystem::resize_file(dir.file(SegmentFileName(1)), 7 * kRec);
    Status st = TryOpen(o);
    CHECK(st.IsCorruption());
    CHECK(Mentions(st.message(), "LSNs 8-10"));
  }
}

TEST_CASE("a read checks the record's CRC: changed bytes are an error naming file and offset") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  auto s = MustOpen(o);
  uint64_t lsn;
  REQUIRE(s->Put("a", "first value", &lsn).ok());
  REQUIRE(s->Put("b", "second value", &lsn).ok());
  REQUIRE(s->Flush().ok());
  const std::string seg = dir.file(SegmentFileName(1));
  std::string bytes = ReadFile(seg);
  const uint64_t b_off = EncodedRecordSize(1, 11);
  bytes[b_off + kRecordHeaderBytes + 1 + 3] = 'X';  // "secXnd value", behind the store's back
  {
    // Rewrite in place (the store's descriptor sees it, as with a disk error).
    FILE* f = std::fopen(seg.c_str(), "r+b");
    REQUIRE(f != nullptr);
    std::fwrite(bytes.data(), 1, bytes.size(), f);
    std::fclose(f);
  }
  std::string v;
  Status st = s->Get("b", &v);
  CHECK(st.IsCorruption());
  CHECK(Mentions(st.message(), seg));
  CHECK(Mentions(st.message(), "offset " + std::to_string(b_off)));
  CHECK(v.empty());
  CHECK(GetOr(*s, "a") == "first value");
  CHECK(s->ForEach([](std::string_view, std::string_view, uint64_t) {}).IsCorruption());
}

TEST_CASE("fsyncgate: a failed sync is never retried; the store turns read-only and says why") {
  for (FsyncMode mode : {FsyncMode::kAlways, FsyncMode::kEverySec}) {
    CAPTURE(FsyncModeName(mode));
    TempDir dir;
    std::atomic<bool> fail{false};
    std::atomic<bool> after{false};
    std::atomic<int> steps_after_failure{0};
    Options o = TestOptions(dir.path());
    o.fsync = mode;
    o.fault_hook = [&](std::string_view step) {
      if (after) steps_after_failure++;
      return step == "sync" && fail ? EIO : 0;
    };
    auto s = MustOpen(o);
    uint64_t lsn;
    REQUIRE(s->Put("a", "acknowledged", &lsn).ok());
    REQUIRE(s->Flush().ok());
    REQUIRE(s->Put("b", "in the failing batch", &lsn).ok());
    auto b = s->TakeBatch(/*force_sync=*/true);
    REQUIRE(b != nullptr);
    REQUIRE(s->Put("c", "staged after it", &lsn).ok());
    fail = true;
    Status run = b->Run();
    CHECK(run.IsIOError());
    const Status told = s->FinishBatch(std::move(b), run);
    if (mode == FsyncMode::kAlways) {
      // Written but not known to be durable: not "failed", not "OK".
      CHECK(told.IsIOError());
      CHECK(Mentions(told.message(), "may or may not"));
    } else {
      CHECK(told.ok());  // everysec promised written, and it is
    }
    CHECK(GetOr(*s, "b") == "in the failing batch");  // on file: kept
    CHECK(GetOr(*s, "c") == "<absent>");              // never written: really undone
    CHECK(s->last_lsn() == 2);
    CHECK(s->Stats().read_only);
    CHECK(Mentions(s->writable().message(), "restart"));
    CHECK(s->Put("d", "refused", &lsn).IsIOError());
    // Nothing is retried: no batch, no write, no sync, not even at close.
    fail = false;
    after = true;
    CHECK(s->TakeBatch(true) == nullptr);
    s.reset();
    CHECK(steps_after_failure == 0);
    s = MustOpen(TestOptions(dir.path()));
    CHECK(GetOr(*s, "a") == "acknowledged");
    CHECK(s->writable().ok());
  }
}

TEST_CASE(
    "a store read-only after a failed sync plans no hint file nor compaction until reopened") {
  TempDir dir;
  bool fail = false;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 64;  // each record below starts a segment, sealing the one before
  o.fault_hook = [&](std::string_view step) { return step == "sync" && fail ? EIO : 0; };
  auto s = MustOpen(o);
  uint64_t lsn;
  REQUIRE(s->Put("a", std::string(100, 'a'), &lsn).ok());
  REQUIRE(s->Put("b", std::string(100, 'b'), &lsn).ok());
  REQUIRE(s->Flush().ok());  // segment 1 sealed and synced: it is owed a hint file
  REQUIRE(s->Put("c", "c", &lsn).ok());
  auto b = s->TakeBatch(/*force_sync=*/true);
  REQUIRE(b != nullptr);
  fail = true;
  const Status run = b->Run();
  CHECK(run.IsIOError());
  s->FinishBatch(std::move(b), run);
  REQUIRE(s->Stats().read_only);
  CHECK(s->TakeHintJob() == nullptr);
  CHECK(s->TakeCompaction(CompactionOptions{}) == nullptr);
  s.reset();
  fail = false;
  s = MustOpen(o);
  CHECK(s->TakeHintJob() != nullptr);  // the reopened store writes it
}

TEST_CASE("a sync-only batch that fails also turns the store read-only") {
  TempDir dir;
  bool fail = false;
  Options o = TestOptions(dir.path());
  o.fsync = FsyncMode::kEverySec;
  o.fault_hook = [&](std::string_view step) { return step == "sync" && fail ? EIO : 0; };
  auto s = MustOpen(o);
  uint64_t lsn;
  REQUIRE(s->Put("a", "1", &lsn).ok());
  REQUIRE(s->Flush().ok());  // written, not synced (under a second)
  auto b = s->TakeBatch(true);
  REQUIRE(b != nullptr);
  CHECK(b->records() == 0);
  fail = true;
  Status run = b->Run();
  CHECK_FALSE(s->FinishBatch(std::move(b), run).ok());
  CHECK(s->Stats().read_only);
  CHECK(s->Put("b", "2", &lsn).IsIOError());
}

TEST_CASE(
    "a file that reads shorter than its size while recovery looks past a bad record stops Open") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  Fill(o, 9);
  const std::string seg = dir.file(SegmentFileName(1));
  std::string bytes = ReadFile(seg) + std::string(4096, '\0');  // zeros after the last record
  WriteFile(seg, bytes);
  MarkCrashed(dir.path());

  // As if the file shrank under recovery: every read after the scan's first
  // finds the end of the file. The zeros cannot be checked, so they are not
  // taken for zeros (nor is the check stuck at the same offset forever).
  class ShortReadIo : public IoWrapper {
   public:
    ShortReadIo() : IoWrapper(Io::Posix()) {}
    int Read(int handle, char* data, size_t n, uint64_t off, size_t* done) override {
      if (off > 0) {
        *done = 0;
        return 0;
      }
      return IoWrapper::Read(handle, data, n, off, done);
    }
  } io;
  o.io = &io;
  Status st = TryOpen(o);
  CHECK(st.IsCorruption());
  CHECK(Mentions(st.message(), "short read"));
  CHECK(ReadFile(seg) == bytes);  // untouched

  o.io = nullptr;  // read as it is, the zeros are space no write reached: cut
  auto s = MustOpen(o);
  CHECK(s->size() == 9);
  CHECK(std::filesystem::file_size(seg) == 9 * kRec);
}
