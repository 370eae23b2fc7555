// Keys with a TTL on the node: the clock that decides expiry, and the
// expirer that turns expired keys into tombstones.
//
// Expiry is decided by the shard's primary alone. Its store reads an expired
// key as absent from the moment its time passes (storage/store.h), and every
// kExpireIntervalMs the primary writes a tombstone for each key that has
// expired, as a DELETE would: the tombstone is replicated, so the replicas —
// which never expire a key on their own clock (a replica's clock may be
// wrong) — drop the key when it arrives, and a restart finds it deleted. A
// replica therefore serves an expired key for at most one interval plus its
// replication lag.
//
// A batch of tombstones that fails (a full disk: NoSpace) is undone by the
// store, the keys keep their expiry, and the expirer backs off: its interval
// doubles from kExpireIntervalMs to kExpireMaxBackoffMs after each failure
// and returns to kExpireIntervalMs after a batch that succeeds. The commit
// pipeline logs each failed batch, so a full disk costs a log line every few
// seconds, not ten a second; the keys read as absent meanwhile.
#include <algorithm>
#include <chrono>
#include <memory>

#include "net/uv_handle.h"
#include "src/node/node.h"
#include "src/obs/log.h"

namespace distkv {

namespace {
constexpr uint64_t kExpireIntervalMs = 100;
constexpr uint64_t kExpireMaxBackoffMs = 6400;
// Tombstones per tick: bounds the loop's time when many keys expire at once.
constexpr size_t kExpireBatch = 1000;

// The expirer's interval is its timer's repeat: kExpireIntervalMs, or more
// while it backs off. The next tick comes interval_ms from now.
void SetExpiryInterval(uv_timer_t* timer, uint64_t interval_ms) {
  uv_timer_set_repeat(timer, interval_ms);
  uv_timer_again(timer);
}
}  // namespace

uint64_t Node::NowMs() const {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count() +
                               options_.clock_skew_ms);
}

void Node::AttachExpiryClock() {
  // A replica's store expires nothing (a clock of 0): it waits for the
  // primary's tombstones. The role is read at each call, so a promotion or
  // a demotion takes effect at once.
  store_->SetExpiryClock([this] { return is_replica_ ? 0 : NowMs(); });
}

void Node::AddExpiryHeaders(net::HttpResponse* r, uint64_t expires_ms) const {
  const uint64_t now = NowMs();
  const uint64_t left_ms = expires_ms > now ? expires_ms - now : 0;
  r->headers.push_back(net::Header{"X-Distkv-Expires", std::to_string(expires_ms)});
  r->headers.push_back(net::Header{"X-Distkv-TTL", std::to_string((left_ms + 999) / 1000)});
}

void Node::StartExpirer() {
  expiry_timer_ = new uv_timer_t;
  uv_timer_init(loop_, expiry_timer_);
  expiry_timer_->data = this;
  uv_timer_start(
      expiry_timer_, [](uv_timer_t* t) { static_cast<Node*>(t->data)->ExpireDue(); },
      kExpireIntervalMs, kExpireIntervalMs);
}

void Node::StopExpirer() {
  if (!expiry_timer_) return;
  net::CloseAndDelete(expiry_timer_);
  expiry_timer_ = nullptr;
}

void Node::ExpireDue() {
  if (is_replica_) return;
  std::vector<std::string> keys;
  store_->ExpiredKeys(kExpireBatch, &keys);
  if (keys.empty()) return;
  net::HttpResponse refusal;
  // Fenced, or a store read-only after a failed sync until its restart (the
  // expired keys read as absent meanwhile): the next tick looks again, without
  // a warning every 100 ms.
  if (!MayWrite(&refusal, "/kv") || StoreReadOnly(&refusal)) return;
  uint64_t last = 0;
  uint64_t staged = 0;
  for (const std::string& key : keys) {
    // Slots paused for a migration's cutover take no writes: the key reads
    // as absent meanwhile, and its owner after the cutover tombstones it.
    if (net::HttpResponse paused; SlotPaused(SlotOf(key), &paused)) continue;
    uint64_t lsn = 0;
    storage::Status s = store_->Remove(key, &lsn);
    if (s.ok()) {
      last = lsn;
      staged++;
    } else if (!s.IsNotFound()) {
      Logf(LogLevel::kWarn, "cannot write the tombstone of an expired key: %s",
           s.ToString().c_str());
      break;  // e.g. no LSN reserved yet: the next tick retries
    }
  }
  if (last == 0) return;
  // Nobody waits for these tombstones, but the pipeline writes what it is
  // asked to wait for. A failed batch restores the keys' expiry; the next
  // tick tries again, after a back-off (see the top of this file).
  std::weak_ptr<bool> alive = alive_;
  pipeline_->WhenDurable(last, [this, alive, staged](const storage::Status& status) {
    if (alive.expired()) return;
    if (status.ok()) expired_keys_ += staged;
    if (!expiry_timer_) return;  // stopped meanwhile
    const uint64_t interval = uv_timer_get_repeat(expiry_timer_);
    if (status.ok()) {
      if (interval != kExpireIntervalMs) SetExpiryInterval(expiry_timer_, kExpireIntervalMs);
    } else {
      SetExpiryInterval(expiry_timer_, std::min(interval * 2, kExpireMaxBackoffMs));
    }
  });
}

}  // namespace distkv
