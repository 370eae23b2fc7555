// The node's side of a full resync (src/replication/replica.h): once the
// replica has a complete snapshot staged beside the store, the store is
// closed and reopened, which installs the snapshot atomically
// (storage/snapshot.h), and the replica goes on with the new store and a new
// commit pipeline. Until the store is closed, requests are served by the old
// data; closing and reopening happen in one loop turn, so no request sees
// the node without a store.
#include <cinttypes>
#include <cstdio>
#include <cstdlib>

#include "src/node/node.h"
#include "src/obs/log.h"
#include "storage/snapshot.h"

namespace distkv {

void Node::InstallSnapshot(uint64_t lsn, ReplicationReplicaOptions::Installed done) {
  std::weak_ptr<bool> alive = alive_;
  const uint64_t generation = role_generation_;
  const uint64_t request = ++install_requests_;
  // What the old store staged (nothing, on a replica taking a snapshot) is
  // made durable, and a running compaction ends, before the store closes.
  pipeline_->Drain([this, alive, lsn, generation, request, done = std::move(done)]() mutable {
    if (alive.expired()) return;
    compactor_->Stop([this, alive, lsn, generation, request, done = std::move(done)]() mutable {
      if (alive.expired()) return;
      if (generation != role_generation_ || !is_replica_) {
        // Promoted (or re-pointed) meanwhile: this node's data goes on as it
        // is, and the snapshot must not replace it at the next start. What
        // staging/ holds may be a newer replica's by now (being written, or
        // complete and waiting for its own install): that one is left alone.
        if (request == install_requests_) {
          storage::Io* io = store_options_.io ? store_options_.io : storage::Io::Posix();
          storage::Status s = storage::CancelStaged(io, store_options_.dir);
          if (!s.ok() && !s.IsBusy()) {
            Logf(LogLevel::kError, "shard %s: cannot discard the snapshot: %s",
                 options_.shard.c_str(), s.ToString().c_str());
          }
        }
        Logf(LogLevel::kWarn,
             "shard %s: the role changed while a snapshot as of LSN %" PRIu64
             " was being installed; it is discarded",
             options_.shard.c_str(), lsn);
        StartCompactor();
        return;
      }
      const uint64_t old_keys = store_->size();
      compactor_.reset();
      pipeline_.reset();
      store_.reset();
      storage::Status s = storage::Store::Open(store_options_, &store_);
      if (!s.ok()) {
        // Neither store can be served: the next start finishes the install
        // (or finds the old store) and says why.
        Logf(LogLevel::kError, "shard %s: cannot reopen the store with the snapshot: %s",
             options_.shard.c_str(), s.ToString().c_str());
        std::exit(1);
      }
      pipeline_ = std::make_unique<CommitPipeline>(loop_, store_.get());
      AttachExpiryClock();
      StartCompactor();
      events_.Add("resync", "installed a snapshot as of LSN " + std::to_string(lsn) + ": " +
                                std::to_string(store_->size()) + " keys (" +
                                std::to_string(old_keys) + " before)");
      done(store_.get(), pipeline_.get());
    });
  });
}

}  // namespace distkv
