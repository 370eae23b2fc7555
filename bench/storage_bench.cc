// storage-bench: the storage engine alone, in process, no network.
//
// For each fsync mode: N puts of 16-byte keys and 100-byte values, staged in
// batches of B and committed with TakeBatch/Run/FinishBatch on this thread,
// then N gets of random existing keys (index probe + pread, page cache warm).
// "always, pipelined" is the server's shape: the batch runs on a second
// thread while the next one is staged (at most B staged; then it waits), and
// each batch takes whatever was staged when the previous one finished. Then
// the time to reopen the store (recovery: scan + CRC + index rebuild), and the
// memory the key index needs per key, next to a std::unordered_map<std::string,
// Entry> holding the same keys (both measured as malloc'd bytes, mallinfo2).
//
//   build/storage-bench [--keys N] [--batch N] [--dir PATH]
#include <malloc.h>
#include <unistd.h>

#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench/storage_bench_util.h"
#include "storage/key_index.h"
#include "storage/store.h"

using namespace distkv::storage;

namespace {

using distkv::storagebench::Clock;
using distkv::storagebench::Key;
using distkv::storagebench::Seconds;

[[noreturn]] void Die(const char* what, const Status& s) {
  distkv::storagebench::Die("storage-bench", what, s);
}

uint64_t NextRandom(uint64_t* x) {
  *x ^= *x << 13;
  *x ^= *x >> 7;
  *x ^= *x << 17;
  return *x;
}

double CpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

size_t HeapInUse() { return mallinfo2().uordblks; }

// The machine's 1-minute load average: figures taken on a busy machine say so.
std::string LoadAverage() {
  double load[3];
  if (getloadavg(load, 3) != 3) return "?";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", load[0]);
  return buf;
}

// What a std::unordered_map-based index would hold per key.
struct MapEntry {
  uint32_t segment;
  uint64_t offset;
  uint32_t value_len;
  uint64_t lsn;
};

struct Config {
  uint64_t keys = 1000000;
  uint64_t batch = 500;
  std::string dir;
};

void RunMode(const Config& cfg, FsyncMode mode, bool pipelined, bool measure_reopen) {
  const std::string dir =
      cfg.dir + "/" + std::string(FsyncModeName(mode)) + (pipelined ? "-pipelined" : "");
  Options o;
  o.dir = dir;
  o.fsync = mode;
  std::unique_ptr<Store> store;
  Status s = Store::Open(o, &store);
  if (!s.ok()) Die("open", s);

  const std::string value(100, 'v');
  auto start = Clock::now();
  uint64_t lsn;
  std::unique_ptr<WriteBatch> in_flight;
  std::future<Status> result;
  auto finish = [&] {
    Status r = result.get();
    store->FinishBatch(std::move(in_flight), r);
    if (!r.ok()) Die("batch", r);
  };
  for (uint64_t i = 0; i < cfg.keys; i++) {
    s = store->Put(Key(i), value, &lsn);
    if (!s.ok()) Die("put", s);
    const bool last = i + 1 == cfg.keys;
    if (pipelined) {
      // Start a batch whenever none is running; wait only when B are staged.
      const bool full = (i + 1) % cfg.batch == 0;
      if (in_flight &&
          (full || last || result.wait_for(std::chrono::seconds(0)) == std::future_status::ready)) {
        finish();
      }
      if (!in_flight) {
        in_flight = store->TakeBatch();
        WriteBatch* b = in_flight.get();
        if (b) result = std::async(std::launch::async, [b] { return b->Run(); });
      }
      if (last && in_flight) finish();
    } else if ((i + 1) % cfg.batch == 0 || last) {
      std::unique_ptr<WriteBatch> b = store->TakeBatch();
      s = b->Run();
      store->FinishBatch(std::move(b), s);
      if (!s.ok()) Die("batch", s);
    }
  }
  if (store->HasStaged()) {
    s = store->Flush();
    if (!s.ok()) Die("flush", s);
  }
  const double put_secs = Seconds(start);

  uint64_t x = 0x9E3779B97F4A7C15ull;
  std::string got;
  start = Clock::now();
  for (uint64_t i = 0; i < cfg.keys; i++) {
    s = store->Get(Key(NextRandom(&x) % cfg.keys), &got);
    if (!s.ok() || got.size() != value.size()) Die("get", s);
  }
  const double get_secs = Seconds(start);
  const StoreStats st = store->Stats();
  const std::string name = std::string(FsyncModeName(mode)) + (pipelined ? ", pipelined" : "");
  std::printf("fsync=%-19s put %9.0f ops/s  (%7llu batches, %7llu syncs)   get %9.0f ops/s\n",
              name.c_str(), cfg.keys / put_secs, static_cast<unsigned long long>(st.batches),
              static_cast<unsigned long long>(st.syncs), cfg.keys / get_secs);
  std::fflush(stdout);

  if (measure_reopen) {
    store.reset();
    ::sync();  // the log's writeback is not part of recovery: let it finish first
    start = Clock::now();
    const double cpu_start = CpuSeconds();
    s = Store::Open(o, &store);
    if (!s.ok()) Die("reopen", s);
    const double open_secs = Seconds(start);
    const double open_cpu = CpuSeconds() - cpu_start;
    const StoreStats after = store->Stats();
    std::printf("reopen: recovered %llu keys from %.0f MB of log in %.0f ms (%.0f ms of CPU)\n",
                static_cast<unsigned long long>(after.keys),
                (after.live_bytes + after.dead_bytes) / 1e6, open_secs * 1e3, open_cpu * 1e3);
    std::printf("index in the store (StoreStats::index_bytes): %.1f bytes/key beyond the key\n",
                static_cast<double>(after.index_bytes) / after.keys - 16);
  }
  store.reset();
  std::filesystem::remove_all(dir);
}

void MeasureIndexMemory(const Config& cfg) {
  double index_per_key, map_per_key;
  {
    const size_t before = HeapInUse();
    auto idx = std::make_unique<KeyIndex>();
    IndexEntry e;
    for (uint64_t i = 0; i < cfg.keys; i++) {
      e.lsn = i + 1;
      e.offset = i * 137;
      e.value_len = 100;
      e.segment = 1;
      idx->Put(Key(i), e);
    }
    index_per_key = static_cast<double>(HeapInUse() - before) / cfg.keys - 16;
  }
  {
    const size_t before = HeapInUse();
    auto map = std::make_unique<std::unordered_map<std::string, MapEntry>>();
    for (uint64_t i = 0; i < cfg.keys; i++) (*map)[Key(i)] = MapEntry{1, i * 137, 100, i + 1};
    map_per_key = static_cast<double>(HeapInUse() - before) / cfg.keys - 16;
  }
  std::printf(
      "index memory, %llu keys of 16 B (malloc'd bytes per key beyond the key):\n"
      "  KeyIndex                                  %5.1f\n"
      "  std::unordered_map<std::string, Entry>    %5.1f   (%.2fx)\n",
      static_cast<unsigned long long>(cfg.keys), index_per_key, map_per_key,
      map_per_key / index_per_key);
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  std::string command = argv[0];
  for (int i = 1; i < argc; i++) {
    const std::string arg = argv[i];
    command += " " + arg;
    if (i + 1 < argc && (arg == "--keys" || arg == "--batch" || arg == "--dir")) {
      const std::string v = argv[++i];
      command += " " + v;
      if (arg == "--keys") cfg.keys = std::strtoull(v.c_str(), nullptr, 10);
      if (arg == "--batch") cfg.batch = std::strtoull(v.c_str(), nullptr, 10);
      if (arg == "--dir") cfg.dir = v;
    } else {
      std::fprintf(stderr, "usage: %s [--keys N] [--batch N] [--dir PATH]\n", argv[0]);
      return 2;
    }
  }
  if (cfg.keys == 0 || cfg.batch == 0) {
    std::fprintf(stderr, "storage-bench: --keys and --batch must be positive\n");
    return 2;
  }
  bool own_dir = cfg.dir.empty();
  if (own_dir) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "storage-bench-XXXXXX").string();
    if (!::mkdtemp(tmpl.data())) {
      std::perror("mkdtemp");
      return 1;
    }
    cfg.dir = tmpl;
  }
  std::printf("command: %s\n", command.c_str());
  std::printf("load average at the start: %s\n", LoadAverage().c_str());
  std::printf("%llu puts (16 B keys, 100 B values, batches of %llu), then %llu random gets\n",
              static_cast<unsigned long long>(cfg.keys), static_cast<unsigned long long>(cfg.batch),
              static_cast<unsigned long long>(cfg.keys));
  std::fflush(stdout);
  RunMode(cfg, FsyncMode::kAlways, /*pipelined=*/false, /*measure_reopen=*/false);
  RunMode(cfg, FsyncMode::kAlways, /*pipelined=*/true, /*measure_reopen=*/false);
  RunMode(cfg, FsyncMode::kEverySec, false, false);
  RunMode(cfg, FsyncMode::kNever, false, /*measure_reopen=*/true);
  MeasureIndexMemory(cfg);
  std::printf("load average at the end: %s\n", LoadAverage().c_str());
  if (own_dir) std::filesystem::remove_all(cfg.dir);
  return 0;
}
