// CommitPipeline: group commit for one Store on the event loop.
//
// Handlers stage a write in the Store (it gets its LSN at once) and then ask
// the pipeline to call them back once that LSN is durable. The pipeline keeps
// at most one batch in flight on libuv's thread pool (write + fdatasync under
// fsync = "always"); every write staged while it runs joins the next batch.
// So a burst of N concurrent writes costs about two syncs, not N, and the
// loop itself never waits on the disk.
//
// Under "everysec" a timer asks once a second for a sync of whatever was
// written since the last one; under "never" batches are written and the OS
// decides when to sync. Either way a write is acknowledged after its batch
// completes, i.e. as durable as the mode promises.
//
// When a batch fails (disk full, I/O error) the Store undoes it and every
// write staged after it; all their waiters get the error.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>

#include "storage/store.h"

namespace distkv {

class CommitPipeline {
 public:
  using Done = std::function<void(const storage::Status& status)>;
  // Called on the loop after each successful batch with the new durable LSN
  // (replication uses it to push the batch to replicas).
  using DurableListener = std::function<void(uint64_t durable_lsn)>;

  CommitPipeline(uv_loop_t* loop, storage::Store* store);
  ~CommitPipeline();
  CommitPipeline(const CommitPipeline&) = delete;
  CommitPipeline& operator=(const CommitPipeline&) = delete;

  // Calls done once every LSN <= lsn is durable, or with the error that
  // undid it. Starts a batch if none is in flight.
  void WhenDurable(uint64_t lsn, Done done);
  void SetDurableListener(DurableListener listener) { listener_ = std::move(listener); }

  // Stops the everysec timer and calls done once nothing is staged or in
  // flight (the final batch included).
  void Drain(std::function<void()> done);

  struct Counters {
    uint64_t batches = 0;
    uint64_t batch_records = 0;
    uint64_t batch_failures = 0;
    uint64_t max_batch_records = 0;
  };
  const Counters& counters() const { return counters_; }
  size_t waiting() const { return waiters_.size(); }

 private:
  struct Job;
  struct Waiter {
    uint64_t lsn;
    Done done;
  };

  void MaybeStartBatch(bool force_sync);
  void OnBatchDone(Job* job);
  static void OnTimer(uv_timer_t* timer);

  uv_loop_t* loop_;
  storage::Store* store_;
  std::deque<Waiter> waiters_;  // in LSN order: LSNs are handed out in staging order
  DurableListener listener_;
  std::function<void()> drained_;
  uv_timer_t* timer_ = nullptr;  // everysec only; freed in its close callback
  bool in_flight_ = false;
  std::shared_ptr<bool> alive_;
  Counters counters_;
};

}  // namespace distkv
