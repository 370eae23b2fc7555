// HintLoader: files come back in the order asked, each with the status
// HintFile::Read gives it and, when good, its entries and their index
// hashes; a loader dropped early stops its thread. And in a store: among
// many hint files, a damaged one and a missing one each mean that segment is
// scanned while the others are loaded, and the index equals a full scan's.
#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "storage/faulty_io.h"
#include "storage/hint_file.h"
#include "storage/hint_loader.h"
#include "storage/key_index.h"
#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;
namespace fs = std::filesystem;

namespace {

constexpr char kDir[] = "/loader";
constexpr uint64_t kSeed = 0x5eed;

void WriteWhole(Io* io, const std::string& path, const std::string& data) {
  int fd;
  REQUIRE(io->Open(path, Io::kCreate | Io::kTruncate, &fd) == 0);
  size_t done = 0;
  REQUIRE(io->Write(fd, data.data(), data.size(), 0, &done) == 0);
  io->Close(fd);
}

// The hint of a segment holding `keys` puts numbered from first_lsn, its
// segment's size in *segment_size.
std::string MakeHint(uint64_t first_lsn, int keys, uint64_t* segment_size) {
  HintBuilder b;
  std::string seg;
  for (int i = 0; i < keys; i++) {
    const std::string key = "key-" + std::to_string(first_lsn + i);
    Record r{first_lsn + i, RecordType::kPut, key, "value"};
    b.Add(r, seg.size());
    EncodeRecord(r, &seg);
  }
  *segment_size = seg.size();
  return b.Finish(seg.size());
}

}  // namespace

TEST_CASE("HintLoader gives back each file in order: its status, entries and their hashes") {
  FaultyIo io;
  REQUIRE(io.CreateDirs(kDir) == 0);
  std::vector<HintLoader::Request> requests;
  // Files 0, 2 and 4 are good, 1 is missing, 3 has a flipped byte.
  for (int f = 0; f < 5; f++) {
    uint64_t size;
    std::string hint = MakeHint(1 + 1000 * f, 100 + f, &size);
    const std::string path = std::string(kDir) + "/" + std::to_string(f) + ".hint";
    if (f == 3) hint[hint.size() / 2] ^= 0x10;
    if (f != 1) WriteWhole(&io, path, hint);
    requests.push_back({path, size});
  }
  HintLoader loader(&io, kSeed, requests);
  for (int f = 0; f < 5; f++) {
    INFO("file " << f);
    const HintLoader::Loaded& got = loader.Take();
    if (f == 1) {
      CHECK(got.status.IsNotFound());
    } else if (f == 3) {
      CHECK(got.status.IsCorruption());
    } else {
      REQUIRE_MESSAGE(got.status.ok(), got.status.ToString());
      REQUIRE(got.hashes.size() == static_cast<size_t>(100 + f));
      size_t i = 0;
      HintEntry e;
      for (HintFile::Cursor c(got.file); !c.done(); i++) {
        c.Next(&e);
        CHECK(e.lsn == 1 + 1000 * f + i);
        CHECK(e.key == "key-" + std::to_string(e.lsn));
        CHECK(got.hashes[i] == KeyIndex::Hash(kSeed, e.key));
      }
      CHECK(i == got.hashes.size());
    }
    loader.Release();
  }
}

TEST_CASE("a HintLoader dropped before its last file stops its thread") {
  FaultyIo io;
  REQUIRE(io.CreateDirs(kDir) == 0);
  std::vector<HintLoader::Request> requests;
  for (int f = 0; f < 6; f++) {
    uint64_t size;
    const std::string path = std::string(kDir) + "/" + std::to_string(f) + ".hint";
    WriteWhole(&io, path, MakeHint(1 + 100 * f, 50, &size));
    requests.push_back({path, size});
  }
  {
    HintLoader loader(&io, kSeed, requests);
    CHECK(loader.Take().status.ok());
    // Not released: the thread waits for a buffer; the destructor must
    // wake and join it (a hang here fails the test run).
  }
  { HintLoader none(&io, kSeed, {}); }  // no requests, no thread
}

TEST_CASE(
    "among many hint files, a damaged one and a missing one each mean that segment is scanned; "
    "the index equals a full scan's") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 16 << 10;  // many sealed segments
  {
    auto s = MustOpen(o);
    uint64_t lsn;
    for (int round = 0; round < 3; round++) {
      for (int i = 0; i < 2000; i++) {
        REQUIRE(
            s->Put("k" + std::to_string(i), std::to_string(round) + "-" + std::to_string(i), &lsn)
                .ok());
      }
      for (int i = round; i < 2000; i += 13) REQUIRE(s->Remove("k" + std::to_string(i), &lsn).ok());
    }
    REQUIRE(s->Flush().ok());
    std::unique_ptr<StoreJob> job = s->TakeHintJob();
    REQUIRE(job);
    Status st = job->Run();
    s->FinishJob(std::move(job), st);
    REQUIRE(st.ok());
  }
  auto dump = [&](uint64_t* hint_files, std::vector<std::string>* log) {
    Options opts = o;
    opts.log = [log](std::string_view line) { log->emplace_back(line); };
    auto s = MustOpen(opts);
    std::map<std::string, std::string> sorted;
    REQUIRE(s->ForEach([&](std::string_view k, std::string_view v, uint64_t lsn) {
               sorted[std::string(k)] = std::string(v) + "@" + std::to_string(lsn);
             }).ok());
    std::string out;
    for (const auto& [k, v] : sorted) out += k + "=" + v + " ";
    const StoreStats stats = s->Stats();
    *hint_files = stats.hint_files;
    return out + "keys " + std::to_string(stats.keys) + " live " +
           std::to_string(stats.live_bytes) + " dead " + std::to_string(stats.dead_bytes) +
           " last " + std::to_string(stats.last_lsn);
  };
  std::vector<std::string> hints;
  for (const auto& e : fs::directory_iterator(dir.path())) {
    if (e.path().extension() == ".hint") hints.push_back(e.path().string());
  }
  std::sort(hints.begin(), hints.end());
  REQUIRE(hints.size() >= 8);

  std::vector<std::string> log;
  uint64_t hinted = 0;
  const std::string all = dump(&hinted, &log);
  CHECK(hinted == hints.size());

  // The third hint damaged, the sixth gone: the loader reads past both.
  std::string bytes = ReadFile(hints[2]);
  bytes[bytes.size() / 3] ^= 0x01;
  WriteFile(hints[2], bytes);
  fs::remove(hints[5]);
  log.clear();
  CHECK(dump(&hinted, &log) == all);
  CHECK(hinted == hints.size() - 2);
  size_t ignored = 0;
  for (const auto& l : log) ignored += l.find("ignoring hint file") != std::string::npos;
  CHECK(ignored == 1);  // the damaged one; a missing one is not worth a line

  for (const std::string& h : hints) fs::remove(h);
  CHECK(dump(&hinted, &log) == all);
  CHECK(hinted == 0);
}
