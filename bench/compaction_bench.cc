// compaction-bench: compaction and hint files, the storage engine alone, in
// process, no network.
//
//   space    N keys of 16 bytes, each written R times with 100-byte values,
//            then a compaction: segment bytes on disk / live bytes, before
//            and after, and how long the merge took.
//   restart  N keys, every sealed segment given its hint file, then the time
//            to open the store with the hint files (the key index sized
//            once from their entry counts, and grown as keys come, as
//            before Options::size_index_from_hints) and, after deleting
//            them, with a full scan (page cache warm every time; the first
//            open after writing is not timed; the fastest of three). An
//            open is timed until Store::Open returns: the close is not part
//            of a restart. Wall time, the opening thread's CPU time and the
//            process's (recovery reads hint files on a second thread).
//
//   build/compaction-bench [--keys N] [--rounds R] [--restart-keys N] [--dir PATH]
//
// Two more modes serve scripts/bench-restart-ab.sh, which times the opens of
// two builds alternately on the same files:
//
//   build/compaction-bench --make-store PATH [--restart-keys N]
//       writes the restart store (N keys, hint files) at PATH and keeps it
//   build/compaction-bench --reopen PATH
//       opens the store at PATH once and prints one line: its keys, wall
//       time, thread CPU time and process CPU time of the open
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

double CpuSeconds(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
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

// N keys, each sealed segment with its hint file; the first open after
// writing (which warms the page cache) is not timed.
void MakeRestartStore(const std::string& dir, uint64_t keys) {
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
  { auto warm = Open(dir); }
}

struct Took {
  double wall = 1e9, cpu = 1e9, process_cpu = 1e9;
};

// Opens the store at dir and keeps the fastest figures in *took; returns the
// keys it holds. Only Store::Open is timed.
uint64_t TimeOpen(const std::string& dir, bool size_index, Took* took) {
  const double cpu0 = CpuSeconds(CLOCK_THREAD_CPUTIME_ID);
  const double process0 = CpuSeconds(CLOCK_PROCESS_CPUTIME_ID);
  const auto start = Clock::now();
  auto s = Open(dir, size_index);
  took->wall = std::min(took->wall, Seconds(start));
  took->cpu = std::min(took->cpu, CpuSeconds(CLOCK_THREAD_CPUTIME_ID) - cpu0);
  took->process_cpu = std::min(took->process_cpu, CpuSeconds(CLOCK_PROCESS_CPUTIME_ID) - process0);
  return s->size();
}

void Restart(const std::string& dir, uint64_t keys) {
  MakeRestartStore(dir, keys);
  // Each way is timed `kTries` times, alternating, and the fastest counts:
  // the machine is shared, and the fastest is the least disturbed. The CPU
  // time of the opening thread is printed beside the wall time: on a busy
  // machine it is the steadier of the two.
  constexpr int kTries = 3;
  Took sized, grown, scan;
  uint64_t n = 0;
  for (int i = 0; i < kTries; i++) {
    n = TimeOpen(dir, true, &sized);
    const uint64_t m = TimeOpen(dir, false, &grown);
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
  for (int i = 0; i < kTries; i++) TimeOpen(dir, true, &scan);
  std::printf("restart: %llu keys (%.0f MB of segments), fastest of %d opens each\n",
              static_cast<unsigned long long>(n), SegmentBytes(dir) / 1e6, kTries);
  std::printf(
      "                                    wall               CPU (thread)       CPU (process)\n");
  auto row = [&](const char* what, const Took& t) {
    std::printf("  %-30s %7.3f s (%.2fx)  %7.3f s (%.2fx)  %7.3f s (%.2fx)\n", what, t.wall,
                t.wall / sized.wall, t.cpu, t.cpu / sized.cpu, t.process_cpu,
                t.process_cpu / sized.process_cpu);
  };
  row("hint files, index sized once", sized);
  row("hint files, index grown", grown);
  row("full scan", scan);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t keys = 100'000, rounds = 10, restart_keys = 1'000'000;
  std::string dir = "/tmp/distkv-compaction-bench";
  std::string make_store, reopen;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--keys")) {
      keys = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--rounds")) {
      rounds = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--restart-keys")) {
      restart_keys = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (!std::strcmp(argv[i], "--dir")) {
      dir = argv[i + 1];
    } else if (!std::strcmp(argv[i], "--make-store")) {
      make_store = argv[i + 1];
    } else if (!std::strcmp(argv[i], "--reopen")) {
      reopen = argv[i + 1];
    } else {
      std::fprintf(stderr,
                   "usage: %s [--keys N] [--rounds R] [--restart-keys N] [--dir PATH]\n"
                   "       %s --make-store PATH [--restart-keys N]\n"
                   "       %s --reopen PATH\n",
                   argv[0], argv[0], argv[0]);
      return 2;
    }
  }
  if (!make_store.empty()) {
    MakeRestartStore(make_store, restart_keys);
    return 0;
  }
  if (!reopen.empty()) {
    Took t;
    const uint64_t n = TimeOpen(reopen, true, &t);
    std::printf("reopen: %llu keys, wall %.3f s, thread CPU %.3f s, process CPU %.3f s\n",
                static_cast<unsigned long long>(n), t.wall, t.cpu, t.process_cpu);
    return 0;
  }
  std::printf("command: %s --keys %llu --rounds %llu --restart-keys %llu\n", argv[0],
              static_cast<unsigned long long>(keys), static_cast<unsigned long long>(rounds),
              static_cast<unsigned long long>(restart_keys));
  Space(dir, keys, rounds);
  if (restart_keys > 0) Restart(dir, restart_keys);
  fs::remove_all(dir);
  return 0;
}
