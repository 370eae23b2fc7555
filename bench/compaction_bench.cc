// compaction-bench: compaction and hint files, the storage engine alone, in
// process, no network.
//
//   space    N keys of 16 bytes, each written R times with 100-byte values,
//            then a compaction: segment bytes on disk / live bytes, before
//            and after, and how long the merge took.
//   restart  N keys, every sealed segment given its hint file, then the time
//            to reopen the store with the hint files (the key index sized
//            once from their entry counts, and grown as keys come, as
//            before Options::size_index_from_hints) and, after deleting
//            them, with a full scan (page cache warm every time; the first
//            open after writing is not timed; the fastest of three).
//
//   build/compaction-bench [--keys N] [--rounds R] [--restart-keys N] [--dir PATH]
#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <string>

#include "bench/storage_bench_util.h"
#include "storage/store.h"

using namespace distkv::storage;
namespace fs = std::filesystem;

namespace {

using distkv::storagebench::Clock;
using distkv::storagebench::Key;
using distkv::storagebench::Seconds;

double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
}

[[noreturn]] void Die(const char* what, const Status& s) {
  distkv::storagebench::Die("compaction-bench", what, s);
}

uint64_t SegmentBytes(const std::string& dir) {
  uint64_t n = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".seg") n += e.file_size();
  }
  return n;
}

// size_index: Options::size_index_from_hints.
std::unique_ptr<Store> Open(const std::string& dir, bool size_index = true) {
  Options o;
  o.dir = dir;
  o.fsync = FsyncMode::kNever;
  o.size_index_from_hints = size_index;
  std::unique_ptr<Store> s;
  Status st = Store::Open(o, &s);
  if (!st.ok()) Die("open", st);
  return s;
}

void Write(Store* s, uint64_t keys, uint64_t rounds, int round_tag) {
  std::string value(100, 'v');
  uint64_t lsn;
  for (uint64_t r = 0; r < rounds; r++) {
    for (uint64_t i = 0; i < keys; i++) {
      std::snprintf(value.data(), value.size(), "%d-%llu", round_tag + static_cast<int>(r),
                    static_cast<unsigned long long>(i));
      Status st = s->Put(Key(i), value, &lsn);
      if (!st.ok()) Die("put", st);
      if (i % 1024 == 1023 && !(st = s->Flush()).ok()) Die("flush", st);
    }
  }
  Status st = s->Flush();
  if (!st.ok()) Die("flush", st);
}

void Space(const std::string& dir, uint64_t keys, uint64_t rounds) {
  fs::remove_all(dir);
  auto s = Open(dir);
  Write(s.get(), keys, rounds, 0);
  const uint64_t before = SegmentBytes(dir);
  const uint64_t live = s->Stats().live_bytes;
  const auto start = Clock::now();
  Status st = s->Compact();
  if (!st.ok()) Die("compact", st);
  const double secs = Seconds(start);
  const uint64_t after = SegmentBytes(dir);
  std::printf("space: %llu keys x %llu writes, 100-byte values\n",
              static_cast<unsigned long long>(keys), static_cast<unsigned long long>(rounds));
  std::printf("  before compaction  %10.1f MB on disk, %6.2fx live (%.1f MB)\n", before / 1e6,
              static_cast<double>(before) / live, live / 1e6);
  std::printf(
      "  after compaction   %10.1f MB on disk, %6.2fx live  (merge %.2f s, %.0f MB/s read)\n",
      after / 1e6, static_cast<double>(after) / live, secs, before / 1e6 / secs);
}

void Restart(const std::string& dir, uint64_t keys) {
  fs::remove_all(dir);
  {
    auto s = Open(dir);
    Write(s.get(), keys, 1, 0);
    // Seal the last full segment and give every sealed one its hint file.
    std::unique_ptr<StoreJob> job = s->TakeHintJob();
    if (job) {
      Status st = job->Run();
      s->FinishJob(std::move(job), st);
      if (!st.ok()) Die("hints", st);
    }
  }
  { auto warm = Open(dir); }  // page cache warm for every timing
  // Each way is timed `kTries` times, alternating, and the fastest counts:
  // the machine is shared, and the fastest is the least disturbed. The CPU
  // time of the opening thread is printed beside the wall time: on a busy
  // machine it is the steadier of the two.
  constexpr int kTries = 3;
  struct Took {
    double wall = 1e9, cpu = 1e9;
  };
  auto time_open = [&](bool size_index, Took* took) {
    const double cpu0 = ThreadCpuSeconds();
    const auto start = Clock::now();
    auto s = Open(dir, size_index);
    const uint64_t n = s->size();
    s.reset();
    took->wall = std::min(took->wall, Seconds(start));
    took->cpu = std::min(took->cpu, ThreadCpuSeconds() - cpu0);
    return n;
  };
  Took sized, grown, scan;
  uint64_t n = 0;
  for (int i = 0; i < kTries; i++) {
    n = time_open(true, &sized);
    const uint64_t m = time_open(false, &grown);
    if (m != n) {
      std::fprintf(stderr, "compaction-bench: %llu keys one way, %llu the other\n",
                   static_cast<unsigned long long>(n), static_cast<unsigned long long>(m));
      std::exit(1);
    }
  }
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.path().extension() == ".hint") fs::remove(e.path());
  }
  { auto warm = Open(dir); }
  for (int i = 0; i < kTries; i++) time_open(true, &scan);
  std::printf("restart: %llu keys (%.0f MB of segments), fastest of %d opens each\n",
              static_cast<unsigned long long>(n), SegmentBytes(dir) / 1e6, kTries);
  std::printf("                                    wall             CPU\n");
  auto row = [&](const char* what, const Took& t) {
    std::printf("  %-30s %7.3f s (%.2fx)  %7.3f s (%.2fx)\n", what, t.wall, t.wall / sized.wall,
                t.cpu, t.cpu / sized.cpu);
  };
  row("hint files, index sized once", sized);
  row("hint files, index grown", grown);
  row("full scan", scan);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t keys = 100'000, rounds = 10, restart_keys = 1'000'000;
  std::string dir = "/tmp/distkv-compaction-bench";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--keys")) {
      keys = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--rounds")) {
      rounds = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--restart-keys")) {
      restart_keys = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--dir")) {
      dir = argv[i + 1];
    } else {
      std::fprintf(stderr, "usage: %s [--keys N] [--rounds R] [--restart-keys N] [--dir PATH]\n",
                   argv[0]);
      return 2;
    }
  }
  std::printf("command: %s --keys %llu --rounds %llu --restart-keys %llu\n", argv[0],
              static_cast<unsigned long long>(keys), static_cast<unsigned long long>(rounds),
              static_cast<unsigned long long>(restart_keys));
  Space(dir, keys, rounds);
  if (restart_keys > 0) Restart(dir, restart_keys);
  fs::remove_all(dir);
  return 0;
}
