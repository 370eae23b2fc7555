#include "storage/throttled_io.h"

#include <time.h>

#include <cerrno>

namespace distkv::storage {

int ThrottledIo::Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) {
  const int rc = base()->Write(handle, data, n, off, done);
  if (rc == 0 && *done > 0) {
    const uint64_t ns = static_cast<uint64_t>(*done) * 1'000'000'000ull / bytes_per_s_;
    timespec ts{static_cast<time_t>(ns / 1'000'000'000ull),
                static_cast<long>(ns % 1'000'000'000ull)};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
  }
  return rc;
}

}  // namespace distkv::storage
