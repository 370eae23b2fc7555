// Hint files: what ReadHintFile accepts, and that a hint it refuses means a
// scan of the segment. The refused hints below all have a right CRC, as a
// writer with a bug would make them; each was found by tests/fuzz/hint_fuzz.cc
// or is of the same kind (tests/fuzz/corpus/hint_fuzz/ holds the inputs).
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "storage/coding.h"
#include "storage/crc32c.h"
#include "storage/faulty_io.h"
#include "storage/hint_file.h"
#include "storage/record_format.h"
#include "storage/store.h"

using namespace distkv::storage;

namespace {

constexpr char kDir[] = "/hint";

void WriteWhole(Io* io, const std::string& path, const std::string& data) {
  int fd;
  REQUIRE(io->Open(path, Io::kCreate | Io::kTruncate, &fd) == 0);
  size_t done = 0;
  REQUIRE(io->Write(fd, data.data(), data.size(), 0, &done) == 0);
  REQUIRE(io->Sync(fd) == 0);
  io->Close(fd);
}

// A sealed segment of three records, the next segment, and the hint of the first.
struct Files {
  std::string seg1, seg2, hint;
  Files() {
    HintBuilder b;
    const Record records[] = {{1, RecordType::kPut, "a", "one"},
                              {2, RecordType::kPut, "b", "two"},
                              {3, RecordType::kDelete, "a", ""}};
    for (const Record& r : records) {
      b.Add(r, seg1.size());
      EncodeRecord(r, &seg1);
    }
    EncodeRecord(Record{4, RecordType::kPut, "c", "four"}, &seg2);
    hint = b.Finish(seg1.size());
  }
};

// The hint with the 8 bytes at `at` set to v, and its CRC made right again.
std::string Forge(std::string hint, size_t at, uint64_t v, size_t bytes = 8) {
  char buf[8];
  EncodeFixed64(buf, v);
  hint.replace(at, bytes, buf, bytes);
  EncodeFixed32(hint.data() + hint.size() - 4, crc32c::Value(hint.data(), hint.size() - 4));
  return hint;
}

Status Read(const std::string& hint, uint64_t segment_size, size_t* entries) {
  FaultyIo io;
  REQUIRE(io.CreateDirs(kDir) == 0);
  WriteWhole(&io, std::string(kDir) + "/h", hint);
  *entries = 0;
  return ReadHintFile(&io, std::string(kDir) + "/h", segment_size,
                      [&](const HintEntry&) { ++*entries; });
}

// Opens the two segments with the given hint; the keys, values and hint count.
std::string OpenWith(const Files& f, const std::string& hint, uint64_t* hinted) {
  FaultyIo io;
  REQUIRE(io.CreateDirs(kDir) == 0);
  WriteWhole(&io, std::string(kDir) + "/" + SegmentFileName(1), f.seg1);
  WriteWhole(&io, std::string(kDir) + "/" + SegmentFileName(2), f.seg2);
  WriteWhole(&io, std::string(kDir) + "/" + HintFileName(1), hint);
  Options options;
  options.dir = kDir;
  options.io = &io;
  std::unique_ptr<Store> store;
  Status s = Store::Open(options, &store);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  std::string out;
  REQUIRE(store
              ->ForEach([&](std::string_view k, std::string_view v, uint64_t lsn) {
                out += std::string(k) + "=" + std::string(v) + "@" + std::to_string(lsn) + " ";
              })
              .ok());
  *hinted = store->Stats().hint_files;
  return out;
}

}  // namespace

TEST_CASE("a hint HintBuilder wrote is read back and recovers the scan's index") {
  Files f;
  size_t n = 0;
  Status s = Read(f.hint, f.seg1.size(), &n);
  REQUIRE_MESSAGE(s.ok(), s.ToString());
  CHECK(n == 3);
  uint64_t hinted = 0;
  CHECK(OpenWith(f, f.hint, &hinted) == "b=two@2 c=four@4 ");
  CHECK(hinted == 1);
}

TEST_CASE(
    "a hint with a right CRC but entries no writer makes is refused and the segment scanned") {
  Files f;
  // Entry layout: lsn @0, offset @8, value length @16, flags @20, key length @21, key @25.
  const size_t second = 25 + 1;  // the first entry is key "a" without expiry
  const size_t third = second + 25 + 1;
  struct Case {
    const char* what;
    std::string hint;
  } cases[] = {
      // The fuzzer's first find: an offset past what the index can hold hit an
      // assertion in KeyIndex (the process aborted at open).
      {"an offset past the segment", Forge(f.hint, 8, uint64_t{1} << 50)},
      {"entries that are not back to back", Forge(f.hint, second + 8, 10)},
      {"an unknown flag", Forge(f.hint, 20, 0x08, 1)},
      {"a tombstone and a gap at once", Forge(f.hint, third + 20, 0x03, 1)},
      {"a tombstone with a value length", Forge(f.hint, third + 16, 5, 4)},
      {"an LSN of 0", Forge(f.hint, 0, 0)},
      {"records that end before the segment", Forge(f.hint, second + 16, 2, 4)},
  };
  for (const Case& c : cases) {
    INFO(c.what);
    size_t n = 0;
    Status s = Read(c.hint, f.seg1.size(), &n);
    CHECK(s.IsCorruption());
    CHECK(n == 0);
    uint64_t hinted = 0;
    CHECK(OpenWith(f, c.hint, &hinted) == "b=two@2 c=four@4 ");
    CHECK(hinted == 0);
  }
}

TEST_CASE(
    "ReadHintEntryCount gives the trailer's entry count; a count the file cannot hold, a bad "
    "magic or a file shorter than a trailer gives none") {
  Files f;
  FaultyIo io;
  REQUIRE(io.CreateDirs(kDir) == 0);
  const std::string path = std::string(kDir) + "/h";
  auto count = [&](const std::string& hint, uint64_t* n) {
    WriteWhole(&io, path, hint);
    return ReadHintEntryCount(&io, path, n);
  };
  uint64_t n = 0;
  REQUIRE(count(f.hint, &n));
  CHECK(n == 3);
  // Trailer: segment size @-24, entry count @-16, magic @-8, CRC @-4.
  const size_t trailer = f.hint.size() - 24;
  // A forged count must not size the index past what the file holds.
  n = 0;
  CHECK_FALSE(count(Forge(f.hint, trailer + 8, uint64_t{1} << 40), &n));
  CHECK(n == 0);
  CHECK_FALSE(count(Forge(f.hint, trailer + 16, 0x12345678, 4), &n));
  CHECK_FALSE(count(f.hint.substr(f.hint.size() - 10), &n));
  CHECK_FALSE(ReadHintEntryCount(&io, std::string(kDir) + "/missing", &n));
}
