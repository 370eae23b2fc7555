#include "storage/throttled_io.h"

#include "storage/rate_limiter.h"

namespace distkv::storage {

int ThrottledIo::Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) {
  const int rc = base()->Write(handle, data, n, off, done);
  if (rc == 0 && *done > 0) {
    RateLimiterClock::Real()->SleepNs(static_cast<uint64_t>(*done) * 1'000'000'000ull /
                                      bytes_per_s_);
  }
  return rc;
}

}  // namespace distkv::storage
