// RateLimiter: paces a background job's disk I/O to a byte rate, so that a
// compaction spreads its reads and writes over time instead of taking the
// CPU and the disk in one burst while requests are served (RocksDB's
// rate_limiter, for one caller).
//
// The limiter keeps the time at which the bytes granted so far will have
// "drained" at bytes_per_s. Request(n) adds n bytes' worth of time to it and
// sleeps until then. Time the caller left the limiter unused is credited
// only up to one burst (a tenth of a second of bytes, as RocksDB's refill
// period), so a job that paused does not then run unpaced. Hence: any N
// bytes requested take at least N / bytes_per_s - 0.1 s, whatever their
// sizes, and a caller slower than the rate is never slept.
//
// LimitedIo puts a RateLimiter in front of another Io's reads and writes:
// each is split into chunks of at most kLimitedIoChunk bytes, each charged
// before it goes. Short calls also keep the job's time in the kernel short,
// so a request's thread waiting for the CPU it runs on waits less.
#pragma once

#include <cstdint>

#include "storage/io_wrapper.h"

namespace distkv::storage {

// Where a RateLimiter's time comes from; tests pass one whose sleeps move a
// fake clock.
class RateLimiterClock {
 public:
  virtual ~RateLimiterClock() = default;
  virtual uint64_t NowNs() = 0;
  virtual void SleepNs(uint64_t ns) = 0;
  // The process's monotonic clock and nanosleep.
  static RateLimiterClock* Real();
};

class RateLimiter {
 public:
  // bytes_per_s > 0; clock is not owned (nullptr: RateLimiterClock::Real()).
  RateLimiter(uint64_t bytes_per_s, RateLimiterClock* clock);

  // Returns once n more bytes may go.
  void Request(uint64_t n);

  uint64_t bytes_per_s() const { return bytes_per_s_; }
  uint64_t slept_ns() const { return slept_ns_; }  // in Request, in all

  static constexpr uint64_t kBurstNs = 100'000'000;

 private:
  const uint64_t bytes_per_s_;
  RateLimiterClock* const clock_;
  uint64_t drained_ns_ = 0;  // when the bytes granted so far will have gone
  uint64_t carry_ = 0;       // of that, the part of a nanosecond (x bytes_per_s_)
  uint64_t slept_ns_ = 0;
};

constexpr size_t kLimitedIoChunk = 256 << 10;

class LimitedIo final : public IoWrapper {
 public:
  // base and limiter are not owned.
  LimitedIo(Io* base, RateLimiter* limiter) : IoWrapper(base), limiter_(limiter) {}

  int Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) override;
  int Read(int handle, char* data, size_t n, uint64_t off, size_t* done) override;

 private:
  template <typename Op>
  int Paced(size_t n, size_t* done, Op op);

  RateLimiter* limiter_;
};

}  // namespace distkv::storage
