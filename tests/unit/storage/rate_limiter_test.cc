// The compaction's pacing: a RateLimiter never lets N bytes go faster than
// N / rate (less one burst), never slows a caller that is slower than the
// rate, and a compaction paced through it takes at least its bytes / rate —
// all on a fake clock, so nothing here depends on the machine's speed.
#include <doctest/doctest.h>

#include <cstring>
#include <map>

#include "storage/io.h"
#include "storage/rate_limiter.h"
#include "storage/store.h"
#include "storage/throttled_io.h"
#include "tests/unit/storage/storage_test_util.h"

using namespace distkv::storage;
using namespace distkv::storage::testing;

namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kSecond = 1'000'000'000;

// Time moves only when someone sleeps (or the test says so).
class FakeClock final : public RateLimiterClock {
 public:
  uint64_t now = 1000 * kSecond;
  uint64_t sleeps = 0;
  uint64_t NowNs() override { return now; }
  void SleepNs(uint64_t ns) override {
    now += ns;
    sleeps++;
  }
};

}  // namespace

TEST_CASE("a rate limiter lets N bytes go in no less than N / rate, less one burst") {
  FakeClock clock;
  const uint64_t start = clock.now;
  RateLimiter limiter(10 * kMiB, &clock);
  uint64_t sent = 0;
  for (uint64_t n = 1; sent < 100 * kMiB; n = n * 7 % 300'007 + 1) {  // sizes of all kinds
    limiter.Request(n);
    sent += n;
  }
  const uint64_t elapsed = clock.now - start;
  const uint64_t ideal = sent * kSecond / (10 * kMiB);
  CHECK(elapsed + RateLimiter::kBurstNs >= ideal);
  CHECK(elapsed <= ideal);  // and not slower than the rate either
  CHECK(limiter.slept_ns() == elapsed);
}

TEST_CASE("a rate limiter credits idle time only up to one burst") {
  FakeClock clock;
  RateLimiter limiter(kMiB, &clock);
  limiter.Request(kMiB);
  clock.now += 60 * kSecond;  // a minute without I/O
  const uint64_t before = clock.now;
  limiter.Request(10 * kMiB);  // is not free: 10 s of bytes, less one burst
  CHECK(clock.now - before + RateLimiter::kBurstNs >= 10 * kSecond);
}

TEST_CASE("a rate limiter never sleeps a caller slower than its rate") {
  FakeClock clock;
  RateLimiter limiter(kMiB, &clock);
  for (int i = 0; i < 100; i++) {
    limiter.Request(kMiB / 10);
    clock.now += kSecond / 5;  // the caller's own work: half the rate
  }
  CHECK(clock.sleeps == 0);
  CHECK(limiter.slept_ns() == 0);
}

TEST_CASE("LimitedIo reads and writes the same bytes, in chunks, at the rate") {
  TempDir dir;
  FakeClock clock;
  RateLimiter limiter(kMiB, &clock);
  LimitedIo io(Io::Posix(), &limiter);
  int fd;
  REQUIRE(io.Open(dir.path() + "/f", Io::kCreate | Io::kTruncate, &fd) == 0);
  std::string data(3 * kMiB + 12345, '\0');
  for (size_t i = 0; i < data.size(); i++) data[i] = static_cast<char>(i * 131 % 251);
  const uint64_t start = clock.now;
  size_t done = 0;
  REQUIRE(io.Write(fd, data.data(), data.size(), 0, &done) == 0);
  CHECK(done == data.size());
  std::string back(data.size() + 100, '\0');  // past the end: a short read
  REQUIRE(io.Read(fd, back.data(), back.size(), 0, &done) == 0);
  CHECK(done == data.size());
  CHECK(std::memcmp(back.data(), data.data(), data.size()) == 0);
  io.Close(fd);
  // 2 x 3 MiB at 1 MiB/s: at least 6 s, in many sleeps (one per chunk).
  CHECK(clock.now - start + RateLimiter::kBurstNs >= 2 * data.size() * kSecond / kMiB);
  CHECK(clock.sleeps >= 2 * data.size() / kLimitedIoChunk - 1);
}

// ThrottledIo (--slow-disk) sleeps on the real clock, RateLimiterClock::Real():
// only a lower bound is checked, which a slow machine cannot break.
TEST_CASE("ThrottledIo makes a write of N bytes take at least N / rate on the real clock") {
  TempDir dir;
  ThrottledIo io(Io::Posix(), 1'000'000);  // 1 MB/s
  int fd;
  REQUIRE(io.Open(dir.path() + "/f", Io::kCreate | Io::kTruncate, &fd) == 0);
  const std::string data(200'000, 't');
  RateLimiterClock* clock = RateLimiterClock::Real();
  const uint64_t start = clock->NowNs();
  size_t done = 0;
  REQUIRE(io.Write(fd, data.data(), data.size(), 0, &done) == 0);
  const uint64_t elapsed = clock->NowNs() - start;
  io.Close(fd);
  CHECK(done == data.size());
  CHECK(elapsed >= kSecond / 5);  // 200 kB at 1 MB/s
}

TEST_CASE("a paced compaction takes at least its input bytes / rate, and keeps every value") {
  TempDir dir;
  Options o = TestOptions(dir.path());
  o.segment_bytes = 64 << 10;
  auto s = MustOpen(o);
  std::map<std::string, std::string> want;
  uint64_t lsn;
  for (int round = 0; round < 5; round++) {
    for (int i = 0; i < 2000; i++) {
      const std::string k = "key-" + std::to_string(i);
      const std::string v = std::string(100, static_cast<char>('a' + round)) + std::to_string(i);
      REQUIRE(s->Put(k, v, &lsn).ok());
      want[k] = v;
    }
    REQUIRE(s->Flush().ok());
  }
  const uint64_t sealed = s->Stats().sealed_bytes;
  REQUIRE(sealed > 1 * kMiB);
  FakeClock clock;
  const uint64_t start = clock.now;
  CompactionOptions co;
  co.bytes_per_s = kMiB;
  co.clock = &clock;
  REQUIRE(s->Compact(co).ok());
  CHECK(s->Stats().compactions == 1);
  // Every input byte is read at least once (there are no hint files here:
  // each input is scanned), through the limiter.
  const uint64_t elapsed = clock.now - start;
  MESSAGE("sealed " << sealed << " bytes, paced for " << elapsed / 1'000'000 << " ms");
  CHECK(elapsed + RateLimiter::kBurstNs >= sealed * kSecond / kMiB);
  for (const auto& [k, v] : want) CHECK(GetOr(*s, k) == v);
}
