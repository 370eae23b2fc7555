// RateLimiter and LimitedIo; the mechanism is described in rate_limiter.h.
#include "storage/rate_limiter.h"

#include <time.h>

#include <algorithm>
#include <cerrno>

namespace distkv::storage {

namespace {

constexpr uint64_t kNsPerS = 1'000'000'000;

class MonotonicClock final : public RateLimiterClock {
 public:
  uint64_t NowNs() override {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<uint64_t>(ts.tv_sec) * kNsPerS + static_cast<uint64_t>(ts.tv_nsec);
  }
  void SleepNs(uint64_t ns) override {
    timespec ts{static_cast<time_t>(ns / kNsPerS), static_cast<long>(ns % kNsPerS)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
  }
};

}  // namespace

RateLimiterClock* RateLimiterClock::Real() {
  static MonotonicClock clock;  // stateless: shared by every limiter
  return &clock;
}

RateLimiter::RateLimiter(uint64_t bytes_per_s, RateLimiterClock* clock)
    : bytes_per_s_(std::max<uint64_t>(bytes_per_s, 1)),
      clock_(clock ? clock : RateLimiterClock::Real()) {}

void RateLimiter::Request(uint64_t n) {
  const uint64_t now = clock_->NowNs();
  // Idle time is credited up to one burst, no more.
  if (drained_ns_ + kBurstNs < now) drained_ns_ = now - std::min(now, kBurstNs);
  // n bytes' worth of nanoseconds, exactly: what the division leaves over
  // is carried into the next call, so many small calls add up to the rate.
  const unsigned __int128 scaled = static_cast<unsigned __int128>(n) * kNsPerS + carry_;
  drained_ns_ += static_cast<uint64_t>(scaled / bytes_per_s_);
  carry_ = static_cast<uint64_t>(scaled % bytes_per_s_);
  if (drained_ns_ <= now) return;
  const uint64_t wait = drained_ns_ - now;
  clock_->SleepNs(wait);
  slept_ns_ += wait;
}

// Cuts one call into chunks, each charged to the limiter before it goes;
// stops at a short transfer, which the caller sees as from the Io below.
template <typename Op>
int LimitedIo::Paced(size_t n, size_t* done, Op op) {
  *done = 0;
  while (*done < n) {
    const size_t chunk = std::min(n - *done, kLimitedIoChunk);
    limiter_->Request(chunk);
    size_t moved = 0;
    if (int err = op(*done, chunk, &moved)) return err;
    *done += moved;
    if (moved < chunk) break;
  }
  return 0;
}

int LimitedIo::Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) {
  return Paced(n, done, [&](size_t at, size_t len, size_t* moved) {
    return base()->Write(handle, data + at, len, off + at, moved);
  });
}

int LimitedIo::Read(int handle, char* data, size_t n, uint64_t off, size_t* done) {
  return Paced(n, done, [&](size_t at, size_t len, size_t* moved) {
    return base()->Read(handle, data + at, len, off + at, moved);
  });
}

}  // namespace distkv::storage
