// FailingSyncIo: a disk whose fdatasync starts failing. The first
// `good_syncs` file syncs pass through; every later one fails with EIO
// without reaching the disk, as a dying disk or a lost network block device
// reports it. Directory syncs pass through.
//
// It lets a test drive a real node into the failed-sync state (the store
// refuses writes from then on and says why in /health and /stats; see
// store.h, "writable") without a faulty device: `distkv serve
// --fail-sync-after N` puts it under the node's store. The in-memory FaultyIo
// does the same for unit tests.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "storage/io_wrapper.h"

namespace distkv::storage {

class FailingSyncIo final : public IoWrapper {
 public:
  FailingSyncIo(Io* base, uint64_t good_syncs) : IoWrapper(base), good_syncs_(good_syncs) {}

  int Sync(int handle) override {
    if (syncs_.fetch_add(1, std::memory_order_relaxed) >= good_syncs_) return EIO;
    return base()->Sync(handle);
  }

 private:
  const uint64_t good_syncs_;
  std::atomic<uint64_t> syncs_{0};
};

}  // namespace distkv::storage
