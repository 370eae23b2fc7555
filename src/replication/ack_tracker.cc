// See ack_tracker.h for the mechanism.
#include "src/replication/ack_tracker.h"

#include <algorithm>

#include "net/uv_handle.h"

namespace distkv {

AckTracker::AckTracker(uv_loop_t* loop, const std::vector<std::string>& replicas,
                       uint64_t durable_lsn, uint64_t now_us, size_t max_batch_times)
    : loop_(loop),
      times_floor_(durable_lsn),
      floor_time_us_(now_us),
      max_batch_times_(max_batch_times) {
  for (const auto& r : replicas) acked_.emplace(r, 0);
  timer_ = new uv_timer_t;
  uv_timer_init(loop_, timer_);
  timer_->data = this;
}

AckTracker::~AckTracker() { Stop(); }

void AckTracker::Stop() {
  stopped_ = true;
  std::map<uint64_t, Waiter> waiters;
  waiters.swap(waiters_);
  deadlines_.clear();
  net::CloseAndDelete(timer_);
  timer_ = nullptr;
  timeouts_ += waiters.size();
  for (auto& [id, w] : waiters) w.done(false);
}

uint64_t AckTracker::acked_lsn(const std::string& replica) const {
  auto it = acked_.find(replica);
  return it == acked_.end() ? 0 : it->second;
}

void AckTracker::Ack(const std::string& replica, uint64_t lsn) {
  auto it = acked_.find(replica);
  if (it == acked_.end()) return;
  acks_received_++;
  if (lsn <= it->second) return;
  it->second = lsn;
  ResolveWaiters();
  Trim();
}

int AckTracker::ReplicasHolding(uint64_t lsn) const {
  int n = 0;
  for (const auto& [replica, acked] : acked_) n += acked >= lsn;
  return n;
}

void AckTracker::Wait(uint64_t lsn, int needed, uint64_t timeout_ms, Done done) {
  waits_++;
  if (ReplicasHolding(lsn) >= needed) {
    done(true);
    return;
  }
  if (stopped_) {
    timeouts_++;
    done(false);
    return;
  }
  const uint64_t id = next_waiter_id_++;
  const uint64_t deadline = uv_now(loop_) + timeout_ms;
  const bool earliest = deadlines_.empty() || deadline < deadlines_.begin()->first;
  waiters_.emplace(id, Waiter{lsn, needed, deadline, std::move(done)});
  deadlines_.emplace(deadline, id);
  if (earliest) ArmTimer();
}

void AckTracker::ResolveWaiters() {
  if (waiters_.empty()) return;
  uint64_t best = 0;
  for (const auto& [replica, acked] : acked_) best = std::max(best, acked);
  std::vector<Done> ready;
  for (auto it = waiters_.begin(); it != waiters_.end() && it->second.lsn <= best;) {
    if (ReplicasHolding(it->second.lsn) >= it->second.needed) {
      ready.push_back(std::move(it->second.done));
      deadlines_.erase({it->second.deadline_ms, it->first});
      it = waiters_.erase(it);
    } else {
      ++it;
    }
  }
  if (ready.empty()) return;
  ArmTimer();
  for (auto& done : ready) done(true);
}

void AckTracker::ArmTimer() {
  if (timer_ == nullptr) return;
  if (deadlines_.empty()) {
    uv_timer_stop(timer_);
    return;
  }
  const uint64_t now = uv_now(loop_);
  const uint64_t deadline = deadlines_.begin()->first;
  uv_timer_start(timer_, OnTimer, deadline > now ? deadline - now : 0, 0);
}

void AckTracker::OnTimer(uv_timer_t* handle) {
  auto* self = static_cast<AckTracker*>(handle->data);
  const uint64_t now = uv_now(self->loop_);
  std::vector<Done> expired;
  while (!self->deadlines_.empty() && self->deadlines_.begin()->first <= now) {
    auto it = self->waiters_.find(self->deadlines_.begin()->second);
    expired.push_back(std::move(it->second.done));
    self->waiters_.erase(it);
    self->deadlines_.erase(self->deadlines_.begin());
  }
  self->timeouts_ += expired.size();
  self->ArmTimer();
  for (auto& done : expired) done(false);
}

void AckTracker::OnDurable(uint64_t lsn, uint64_t now_us) {
  if (lsn <= times_floor_ || (!batch_times_.empty() && lsn <= batch_times_.back().first)) return;
  batch_times_.emplace_back(lsn, now_us);
  Trim();
}

uint64_t AckTracker::DurableTimeUs(uint64_t lsn) const {
  if (lsn <= times_floor_ || batch_times_.empty()) return 0;
  auto it = std::lower_bound(
      batch_times_.begin(), batch_times_.end(), lsn,
      [](const std::pair<uint64_t, uint64_t>& e, uint64_t l) { return e.first < l; });
  return it == batch_times_.end() ? 0 : it->second;
}

uint64_t AckTracker::LagMs(uint64_t acked_lsn, uint64_t durable_lsn, uint64_t now_us) const {
  if (acked_lsn >= durable_lsn) return 0;
  uint64_t since = DurableTimeUs(acked_lsn + 1);
  // Older than every batch remembered: at least as old as the newest one
  // forgotten (or the start of tracking).
  if (since == 0) since = floor_time_us_;
  return now_us > since ? (now_us - since) / 1000 : 0;
}

void AckTracker::Trim() {
  uint64_t needed_after = UINT64_MAX;
  for (const auto& [replica, acked] : acked_) needed_after = std::min(needed_after, acked);
  while (!batch_times_.empty() &&
         (batch_times_.front().first <= needed_after || batch_times_.size() > max_batch_times_)) {
    times_floor_ = batch_times_.front().first;
    floor_time_us_ = batch_times_.front().second;
    batch_times_.pop_front();
  }
}

}  // namespace distkv
