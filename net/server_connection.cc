// ServerConnection: setup, teardown and reading; the mechanism is described
// in server_connection.h. Parsing is in request_parsing.cc, answers in
// responder.cc, writing in connection_writing.cc, timeouts in
// connection_timeouts.cc.
#include "net/server_connection.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace distkv::net {

namespace {

std::string PeerName(const uv_tcp_t* tcp) {
  sockaddr_storage addr{};
  int len = sizeof(addr);
  if (uv_tcp_getpeername(tcp, reinterpret_cast<sockaddr*>(&addr), &len) != 0) return {};
  char ip[64] = "";
  std::string out;
  if (addr.ss_family == AF_INET6) {
    const auto* a = reinterpret_cast<const sockaddr_in6*>(&addr);
    uv_ip6_name(a, ip, sizeof(ip));
    out.append("[").append(ip).append("]:").append(std::to_string(ntohs(a->sin6_port)));
  } else {
    const auto* a = reinterpret_cast<const sockaddr_in*>(&addr);
    uv_ip4_name(a, ip, sizeof(ip));
    out.append(ip).append(":").append(std::to_string(ntohs(a->sin_port)));
  }
  return out;
}

// What is wrong with the bytes llhttp refused. A control byte in the target
// is named (a raw TAB would otherwise become part of a key).
std::string ParseErrorDetail(const llhttp_t* parser, const char* data, size_t len) {
  std::string detail = "the request is not valid HTTP/1.1: ";
  const char* pos = llhttp_get_error_pos(parser);
  if (llhttp_get_errno(parser) == HPE_INVALID_URL && pos != nullptr && pos >= data &&
      pos <= data + len) {
    // llhttp stops at or just after the offending byte.
    for (const char* p = std::min(pos, data + len - 1); p >= data && p + 2 >= pos; --p) {
      const auto b = static_cast<unsigned char>(*p);
      if (b > 0x20 && b != 0x7f) continue;
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x", b);
      return detail + "the request target contains the raw byte " + hex +
             (b == '\t' ? " (a TAB)" : "") + ", which must be %-escaped";
    }
  }
  return detail + llhttp_get_error_reason(parser);
}

}  // namespace

ServerConnection::ServerConnection(ServerContext* ctx) : ctx_(ctx), id_(ctx->NextConnectionId()) {
  uv_tcp_init(ctx->loop(), &tcp_);
  uv_timer_init(ctx->loop(), &timer_);
  tcp_.data = this;
  timer_.data = this;
  handles_open_ = 2;
  llhttp_init(&parser_, HTTP_REQUEST, ParserSettings());
  parser_.data = this;
  ctx->Link(this);
}

ServerConnection::~ServerConnection() {
  for (ResponseBatch* b : free_batches_) delete b;
}

bool ServerConnection::Accept(ServerContext* ctx, uv_stream_t* listener) {
  auto* c = new ServerConnection(ctx);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp_)) != 0) {
    c->Close();
    return false;
  }
  ++ctx->counters().connections_accepted;
  uv_tcp_nodelay(&c->tcp_, 1);
  c->peer_ = PeerName(&c->tcp_);
  // The connection's requests share these: set once, not per request.
  c->request_.peer = c->peer_;
  c->request_.connection_id = c->id_;
  if (ctx->tls()) c->tls_ = std::make_unique<TlsSession>(ctx->tls());
  c->accepted_at_ = c->last_activity_ = uv_now(ctx->loop());
  c->StartReading();
  c->ArmTimer();
  return true;
}

void ServerConnection::Close() {
  if (closing_) return;
  closing_ = true;
  if (ctx_ != nullptr) ctx_->CancelFlush(this);
  if (awaiting_room_ && ctx_ != nullptr) ctx_->ForgetStagingWaiter(this);
  awaiting_room_ = false;
  reading_ = false;
  pending_input_.clear();
  in_message_ = false;
  DropSlots();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnHandleClosed);
}

void ServerConnection::OnHandleClosed(uv_handle_t* handle) {
  auto* c = static_cast<ServerConnection*>(handle->data);
  if (--c->handles_open_ > 0) return;
  ServerContext* ctx = c->ctx_;
  if (ctx != nullptr) ctx->Unlink(c);
  delete c;
  if (ctx != nullptr) ctx->ConnectionGone();
}

void ServerConnection::DropSlots() {
  std::vector<std::function<void()>> callbacks;
  for (auto& slot : slots_) {
    slot->conn = nullptr;
    unsent_bytes_ -= slot->out.size() + slot->body.size();
    FreeStaged(slot.get());
    if (slot->on_close) callbacks.push_back(std::move(slot->on_close));
  }
  slots_.clear();
  current_.reset();
  unanswered_ = 0;
  for (auto& fn : callbacks) fn();
}

void ServerConnection::Drain() {
  if (closing_) return;
  if (lingering_) {  // everything is written; no reason to wait for the client
    Close();
    return;
  }
  StopReading();
  pending_input_.clear();
  paused_ = false;
  EndOfRequests();
  MaybeFinish();
  ArmTimer();
}

void ServerConnection::EndOfRequests() {
  stop_parsing_ = true;
  if (awaiting_room_) {
    if (ctx_ != nullptr) ctx_->ForgetStagingWaiter(this);
    awaiting_room_ = false;
    continue_deferred_ = false;
  }
  if (current_ != nullptr) {  // a request still arriving is abandoned
    FreeStaged(current_.get());
    unsent_bytes_ -= current_->out.size();
    current_->conn = nullptr;
    slots_.pop_back();
    current_.reset();
  }
  in_message_ = false;
}

void ServerConnection::OnPeerEof() {
  // The client has shut down its sending side (nc -N, some proxies) but may
  // still read: the requests it sent are answered, then the connection
  // closes. Input kept back by back-pressure is parsed first.
  for (const auto& slot : slots_) {
    // A stream's client that stops sending is gone: streams never end by
    // themselves, so waiting for one to finish would hold the connection.
    if (slot->state == Responder::Slot::State::kStreaming) {
      Close();
      return;
    }
  }
  peer_eof_ = true;
  StopReading();
  if (!paused_) EndOfRequests();
  FlushAndResume();
}

void ServerConnection::MaybeFinish() {
  if (closing_ || lingering_ || !stop_parsing_ || !slots_.empty() || writes_in_flight_ > 0) return;
  if (ctx_ == nullptr || ctx_->draining() || peer_eof_) {  // nothing to wait for
    Close();
    return;
  }
  // Shut down our side and drop whatever the client still sends, so the last
  // response is not destroyed by a reset (see the top of the header).
  if (tls_ != nullptr) {  // close_notify first: the peer can tell the end from a cut
    tls_out_.clear();
    tls_->Shutdown(&tls_out_);
    if (!tls_out_.empty()) WriteRaw(tls_out_.data(), tls_out_.size());
    if (closing_) return;
  }
  lingering_ = true;
  linger_start_ = uv_now(ctx_->loop());
  if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), OnShutdown) != 0) {
    Close();
    return;
  }
  StartReading();
  ArmTimer();
}

void ServerConnection::OnShutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<ServerConnection*>(req->handle->data);
  if (status < 0) c->Close();
}

// ---------------------------------------------------------------------------
// Reading and parsing

void ServerConnection::StartReading() {
  if (reading_ || closing_ || peer_eof_) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead) == 0) reading_ = true;
}

void ServerConnection::StopReading() {
  if (!reading_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  reading_ = false;
}

void ServerConnection::OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* c = static_cast<ServerConnection*>(handle->data);
  if (c->ctx_ == nullptr) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  *buf = uv_buf_init(c->ctx_->read_buffer(), ServerContext::kReadBufferSize);
}

void ServerConnection::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<ServerConnection*>(stream->data);
  if (nread == UV_EOF && !c->lingering_ && !c->closing_ && c->ctx_ != nullptr) {
    c->OnPeerEof();
    return;
  }
  if (nread < 0) {  // an error, or EOF as the normal end of a lingering close
    c->Close();
    return;
  }
  if (nread == 0 || c->lingering_ || c->closing_) return;
  c->last_activity_ = uv_now(c->ctx_->loop());
  if (c->tls_ != nullptr) {
    c->TlsRead(buf->base, static_cast<size_t>(nread));
  } else {
    c->Parse(buf->base, static_cast<size_t>(nread));
  }
  c->FlushAndResume();
}

bool ServerConnection::Overloaded() const {
  const ServerLimits& limits = ctx_->limits();
  return awaiting_room_ || unanswered_ >= limits.max_pipelined ||
         unsent_bytes_ > limits.max_write_queue_bytes;
}

void ServerConnection::Parse(const char* data, size_t len) {
  in_parse_ = true;
  while (len > 0 && !closing_ && !stop_parsing_) {
    if (Overloaded()) {
      pending_input_.assign(data, len);
      break;
    }
    const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    if (err == HPE_OK) break;
    if (err == HPE_PAUSED) {  // a request is ready, or its body waits for room
      const char* pos = llhttp_get_error_pos(&parser_);
      len -= static_cast<size_t>(pos - data);
      data = pos;
      llhttp_resume(&parser_);
      if (message_ready_) Dispatch();
      continue;
    }
    if (err == HPE_PAUSED_UPGRADE) {  // upgrades are not supported; Dispatch closed after it
      stop_parsing_ = true;
      break;
    }
    if (error_status_ != 0) {
      RespondError(error_status_, error_detail_);
    } else {  // llhttp's own verdict names the problem ("Invalid character in chunk size")
      RespondError(400, ParseErrorDetail(&parser_, data, len));
    }
    break;
  }
  in_parse_ = false;
  if (!closing_ && !stop_parsing_ && Overloaded() && !paused_) {
    paused_ = true;
    ++ctx_->counters().backpressure_pauses;
    StopReading();
  }
}

void ServerConnection::MaybeResume() {
  // Parsing the kept input may pause again, and its answers may be written
  // at once (no write callback will come): go round until it is all parsed
  // or the connection really waits for something.
  while (paused_ && !closing_ && !Overloaded()) {
    paused_ = false;
    if (!pending_input_.empty()) {
      std::string input;
      input.swap(pending_input_);
      Parse(input.data(), input.size());
      Flush();
    }
  }
  if (!paused_ && peer_eof_ && !stop_parsing_) EndOfRequests();  // the kept input is all parsed
  if (!paused_ && !stop_parsing_) StartReading();
}

}  // namespace distkv::net
