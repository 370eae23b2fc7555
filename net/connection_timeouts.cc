// ServerConnection, timeouts: one timer per connection, armed for the
// deadline of what the connection is doing now (receiving a head, a body,
// waiting for the client to read, idle, lingering). The deadline is
// computed afresh whenever something happens; the timer fires for the
// earliest one seen and re-checks, so activity never restarts the timer.
// The same timer gives an HTTPS connection's record buffers back to OpenSSL
// once it has been idle for kTlsReleaseIdleMs.
//
// A deadline that passes while the client's bytes wait unread in the socket
// is not yet a timeout (DeadlineCheck: after a pause of the process the
// timer fires before they are read). The timer then re-checks a millisecond
// later, after this loop turn has read them: a request that arrived in time
// is served, and a deadline the read does not move is final at that check.
#include <algorithm>

#include "net/deadline_check.h"
#include "net/server_connection.h"

namespace distkv::net {

uint64_t ServerConnection::Deadline() const {
  if (closing_ || ctx_ == nullptr) return kNoDeadline;
  const uint64_t due = ActivityDeadline();
  // Shutting down: a client that does not read its answers does not hold the
  // server up beyond shutdown_timeout_ms.
  return ctx_->draining() ? std::min(due, ctx_->drain_deadline()) : due;
}

bool ServerConnection::ReceivingBody() const {
  return in_message_ && head_complete_ && !paused_ && !stop_parsing_;
}

uint64_t ServerConnection::BodyDeadline() const {
  const ServerLimits& limits = ctx_->limits();
  const uint64_t rate = std::max<uint64_t>(1, limits.min_body_bytes_per_s);
  return body_start_ + limits.body_timeout_ms + body_bytes_ * 1000 / rate;
}

uint64_t ServerConnection::ActivityDeadline() const {
  const ServerLimits& limits = ctx_->limits();
  if (lingering_) return linger_start_ + std::min<uint64_t>(kLingerMs, limits.idle_timeout_ms);
  if (in_message_) {
    // Waiting for staging room is the server's doing, not the client's.
    if (awaiting_room_) return kNoDeadline;
    if (!head_complete_) return head_start_ + limits.header_timeout_ms;
    // Each byte resets the idle clock, so a body trickled at 1 byte/s would
    // hold the connection forever: the body must also keep a minimum rate.
    const uint64_t idle = last_activity_ + limits.idle_timeout_ms;
    return ReceivingBody() ? std::min(idle, BodyDeadline()) : idle;
  }
  if (unsent_bytes_ > 0) return last_activity_ + limits.idle_timeout_ms;  // client not reading
  if (!slots_.empty()) return kNoDeadline;                                // waiting for the handler
  if (requests_seen_ == 0) return accepted_at_ + limits.header_timeout_ms;
  return last_activity_ + limits.idle_timeout_ms;
}

uint64_t ServerConnection::TlsReleaseDeadline() const {
  if (tls_ == nullptr || !tls_->buffers_held() || closing_) return kNoDeadline;
  return last_activity_ + kTlsReleaseIdleMs;
}

void ServerConnection::ArmTimer() {
  if (closing_) return;
  const uint64_t due = std::min(Deadline(), TlsReleaseDeadline());
  if (due != kNoDeadline) StartTimer(due);
}

void ServerConnection::StartTimer(uint64_t due) {
  if (timer_armed_ && timer_due_ <= due) return;  // it fires earlier and re-checks
  const uint64_t now = uv_now(ctx_->loop());
  uv_timer_start(&timer_, OnTimer, due > now ? due - now : 0, 0);
  timer_armed_ = true;
  timer_due_ = due;
}

void ServerConnection::OnTimer(uv_timer_t* timer) {
  auto* c = static_cast<ServerConnection*>(timer->data);
  c->timer_armed_ = false;
  const uint64_t now = uv_now(c->ctx_->loop());
  if (now >= c->TlsReleaseDeadline()) c->tls_->ReleaseBuffers();
  const uint64_t due = c->Deadline();
  if (due == kNoDeadline) {
    c->ArmTimer();  // for a release still to come
    return;
  }
  switch (DeadlineCheck(&c->tcp_, now).Check(due, due != c->forgiven_due_)) {
    case DeadlineCheck::Verdict::kAhead:
      c->ArmTimer();
      return;
    case DeadlineCheck::Verdict::kPeerSpoke:
      // libuv polls after its timers: in 1 ms the bytes have been read.
      c->forgiven_due_ = due;
      c->StartTimer(now + 1);
      return;
    case DeadlineCheck::Verdict::kPassed:
      break;
  }
  if (!c->lingering_) ++c->ctx_->counters().timeouts;
  if (c->ReceivingBody() && now >= c->BodyDeadline() && !c->ctx_->draining()) {
    // Say why before closing: the client is alive, just too slow.
    const ServerLimits& limits = c->ctx_->limits();
    c->RespondError(408, "the request body arrived too slowly: " + std::to_string(c->body_bytes_) +
                             " bytes in " + std::to_string(now - c->body_start_) +
                             " ms; after the first " + std::to_string(limits.body_timeout_ms) +
                             " ms the server needs at least " +
                             std::to_string(limits.min_body_bytes_per_s) + " bytes/s");
    c->FlushAndResume();
    return;
  }
  c->Close();
}

}  // namespace distkv::net
