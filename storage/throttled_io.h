// ThrottledIo: passes every call to another Io, but makes writes to files
// take at least as long as a disk of the given throughput would: after each
// Write of n bytes it sleeps n / bytes_per_s seconds. Everything else goes
// through untouched.
//
// It stands in for a slow disk in tests and benchmarks of what a node does
// while its writes wait (back-pressure, memory under load); `distkv serve
// --slow-disk BYTES_PER_S` puts it under the node's store. Writes come from
// the thread that runs a batch, so only that thread sleeps, never the loop.
#pragma once

#include <cstdint>
#include "storage/io_wrapper.h"

namespace distkv::storage {

class ThrottledIo final : public IoWrapper {
 public:
  // base is not owned; bytes_per_s > 0.
  ThrottledIo(Io* base, uint64_t bytes_per_s) : IoWrapper(base), bytes_per_s_(bytes_per_s) {}

  int Write(int handle, const char* data, size_t n, uint64_t off, size_t* done) override;

 private:
  uint64_t bytes_per_s_;
};

}  // namespace distkv::storage
