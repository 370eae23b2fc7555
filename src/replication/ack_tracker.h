// AckTracker: what each of a shard's configured replicas holds, the writes
// waiting for replicas to hold them, and how far behind each replica is.
//
// Only the replicas named in sharding.toml for this shard are tracked; the
// table is fixed at construction, so no caller can grow it, and an ack from
// any other name is refused by the primary (403) before it gets here.
//
// Acks. Ack(replica, lsn) records that the replica holds every record up to
// lsn durably. Wait(lsn, needed, ...) calls back true once `needed` replicas
// hold lsn, or false when its timeout passes first. Waiters are kept in
// arrival order, which is LSN order (the pipeline completes writes in order),
// so resolving stops at the first LSN no replica holds yet; a second index by
// deadline drives one timer.
//
// Lag. The primary reports, per replica, the age of the oldest record it has
// not acknowledged — connected or not. OnDurable(lsn) remembers when each
// batch became durable here; LagMs looks up the batch holding the replica's
// first unacknowledged LSN. Times are kept back to the slowest replica's ack,
// up to max_batch_times entries; beyond that (or for records older than this
// process) the time of the oldest forgotten entry is a lower bound, so the
// lag still grows.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace distkv {

class AckTracker {
 public:
  using Done = std::function<void(bool acked)>;

  // replicas: the shard's configured replica addresses. durable_lsn and
  // now_us: where the log stands when tracking starts and the stream clock.
  AckTracker(uv_loop_t* loop, const std::vector<std::string>& replicas, uint64_t durable_lsn,
             uint64_t now_us, size_t max_batch_times);
  ~AckTracker();
  AckTracker(const AckTracker&) = delete;
  AckTracker& operator=(const AckTracker&) = delete;

  bool Knows(const std::string& replica) const { return acked_.count(replica) != 0; }
  const std::map<std::string, uint64_t>& acked() const { return acked_; }
  uint64_t acked_lsn(const std::string& replica) const;

  // Records that a configured replica holds every LSN <= lsn; answers the
  // waiters that now have enough replicas. Unknown names are ignored.
  void Ack(const std::string& replica, uint64_t lsn);
  // Calls done(true) once `needed` replicas hold lsn, or done(false) after
  // timeout_ms. May call done before returning.
  void Wait(uint64_t lsn, int needed, uint64_t timeout_ms, Done done);
  // Answers every waiter false and closes the timer; later waits fail at once.
  void Stop();

  // A batch ending at lsn became durable at now_us (stream clock).
  void OnDurable(uint64_t lsn, uint64_t now_us);
  // Stream-clock µs at which lsn became durable here, or 0 if not known.
  uint64_t DurableTimeUs(uint64_t lsn) const;
  // Age in ms of the oldest record after acked_lsn, 0 when none is missing.
  uint64_t LagMs(uint64_t acked_lsn, uint64_t durable_lsn, uint64_t now_us) const;

  size_t waiting() const { return waiters_.size(); }
  uint64_t acks_received() const { return acks_received_; }
  uint64_t waits() const { return waits_; }
  uint64_t timeouts() const { return timeouts_; }

 private:
  struct Waiter {
    uint64_t lsn;
    int needed;
    uint64_t deadline_ms;  // loop time
    Done done;
  };

  int ReplicasHolding(uint64_t lsn) const;
  void ResolveWaiters();
  void ArmTimer();
  // Forgets batch times every replica has acknowledged, and the oldest
  // beyond max_batch_times_.
  void Trim();
  static void OnTimer(uv_timer_t* handle);

  uv_loop_t* loop_;
  std::map<std::string, uint64_t> acked_;              // configured replica -> acked LSN
  std::map<uint64_t, Waiter> waiters_;                 // by arrival (= LSN order)
  std::set<std::pair<uint64_t, uint64_t>> deadlines_;  // (deadline ms, waiter id)
  uint64_t next_waiter_id_ = 1;
  uv_timer_t* timer_ = nullptr;
  bool stopped_ = false;

  // (last LSN of a batch, stream-clock µs it became durable), oldest first.
  // LSNs <= times_floor_ became durable at floor_time_us_ or earlier.
  std::deque<std::pair<uint64_t, uint64_t>> batch_times_;
  uint64_t times_floor_;
  uint64_t floor_time_us_;
  size_t max_batch_times_;

  uint64_t acks_received_ = 0;
  uint64_t waits_ = 0;
  uint64_t timeouts_ = 0;
};

}  // namespace distkv
