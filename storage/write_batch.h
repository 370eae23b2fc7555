// WriteBatchImpl: one group commit, planned on the store's thread by
// TakeBatch() and executed by Run() on any thread.
//
// The plan is a list of files in segment order. For each: create it if the
// batch is the first to write to it, write the batch's bytes for it with one
// pwrite, and fdatasync it if asked. A segment that is sealed (not the
// newest) is always synced before the next file is created, which is what
// lets recovery trust every segment but the newest to be complete. The
// batch owns its bytes (shared, immutable, so the store's thread may read
// them for Get() while Run() writes them) and touches nothing of the store's:
// what Run() learns (new descriptors, syncs done) stays in the batch until
// FinishBatch() adopts it on the store's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "storage/store.h"

namespace distkv::storage {

struct BatchFile {
  uint32_t segment = 0;
  std::string path;
  int fd = -1;           // -1: Run() creates the file and stores its descriptor here
  bool created = false;  // Run() created the file
  uint64_t offset = 0;   // where data goes
  std::shared_ptr<const std::string> data;  // null for a sync-only entry
  bool sync = false;                        // fdatasync after writing
};

class WriteBatchImpl final : public WriteBatch {
 public:
  WriteBatchImpl(int dir_fd, const std::function<int(std::string_view)>* fault_hook)
      : dir_fd_(dir_fd), fault_hook_(fault_hook) {}

  Status Run() override;
  uint64_t first_lsn() const override { return first_lsn_; }
  uint64_t last_lsn() const override { return last_lsn_; }
  size_t records() const override { return records_; }
  size_t bytes() const override { return bytes_; }

  std::vector<BatchFile> files;
  uint64_t first_lsn_ = 0;
  uint64_t last_lsn_ = 0;
  size_t records_ = 0;
  size_t bytes_ = 0;
  // Filled by Run().
  uint64_t syncs_done = 0;
  bool ran = false;

 private:
  // The errno the fault hook injects for a step, or 0.
  int Inject(std::string_view step) const;

  int dir_fd_;
  const std::function<int(std::string_view)>* fault_hook_;
};

}  // namespace distkv::storage
