// Fuzz target: recovery of a shard directory (Store::Open) from arbitrary
// segment files.
//
// The input is cut into one to three segment files (000000000001.seg ...).
// Open runs on them without and with `repair`. Whenever Open succeeds the
// store must be usable and consistent:
//   - every key ForEach visits reads back (Get) with the same value;
//   - a new write commits, and a second Open of the same directory succeeds
//     and still holds that write and every key of the first open.
// A failed Open must leave the files as they were (it reports, it does not
// truncate) unless repair was asked for.
#include <fuzzer/FuzzedDataProvider.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>

#include "storage/record_format.h"
#include "storage/store.h"
#include "tests/fuzz/fuzz_store.h"

namespace {

namespace fs = std::filesystem;
using distkv::storage::Options;
using distkv::storage::Status;
using distkv::storage::Store;
using distkv::storage::fuzz::Check;
using distkv::storage::fuzz::kNewKey;
using distkv::storage::fuzz::Scan;
using distkv::storage::fuzz::WriteAndReopen;

std::string Dir() {
  // tmpfs when there is one: the target syncs files on every commit.
  static const std::string dir = [] {
    std::string base = fs::exists("/dev/shm") ? "/dev/shm" : fs::temp_directory_path().string();
    return base + "/distkv-fuzz-recovery-" + std::to_string(getpid());
  }();
  return dir;
}

std::map<std::string, std::string> Contents(const std::string& dir) {
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::ifstream in(entry.path(), std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    files[entry.path().filename().string()] = ss.str();
  }
  return files;
}

void OpenAndCheck(const std::string& dir, bool repair) {
  Options options;
  options.dir = dir;
  options.repair = repair;
  options.fsync = distkv::storage::FsyncMode::kNever;
  options.segment_bytes = 4096;
  const std::map<std::string, std::string> before = Contents(dir);
  std::unique_ptr<Store> store;
  Status s = Store::Open(options, &store);
  if (!s.ok()) {
    if (!repair) {
      std::map<std::string, std::string> after = Contents(dir);
      after.erase("LOCK");
      std::map<std::string, std::string> was = before;
      was.erase("LOCK");
      Check(after == was, "a refused Open leaves the segments alone", s);
    }
    return;
  }
  std::map<std::string, std::string> kv = Scan(store.get());
  const uint64_t lsn = WriteAndReopen(options, &store);
  Check(lsn > 0, "Put after recovery");
  kv[kNewKey] = "v";
  Check(Scan(store.get()) == kv, "the second open holds what the first had, plus the write");
  Check(store->last_lsn() >= lsn, "LSNs do not go back");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const std::string dir = Dir();
  const int segments = input.ConsumeIntegralInRange<int>(1, 3);
  std::vector<std::string> files;
  for (int i = 0; i < segments; ++i) {
    size_t n = i + 1 == segments ? input.remaining_bytes()
                                 : input.ConsumeIntegralInRange<size_t>(0, input.remaining_bytes());
    files.push_back(input.ConsumeBytesAsString(n));
  }
  for (bool repair : {false, true}) {
    fs::remove_all(dir);
    fs::create_directories(dir);
    for (size_t i = 0; i < files.size(); ++i) {
      std::ofstream out(dir + "/" + distkv::storage::SegmentFileName(i + 1), std::ios::binary);
      out.write(files[i].data(), static_cast<std::streamsize>(files[i].size()));
    }
    OpenAndCheck(dir, repair);
  }
  fs::remove_all(dir);
  return 0;
}
