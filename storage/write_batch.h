// WriteBatchImpl: one group commit, planned on the store's thread by
// TakeBatch() and executed by Run() on any thread.
//
// The plan is a list of files in segment order. For each: create it if the
// batch is the first to write to it, write the batch's bytes for it with one
// pwrite, zero-fill ahead of it or trim what was filled (see BatchFile), and
// fdatasync it if asked. A segment that is sealed (not the
// newest) is always synced before the next file is created, which is what
// lets recovery trust every segment but the newest to be complete. After the
// files, the directory is synced if a file was created, and then the new
// MANIFEST is written if the batch carries one. The batch owns its bytes
// (shared, immutable, so the store's thread may read them for Get() while
// Run() writes them) and touches nothing of the store's: what Run() learns
// (new descriptors, syncs done, the step that failed) stays in the batch
// until FinishBatch() adopts it on the store's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "storage/io.h"
#include "storage/manifest.h"
#include "storage/store.h"

namespace distkv::storage {

struct BatchFile {
  uint32_t segment = 0;
  std::string path;
  int fd = -1;           // -1: Run() creates the file and stores its descriptor here
  bool created = false;  // Run() created the file
  uint64_t offset = 0;   // where data goes
  std::shared_ptr<const std::string> data;  // null for a sync-only entry
  // Pre-allocation (fsync = "always"): zero bytes written at
  // [zero_from, zero_to) after the data, so that later writes overwrite
  // blocks already allocated and synced. Or, for a segment being sealed,
  // trim: the file is cut to offset + data before its sync.
  uint64_t zero_from = 0;
  uint64_t zero_to = 0;
  bool trim = false;
  bool sync = false;                        // fdatasync after writing
  bool written = false;                     // Run() wrote data in full
};

class WriteBatchImpl final : public WriteBatch {
 public:
  // Where Run() failed. A failed sync leaves the files in a state nobody can
  // know ("fsyncgate"); the other failures can be undone.
  enum class Failure { kNone, kCreate, kWrite, kSync, kManifest };

  WriteBatchImpl(Io* io, std::string dir, int dir_fd,
                 const std::function<int(std::string_view)>* fault_hook)
      : io_(io), dir_(std::move(dir)), dir_fd_(dir_fd), fault_hook_(fault_hook) {}

  Status Run() override;
  uint64_t first_lsn() const override { return first_lsn_; }
  uint64_t last_lsn() const override { return last_lsn_; }
  size_t records() const override { return records_; }
  size_t bytes() const override { return bytes_; }

  std::vector<BatchFile> files;
  std::optional<Manifest> manifest;  // its writer's fields are written last, if set
  ManifestWriter* manifest_writer = nullptr;
  uint64_t manifest_gen = 0;
  uint64_t first_lsn_ = 0;
  uint64_t last_lsn_ = 0;
  size_t records_ = 0;
  size_t bytes_ = 0;
  // Filled by Run().
  uint64_t syncs_done = 0;
  bool ran = false;
  Failure failure = Failure::kNone;

 private:
  // The errno the fault hook injects for a step, or 0.
  int Inject(std::string_view step) const;
  Status Fail(Failure f, Status s) {
    failure = f;
    return s;
  }

  Io* io_;
  std::string dir_;
  int dir_fd_;
  const std::function<int(std::string_view)>* fault_hook_;
};

}  // namespace distkv::storage
