// ServerContext; see server_context.h.
#include "net/server_context.h"

#include <algorithm>

#include "net/response_writer.h"
#include "net/server_connection.h"
#include "net/uv_handle.h"

namespace distkv::net {

ServerContext::ServerContext(uv_loop_t* loop, const ServerLimits& limits,
                             HttpServer::Handler handler)
    : loop_(loop),
      limits_(limits),
      handler_(std::move(handler)),
      check_(new uv_check_t),
      idle_(new uv_idle_t),
      read_buffer_(new char[kReadBufferSize]) {
  uv_check_init(loop_, check_);
  uv_idle_init(loop_, idle_);
  check_->data = this;
  idle_->data = this;
  // Neither hook may keep the loop alive on its own.
  uv_unref(reinterpret_cast<uv_handle_t*>(check_));
  uv_unref(reinterpret_cast<uv_handle_t*>(idle_));
}

ServerContext::~ServerContext() {
  for (ServerConnection* c = first_; c != nullptr;) {
    ServerConnection* next = c->next_;
    c->Detach();
    c->Close();
    c = next;
  }
  // Hooks still closing must not report to a context that is gone.
  if (check_ != nullptr) check_->data = nullptr;
  if (idle_ != nullptr) idle_->data = nullptr;
  if (!hooks_closing_) {
    CloseAndDelete(check_);
    CloseAndDelete(idle_);
  }
}

void ServerContext::Accept(uv_stream_t* listener) {
  if (counters_.connections_current >= limits_.max_connections) {
    HttpResponse busy =
        MakeErrorResponse(503, "too_many_connections",
                          "the server has its limit of " + std::to_string(limits_.max_connections) +
                              " connections open; retry after the time in Retry-After");
    busy.SetHeader("Retry-After", "1");
    std::string bytes;
    AppendResponseHead(busy, BodyFraming::kContentLength, busy.body.size(),
                       ConnectionHeader::kClose, extra_headers_, &bytes);
    bytes += busy.body;
    refuser_.Refuse(loop_, listener, bytes);
    ++counters_.connections_rejected;
    return;
  }
  ServerConnection::Accept(this, listener);
}

void ServerContext::Link(ServerConnection* c) {
  c->prev_ = nullptr;
  c->next_ = first_;
  if (first_ != nullptr) first_->prev_ = c;
  first_ = c;
  ++counters_.connections_current;
}

void ServerContext::Unlink(ServerConnection* c) {
  if (c->prev_ != nullptr)
    c->prev_->next_ = c->next_;
  else
    first_ = c->next_;
  if (c->next_ != nullptr) c->next_->prev_ = c->prev_;
  c->prev_ = c->next_ = nullptr;
  --counters_.connections_current;
}

void ServerContext::ScheduleFlush(ServerConnection* c) {
  if (c->flush_scheduled_) return;
  if (!hooks_open()) {  // shutting down: no more batching
    c->FlushAndResume();
    return;
  }
  c->flush_scheduled_ = true;
  flush_queue_.push_back(c);
  if (flush_queue_.size() == 1) {
    uv_check_start(check_, OnCheck);
    uv_idle_start(idle_, [](uv_idle_t*) {});
  }
}

void ServerContext::CancelFlush(ServerConnection* c) {
  if (!c->flush_scheduled_) return;
  c->flush_scheduled_ = false;
  auto it = std::find(flush_queue_.begin(), flush_queue_.end(), c);
  if (it != flush_queue_.end()) flush_queue_.erase(it);
}

void ServerContext::OnCheck(uv_check_t* handle) {
  auto* ctx = static_cast<ServerContext*>(handle->data);
  ctx->in_check_ = true;
  ctx->flushing_.swap(ctx->flush_queue_);
  for (size_t i = 0; i < ctx->flushing_.size(); ++i) {
    ServerConnection* c = ctx->flushing_[i];
    if (!c->flush_scheduled_) continue;  // closed since it was scheduled
    c->flush_scheduled_ = false;
    c->FlushAndResume();
  }
  ctx->flushing_.clear();
  ctx->in_check_ = false;
  if (ctx->flush_queue_.empty() && ctx->hooks_open()) {
    uv_check_stop(ctx->check_);
    uv_idle_stop(ctx->idle_);
  }
}

bool ServerContext::TakeStaged(ServerConnection* c, size_t bytes, bool exempt) {
  const size_t held = counters_.staged_bytes;
  // Those already waiting go first; a lone body larger than the cap goes
  // through when nothing else is held.
  if (!exempt &&
      (!staging_waiters_.empty() || (held > 0 && held + bytes > limits_.max_staged_bytes))) {
    staging_waiters_.push_back(StagingWaiter{c, bytes});
    ++counters_.staging_waits;
    return false;
  }
  GrowStaged(bytes);
  return true;
}

void ServerContext::GrowStaged(size_t bytes) {
  counters_.staged_bytes += bytes;
  counters_.staged_bytes_peak = std::max(counters_.staged_bytes_peak, counters_.staged_bytes);
}

void ServerContext::ReleaseStaged(size_t bytes) {
  counters_.staged_bytes -= std::min<uint64_t>(bytes, counters_.staged_bytes);
  while (!staging_waiters_.empty()) {
    const StagingWaiter w = staging_waiters_.front();
    const size_t held = counters_.staged_bytes;
    if (held > 0 && held + w.bytes > limits_.max_staged_bytes) break;
    staging_waiters_.pop_front();
    GrowStaged(w.bytes);
    // It resumes in the check phase, never inside the answer that freed
    // the room (which may run in the middle of another connection's parse).
    w.conn->StagingAdmitted(w.bytes);
  }
}

void ServerContext::ForgetStagingWaiter(ServerConnection* c) {
  auto it = std::find_if(staging_waiters_.begin(), staging_waiters_.end(),
                         [c](const StagingWaiter& w) { return w.conn == c; });
  if (it == staging_waiters_.end()) return;
  const bool first = it == staging_waiters_.begin();
  staging_waiters_.erase(it);
  if (first) ReleaseStaged(0);  // those behind it may fit now
}

void ServerContext::BeginDrain() {
  if (draining_) return;
  // Answers given before the shutdown leave first (unless this is a
  // callback of that very flush, which then carries on by itself).
  if (hooks_open() && !flush_queue_.empty() && !in_check_) OnCheck(check_);
  draining_ = true;
  drain_deadline_ = uv_now(loop_) + limits_.shutdown_timeout_ms;
  for (ServerConnection* c = first_; c != nullptr; c = c->next_) c->Drain();
  refuser_.CloseAll();
  CloseHooks();
}

void ServerContext::CloseHooks() {
  if (!hooks_open()) return;
  hooks_closing_ = true;
  CloseAndDelete<uv_check_t, OnCheckClosed>(check_);
  CloseAndDelete<uv_idle_t, OnIdleClosed>(idle_);
}

void ServerContext::OnCheckClosed(void* data) {
  auto* ctx = static_cast<ServerContext*>(data);
  if (ctx == nullptr) return;
  ctx->check_ = nullptr;
  if (ctx->idle_ == nullptr) ctx->HooksClosed();
}

void ServerContext::OnIdleClosed(void* data) {
  auto* ctx = static_cast<ServerContext*>(data);
  if (ctx == nullptr) return;
  ctx->idle_ = nullptr;
  if (ctx->check_ == nullptr) ctx->HooksClosed();
}

}  // namespace distkv::net
