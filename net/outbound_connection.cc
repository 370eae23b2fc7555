// See outbound_connection.h for the mechanism.
#include "net/outbound_connection.h"

#include <algorithm>
#include <limits>

#include "net/client_request.h"
#include "net/deadline_check.h"

namespace distkv::net {

namespace {

// Requests up to this size are copied into a shared write buffer; larger
// bodies are written from their own string.
constexpr size_t kCoalesceLimit = 64 * 1024;
constexpr size_t kReadBufferBytes = 64 * 1024;

OutboundConnection* FromHandle(void* data) { return static_cast<OutboundConnection*>(data); }

}  // namespace

struct ResolveReq {
  uv_getaddrinfo_t req;
  std::shared_ptr<OutboundConnection> conn;
};

std::shared_ptr<OutboundConnection> OutboundConnection::Create(uv_loop_t* loop,
                                                               const std::string& host, int port,
                                                               const ClientOptions& options) {
  std::shared_ptr<OutboundConnection> conn(new OutboundConnection(loop, host, port, options));
  conn->Start();
  return conn;
}

OutboundConnection::OutboundConnection(uv_loop_t* loop, const std::string& host, int port,
                                       const ClientOptions& options)
    : loop_(loop),
      host_(host),
      port_(port),
      host_header_(HostHeader(host, port)),
      options_(options),
      parser_(this) {}

OutboundConnection::~OutboundConnection() = default;

void OutboundConnection::Start() {
  uv_tcp_init(loop_, &tcp_);
  uv_timer_init(loop_, &timer_);
  uv_prepare_init(loop_, &flush_);
  tcp_.data = this;
  timer_.data = this;
  flush_.data = this;
  handles_open_ = 3;
  self_ = shared_from_this();
  ArmTimer(uv_now(loop_) + options_.connect_timeout_ms);

  struct sockaddr_storage addr;
  if (uv_ip4_addr(host_.c_str(), port_, reinterpret_cast<sockaddr_in*>(&addr)) == 0 ||
      uv_ip6_addr(host_.c_str(), port_, reinterpret_cast<sockaddr_in6*>(&addr)) == 0) {
    Connect(reinterpret_cast<const sockaddr*>(&addr));
    return;
  }
  // A host name: resolve it on libuv's thread pool.
  auto* resolve = new ResolveReq;
  resolve->conn = shared_from_this();
  struct addrinfo hints = {};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  std::string port = std::to_string(port_);
  int r = uv_getaddrinfo(loop_, &resolve->req, &OutboundConnection::OnResolvedCb, host_.c_str(),
                         port.c_str(), &hints);
  if (r < 0) {
    delete resolve;
    Close(ClientError::kConnectFailed, "cannot resolve " + host_ + ": " + uv_strerror(r));
  }
}

void OutboundConnection::OnResolvedCb(uv_getaddrinfo_t* req, int status, struct addrinfo* res) {
  auto* resolve = reinterpret_cast<ResolveReq*>(req);
  std::shared_ptr<OutboundConnection> conn = std::move(resolve->conn);
  delete resolve;
  if (conn->closed_) {
    uv_freeaddrinfo(res);
    return;
  }
  if (status < 0 || res == nullptr) {
    uv_freeaddrinfo(res);
    conn->Close(ClientError::kConnectFailed, "cannot resolve " + conn->host_ + ": " +
                                                 (status < 0 ? uv_strerror(status) : "no address"));
    return;
  }
  conn->Connect(res->ai_addr);
  uv_freeaddrinfo(res);
}

void OutboundConnection::Connect(const struct sockaddr* addr) {
  state_ = State::kConnecting;
  int r = uv_tcp_connect(&connect_req_, &tcp_, addr, &OutboundConnection::OnConnectCb);
  if (r < 0)
    Close(ClientError::kConnectFailed, "connect to " + host_header_ + ": " + uv_strerror(r));
}

void OutboundConnection::OnConnectCb(uv_connect_t* req, int status) {
  FromHandle(req->handle->data)->OnConnected(status);
}

void OutboundConnection::OnConnected(int status) {
  if (closed_ || status == UV_ECANCELED) return;
  if (status < 0) {
    Close(ClientError::kConnectFailed, "connect to " + host_header_ + ": " + uv_strerror(status));
    return;
  }
  state_ = State::kConnected;
  uv_tcp_nodelay(&tcp_, 1);
  int r = uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), &OutboundConnection::OnAllocCb,
                        &OutboundConnection::OnReadCb);
  if (r < 0) {
    Close(ClientError::kConnectionLost, "read from " + host_header_ + ": " + uv_strerror(r));
    return;
  }
  if (options_.tls && !TlsStart()) return;
  // Requests queued while connecting are sent now; their clocks start now.
  uint64_t now = uv_now(loop_);
  uint64_t earliest = std::numeric_limits<uint64_t>::max();
  for (size_t i = 0; i < in_flight_.size(); ++i) {
    InFlightRequest& p = in_flight_[i];
    p.deadline = now + p.timeout_ms;
    earliest = std::min(earliest, p.deadline);
  }
  if (!in_flight_.empty()) ArmTimer(earliest);
  Flush();
}

void OutboundConnection::Submit(OutboundRequest&& request, Callback&& callback) {
  if (closed_ || draining_) {
    ClientResult result;
    result.error = closed_ ? close_error_ : ClientError::kConnectionLost;
    result.detail = closed_ ? close_detail_ : host_header_ + " is closing the connection";
    callback(result, nullptr);
    return;
  }
  // Filled in place: the queue's slots are reused (ring_queue.h).
  InFlightRequest& p = in_flight_.emplace_back();
  p.callback = std::move(callback);
  p.timeout_ms = request.timeout_ms != 0 ? request.timeout_ms : options_.request_timeout_ms;
  p.head_method = request.method == "HEAD";
  p.write = !IsRetryableMethod(request.method);
  p.exclusive = request.on_body || request.may_wait;

  // Serialized straight into the outbox's last chunk: a burst of requests
  // is one buffer and one write. A large body is written from its own string.
  if (outbox_.empty() || outbox_.back().size() >= kCoalesceLimit) {
    outbox_.push_back(std::move(spare_));
    spare_.clear();
  }
  AppendRequestHead(&outbox_.back(), request, host_header_);
  if (request.body.size() <= kCoalesceLimit) {
    outbox_.back().append(request.body);
    p.resendable = IsRetryableMethod(request.method);
  } else {
    outbox_.push_back(std::move(request.body));
    request.body.clear();
  }
  p.request = std::move(request);
  if (p.exclusive) ++exclusive_pending_;
  if (p.write) ++writes_pending_;
  ++unsent_;
  if (state_ == State::kConnected) {
    p.deadline = uv_now(loop_) + p.timeout_ms;
    ArmTimer(p.deadline);
  }
  ScheduleFlush();
}

void OutboundConnection::ScheduleFlush() {
  if (state_ != State::kConnected || closed_ || writing_ || flush_scheduled_) return;
  uv_prepare_start(&flush_, &OutboundConnection::OnFlushCb);
  flush_scheduled_ = true;
}

void OutboundConnection::OnFlushCb(uv_prepare_t* prepare) {
  OutboundConnection* conn = FromHandle(prepare->data);
  uv_prepare_stop(prepare);
  conn->flush_scheduled_ = false;
  conn->Flush();
}

void OutboundConnection::Flush() {
  if (state_ != State::kConnected || closed_ || writing_ || outbox_.empty()) return;
  if (tls_ != nullptr && !tls_->established()) return;  // sent once the handshake is done
  auto* w = new WriteReq;
  w->conn = this;
  w->chunks.swap(outbox_);
  unsent_ = 0;
  if (tls_ != nullptr) TlsEncrypt(&w->chunks);
  uv_buf_t few[4];
  std::vector<uv_buf_t> many;
  uv_buf_t* bufs = few;
  if (w->chunks.size() > std::size(few)) {
    many.resize(w->chunks.size());
    bufs = many.data();
  }
  for (size_t i = 0; i < w->chunks.size(); ++i)
    bufs[i] = uv_buf_init(w->chunks[i].data(), w->chunks[i].size());
  int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp_), bufs, w->chunks.size(),
                   &OutboundConnection::OnWriteCb);
  if (r < 0) {
    delete w;
    Close(ClientError::kConnectionLost, "write to " + host_header_ + ": " + uv_strerror(r));
    return;
  }
  writing_ = true;
}

void OutboundConnection::OnWriteCb(uv_write_t* req, int status) {
  auto* w = reinterpret_cast<WriteReq*>(req);
  w->conn->OnWritten(w, status);
}

void OutboundConnection::OnWritten(WriteReq* req, int status) {
  if (!req->raw) {
    writing_ = false;
    // The first chunk's buffer serializes the next requests (no allocation
    // per write); over HTTPS it is the ciphertext's, and takes the next.
    if (!req->chunks.empty()) KeepSpare(&req->chunks[0], tls_ != nullptr ? &tls_spare_ : &spare_);
  }
  delete req;
  if (closed_) return;
  if (status < 0) {
    Close(ClientError::kConnectionLost, "write to " + host_header_ + ": " + uv_strerror(status));
    return;
  }
  Flush();
}

void OutboundConnection::KeepSpare(std::string* buffer, std::string* spare) {
  if (buffer->capacity() > 2 * kCoalesceLimit) return;  // grown by a large burst: let go
  *spare = std::move(*buffer);
  spare->clear();
}

void OutboundConnection::ArmTimer(uint64_t deadline) {
  if (closed_) return;
  if (timer_armed_ && timer_due_ <= deadline) return;
  uint64_t now = uv_now(loop_);
  uv_timer_start(&timer_, &OutboundConnection::OnTimerCb, deadline > now ? deadline - now : 0, 0);
  timer_armed_ = true;
  timer_due_ = deadline;
}

void OutboundConnection::OnTimerCb(uv_timer_t* timer) { FromHandle(timer->data)->OnTimer(); }

void OutboundConnection::OnTimer() {
  timer_armed_ = false;
  if (closed_) return;
  if (state_ != State::kConnected) {
    Close(ClientError::kConnectTimeout, "no connection to " + host_header_ + " within " +
                                            std::to_string(options_.connect_timeout_ms) + " ms");
    return;
  }
  uint64_t now = uv_now(loop_);
  uint64_t earliest = std::numeric_limits<uint64_t>::max();
  bool expired = false;
  DeadlineCheck check(&tcp_, now);
  for (size_t i = 0; i < in_flight_.size(); ++i) {
    InFlightRequest& p = in_flight_[i];
    const bool stream = p.request.on_body != nullptr;
    switch (check.Check(p.deadline, stream || !p.waited_for_read)) {
      case DeadlineCheck::Verdict::kPeerSpoke:
        // A stream's deadline moves on as if the bytes had been read; a
        // response gets its timeout once more.
        p.waited_for_read = !stream;
        p.deadline = now + p.timeout_ms;
        break;
      case DeadlineCheck::Verdict::kPassed:
        p.timed_out = true;
        expired = true;
        break;
      case DeadlineCheck::Verdict::kAhead:
        break;
    }
    if (!p.timed_out) earliest = std::min(earliest, p.deadline);
  }
  if (expired) {
    // The byte stream cannot be resynchronised: the connection closes. The
    // requests pipelined behind the late one may have been applied by the
    // peer or not: an idempotent one is offered for a resend (on another
    // connection), the others fail as timed out, which says just that.
    Shutdown(ClientError::kTimeout,
             "the connection to " + host_header_ +
                 " was closed after an earlier request on it timed out",
             /*allow_resend=*/true);
  } else if (!in_flight_.empty()) {
    ArmTimer(earliest);
  }
}

void OutboundConnection::OnAllocCb(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  OutboundConnection* conn = FromHandle(handle->data);
  if (!conn->read_buf_) conn->read_buf_.reset(new char[kReadBufferBytes]);
  *buf = uv_buf_init(conn->read_buf_.get(), kReadBufferBytes);
}

void OutboundConnection::OnReadCb(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  FromHandle(stream->data)->OnRead(nread, buf);
}

void OutboundConnection::OnRead(ssize_t nread, const uv_buf_t* buf) {
  if (closed_ || nread == 0) return;
  std::shared_ptr<OutboundConnection> guard = shared_from_this();
  if (nread < 0) {
    OnEof(nread);
    return;
  }
  // A stream's timeout is an idle timeout: every byte moves it on.
  if (!in_flight_.empty() && in_flight_.front().request.on_body) {
    in_flight_.front().deadline = uv_now(loop_) + in_flight_.front().timeout_ms;
  }
  if (tls_ != nullptr) {
    TlsRead(buf->base, static_cast<size_t>(nread));
  } else {
    Feed(buf->base, static_cast<size_t>(nread));
  }
}

void OutboundConnection::Feed(const char* data, size_t len) {
  ResponseParser::Result r = parser_.Feed(data, len);
  if (closed_) return;
  if (r == ResponseParser::Result::kError) {
    Close(ClientError::kProtocol, "bad response from " + host_header_ + ": " + parser_.error());
  }
}

void OutboundConnection::OnEof(ssize_t status) {
  bool partial = parser_.in_response();
  if (status == UV_EOF && partial) {
    // A body that runs to the end of the connection completes now.
    ResponseParser::Result r = parser_.Finish();
    if (closed_) return;
    if (r == ResponseParser::Result::kOk && !parser_.in_response()) partial = false;
  }
  std::string detail = status == UV_EOF ? host_header_ + " closed the connection"
                                        : "read from " + host_header_ + ": " + uv_strerror(status);
  if (partial) detail += " in the middle of a response";
  // Only a connection that has answered before can have been closed as idle
  // by the peer just as we reused it; a fresh one that fails is the peer's fault.
  Shutdown(ClientError::kConnectionLost, detail, !partial && responses_completed_ > 0);
}

ResponseParser::HeaderFilter OutboundConnection::OnResponseBegin() {
  return in_flight_.empty() ? nullptr : in_flight_.front().request.relay_header;
}

ResponseParser::BodyMode OutboundConnection::OnResponseHead(const HttpResponse& head) {
  if (in_flight_.empty()) {
    Close(ClientError::kProtocol, "response from " + host_header_ + " to no request");
    return ResponseParser::BodyMode::kStop;
  }
  InFlightRequest& p = in_flight_.front();
  if (p.request.on_head) {
    p.request.on_head(head);
    if (closed_) return ResponseParser::BodyMode::kStop;
  }
  if (p.head_method) return ResponseParser::BodyMode::kNone;
  return p.request.on_body ? ResponseParser::BodyMode::kStream : ResponseParser::BodyMode::kCollect;
}

bool OutboundConnection::OnResponseBody(std::string_view chunk) {
  bool more = in_flight_.front().request.on_body(chunk);
  if (closed_) return false;
  if (!more) {
    Close(ClientError::kShutdown, "stream from " + host_header_ + " stopped by its receiver");
    return false;
  }
  return true;
}

bool OutboundConnection::OnResponseComplete(HttpResponse& response, bool keep_alive) {
  // Only the callback is taken out: the entry's slot is reset and stays in
  // the queue for a later request.
  InFlightRequest& p = in_flight_.front();
  Callback callback = std::move(p.callback);
  if (p.exclusive) --exclusive_pending_;
  if (p.write) --writes_pending_;
  in_flight_.pop_front();
  ++responses_completed_;
  if (!keep_alive) draining_ = true;
  ClientResult result;
  result.response = std::move(response);
  callback(result, nullptr);
  if (closed_) return false;
  if (draining_) {
    Close(ClientError::kConnectionLost,
          host_header_ + " closed the connection after an earlier response");
    return false;
  }
  return true;
}

void OutboundConnection::Close(ClientError error, const std::string& detail) {
  Shutdown(error, detail, false);
}

void OutboundConnection::Shutdown(ClientError error, const std::string& detail, bool allow_resend) {
  if (closed_) return;
  std::shared_ptr<OutboundConnection> guard = shared_from_this();
  closed_ = true;
  close_error_ = error;
  close_detail_ = detail;
  timer_armed_ = false;
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), &OutboundConnection::OnHandleClosedCb);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), &OutboundConnection::OnHandleClosedCb);
  uv_close(reinterpret_cast<uv_handle_t*>(&flush_), &OutboundConnection::OnHandleClosedCb);
  outbox_.clear();
  RingQueue<InFlightRequest> pending;
  pending.swap(in_flight_);
  exclusive_pending_ = 0;
  writes_pending_ = 0;
  unsent_ = 0;
  if (on_close_) {
    std::function<void()> fn = std::move(on_close_);
    on_close_ = nullptr;
    fn();
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    InFlightRequest& p = pending[i];
    ClientResult result;
    if (p.timed_out) {
      result.error = ClientError::kTimeout;
      result.detail =
          "no response from " + host_header_ + " within " + std::to_string(p.timeout_ms) + " ms";
    } else {
      result.error = error;
      result.detail = detail;
    }
    p.callback(result, allow_resend && p.resendable && !p.timed_out ? &p.request : nullptr);
  }
}

void OutboundConnection::OnHandleClosedCb(uv_handle_t* handle) {
  OutboundConnection* conn = FromHandle(handle->data);
  if (--conn->handles_open_ > 0) return;
  // The last reference may be this one: the connection is deleted on return.
  std::shared_ptr<OutboundConnection> last;
  last.swap(conn->self_);
}

}  // namespace distkv::net
