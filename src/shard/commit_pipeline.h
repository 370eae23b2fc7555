// CommitPipeline: group commit for one Store on the event loop.
//
// Handlers stage a write in the Store (it gets its LSN at once) and then ask
// the pipeline to call them back once that LSN is durable. The pipeline keeps
// at most one batch in flight on libuv's thread pool (write + fdatasync under
// fsync = "always"); every write staged while it runs joins the next batch.
// So a burst of N concurrent writes costs about two syncs, not N, and the
// loop itself never waits on the disk.
//
// Gathering writers. With one batch in flight, writers that arrive at
// different moments settle into groups that take turns: while group A's
// batch syncs, group B waits; when A completes, B's batch starts at once
// and A's writers, answered, come back with their next writes while B
// syncs. Each writer then waits about two syncs per write, and every sync
// (a thread hand-off each way, a disk flush) carries half the writers. So
// under fsync = "always" the pipeline instead waits, after a batch
// completes, until the writers it expects are staged before starting the
// next one: the groups merge, a writer waits about one sync plus the time
// its client takes to answer, and each sync carries them all. It expects
// the client writes waiting when the batch completed (those it just
// answered plus those already staged); other waits (a replica applying its
// stream) are never waited for. The wait never exceeds one recent batch's
// duration (nor kMaxLingerMs); it is measured in nanoseconds and checked each time
// the loop wakes (a check handle), with a libuv timer (whole milliseconds)
// only for a loop that nothing else wakes. If writers do not come back in
// time (they went on to read, or went away), the batch starts with what it
// has: in a 50:50 mix of reads and writes most waits run out, and still
// the batches are larger and the writes faster than without waiting
// (BENCHMARKS.md).
//
// Under "everysec" a timer asks once a second for a sync of whatever was
// written since the last one; under "never" batches are written and the OS
// decides when to sync. Either way a write is acknowledged after its batch
// completes, i.e. as durable as the mode promises. The next batch is started
// before a completed batch's writers are answered, so the disk works while
// the loop sends the answers; answers still leave in LSN order.
//
// When a batch fails (disk full, I/O error) the Store undoes it and every
// write staged after it; all their waiters get the error. After a failed
// sync the store keeps what reached the files and turns read-only; the
// waiters of what it kept get the store's verdict (storage/store.h).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <vector>

#include "net/inline_function.h"
#include "storage/store.h"

namespace distkv {

class CommitPipeline {
 public:
  static constexpr size_t kDoneCapacity = 96;
  // Move-only, with room in place for a client write's callback (the node's
  // write path): a durable PUT allocates no callback (net/inline_function.h).
  using Done = net::InlineFunction<void(const storage::Status& status), kDoneCapacity>;
  // Called on the loop after each successful batch with the new durable LSN
  // (replication uses it to push the batch to replicas).
  using DurableListener = std::function<void(uint64_t durable_lsn)>;

  // The longest a batch is held back to gather writers.
  static constexpr uint64_t kMaxLingerMs = 10;

  CommitPipeline(uv_loop_t* loop, storage::Store* store);
  ~CommitPipeline();
  CommitPipeline(const CommitPipeline&) = delete;
  CommitPipeline& operator=(const CommitPipeline&) = delete;

  // Who waits for a write: a client, who is likely to write again as soon
  // as it is answered (the pipeline gathers those, as described above), or
  // anything else (a replica's stream, the expirer, a migration), which
  // nothing brings back sooner for being answered.
  enum class Waiting { kClientWrite, kOther };

  // Calls done once every LSN <= lsn is durable, or with the error that
  // undid it. Starts a batch if none is in flight (or gathers writers first,
  // as described above).
  void WhenDurable(uint64_t lsn, Done done, Waiting who = Waiting::kOther);

  // For a read that saw the store up to lsn: calls done once that read can
  // be answered without showing something a crash could take back, i.e.
  // once every LSN <= lsn is durable (OK), or with the error of a batch that
  // undid part of it (read again then). At once when lsn is durable, or when
  // nothing is staged or in flight (what the store holds then is all it will
  // hold, as after a failed sync). Readers never hold a batch back.
  void WhenReadable(uint64_t lsn, Done done);
  void SetDurableListener(DurableListener listener) { listener_ = std::move(listener); }

  // Stops the everysec timer and calls done once nothing is staged or in
  // flight (the final batch included). No batch is held back from then on.
  void Drain(std::function<void()> done);

  struct Counters {
    uint64_t batches = 0;
    uint64_t batch_records = 0;
    uint64_t batch_failures = 0;
    uint64_t max_batch_records = 0;
    uint64_t lingered = 0;         // batches held back to gather writers
    uint64_t linger_timeouts = 0;  // of those, started because the wait ran out
    uint64_t linger_us = 0;        // total time batches were held back
    // Total time from handing batches to the thread pool to their completion
    // on the loop, and the part of it a thread-pool thread spent running them
    // (the write and sync); the difference is the hand-offs both ways.
    uint64_t batch_us = 0;
    uint64_t batch_run_us = 0;
    uint64_t reads_held = 0;  // reads that waited for the batch holding what they saw
  };
  const Counters& counters() const { return counters_; }
  size_t waiting() const { return waiters_.size(); }
  size_t readers_waiting() const { return readers_.size(); }
  // The current bound on holding a batch back (one recent batch's
  // duration); 0 when batches do not sync.
  uint64_t linger_ns() const;

 private:
  struct Job;
  struct Waiter {
    uint64_t lsn;
    Done done;
    bool client = false;  // Waiting::kClientWrite
  };

  void MaybeStartBatch(bool force_sync);
  // True while the next batch should wait for more writers (arms the timer).
  bool Linger();
  void OnBatchDone(Job* job);
  static void OnTimer(uv_timer_t* timer);
  static void OnLingerTimer(uv_timer_t* timer);
  static void OnLingerCheck(uv_check_t* check);
  void LingerExpired();

  uv_loop_t* loop_;
  storage::Store* store_;
  std::deque<Waiter> waiters_;  // in LSN order: LSNs are handed out in staging order
  std::deque<Waiter> readers_;  // in LSN order, kept so on insertion
  // A completed batch's callbacks, a member only for its capacity: nothing a
  // callback does reaches OnBatchDone (only the thread pool's completion does).
  std::vector<Done> ready_;
  DurableListener listener_;
  std::function<void()> drained_;
  uv_timer_t* timer_ = nullptr;         // everysec only; freed in its close callback
  uv_timer_t* linger_timer_ = nullptr;  // freed in its close callback
  uv_check_t* linger_check_ = nullptr;  // freed in its close callback
  bool in_flight_ = false;
  // Gathering: writers waiting when the last batch completed, the smoothed
  // duration of a batch on the thread pool, and the state of the current wait.
  size_t client_waiters_ = 0;  // of waiters_, the client writes
  size_t expected_writers_ = 0;
  uint64_t batch_ns_avg_ = 0;
  bool lingering_ = false;
  bool linger_expired_ = false;
  uint64_t linger_start_ns_ = 0;
  uint64_t linger_deadline_ns_ = 0;
  std::shared_ptr<bool> alive_;
  Counters counters_;
};

}  // namespace distkv
