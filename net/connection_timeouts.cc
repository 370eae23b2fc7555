// ServerConnection, timeouts: one timer per connection, armed for the
// deadline of what the connection is doing now (receiving a head, a body,
// waiting for the client to read, idle, lingering). The deadline is
// computed afresh whenever something happens; the timer fires for the
// earliest one seen and re-checks, so activity never restarts the timer.
#include <algorithm>

#include "net/server_connection.h"

namespace distkv::net {

uint64_t ServerConnection::Deadline() const {
  if (closing_ || ctx_ == nullptr) return kNoDeadline;
  const ServerLimits& limits = ctx_->limits();
  if (lingering_) return linger_start_ + std::min<uint64_t>(kLingerMs, limits.idle_timeout_ms);
  if (in_message_) {
    return head_complete_ ? last_activity_ + limits.idle_timeout_ms
                          : head_start_ + limits.header_timeout_ms;
  }
  if (unsent_bytes_ > 0) return last_activity_ + limits.idle_timeout_ms;  // client not reading
  if (!slots_.empty()) return kNoDeadline;                                // waiting for the handler
  if (requests_seen_ == 0) return accepted_at_ + limits.header_timeout_ms;
  return last_activity_ + limits.idle_timeout_ms;
}

void ServerConnection::ArmTimer() {
  if (closing_) return;
  const uint64_t due = Deadline();
  if (due == kNoDeadline) return;
  if (timer_armed_ && timer_due_ <= due) return;  // it fires earlier and re-checks
  const uint64_t now = uv_now(ctx_->loop());
  uv_timer_start(&timer_, OnTimer, due > now ? due - now : 0, 0);
  timer_armed_ = true;
  timer_due_ = due;
}

void ServerConnection::OnTimer(uv_timer_t* timer) {
  auto* c = static_cast<ServerConnection*>(timer->data);
  c->timer_armed_ = false;
  const uint64_t due = c->Deadline();
  if (due == kNoDeadline) return;
  if (uv_now(c->ctx_->loop()) >= due) {
    if (!c->lingering_) ++c->ctx_->counters().timeouts;
    c->Close();
    return;
  }
  c->ArmTimer();
}

}  // namespace distkv::net
