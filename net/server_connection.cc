// Connection and ServerContext; the mechanism is described in
// server_connection.h.
#include "net/server_connection.h"

#include <netinet/in.h>

#include <algorithm>
#include <charconv>

namespace distkv::net {

namespace {

constexpr size_t kSmallBody = 1024;          // bodies up to this travel in the head's buffer
constexpr size_t kCoalesceBytes = 4096;      // pieces up to this are copied into one write buffer
constexpr size_t kMaxBodyReserve = 1 << 20;  // a Content-Length is not trusted beyond this
constexpr size_t kMaxFreeSlots = 16;
constexpr size_t kMaxFreeBatches = 4;
constexpr size_t kMaxKeptBatchBuffer = 64 * 1024;
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

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

struct ErrorText {
  std::string_view code;
  std::string_view message;
};

ErrorText ErrorFor(int status) {
  switch (status) {
    case 411:
      return {"length_required", "PUT and POST need a Content-Length header or a chunked body"};
    case 413:
      return {"payload_too_large", "the request body is larger than the server accepts"};
    case 414:
      return {"uri_too_long", "the request target is longer than the server accepts"};
    case 417:
      return {"expectation_failed", "only \"Expect: 100-continue\" is supported"};
    case 431:
      return {"request_header_fields_too_large",
              "the request headers are larger than the server accepts"};
    default:
      return {"bad_request", "the request is not valid HTTP/1.1"};
  }
}

bool ParseLength(std::string_view text, uint64_t* out) {
  const auto r = std::from_chars(text.data(), text.data() + text.size(), *out);
  return r.ec == std::errc() && r.ptr == text.data() + text.size();
}

}  // namespace

// ---------------------------------------------------------------------------
// Responder

void Responder::Send(HttpResponse&& response) {
  if (slot_ && slot_->conn) slot_->conn->Answer(slot_.get(), std::move(response));
}

void Responder::BeginStream(HttpResponse&& head) {
  if (slot_ && slot_->conn) slot_->conn->BeginStream(slot_.get(), std::move(head));
}

void Responder::WriteChunk(std::string_view data) {
  if (slot_ && slot_->conn) slot_->conn->WriteChunk(slot_.get(), data);
}

void Responder::EndStream() {
  if (slot_ && slot_->conn) slot_->conn->EndStream(slot_.get());
}

size_t Responder::queued_bytes() const {
  return slot_ && slot_->conn ? slot_->conn->queued_bytes() : 0;
}

bool Responder::alive() const { return slot_ && slot_->conn; }

void Responder::OnClose(std::function<void()> fn) {
  if (slot_ && slot_->conn) slot_->on_close = std::move(fn);
}

// ---------------------------------------------------------------------------
// ServerContext

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
  for (Connection* c = first_; c != nullptr;) {
    Connection* next = c->next_;
    c->Detach();
    c->Close();
    c = next;
  }
  if (check_ != nullptr) {
    check_->data = nullptr;
    if (!hooks_closing_) uv_close(reinterpret_cast<uv_handle_t*>(check_), OnHookClosed);
  }
  if (idle_ != nullptr) {
    idle_->data = nullptr;
    if (!hooks_closing_) uv_close(reinterpret_cast<uv_handle_t*>(idle_), OnHookClosed);
  }
}

void ServerContext::Accept(uv_stream_t* listener) {
  if (counters_.connections_current >= limits_.max_connections) {
    auto* tcp = new uv_tcp_t;
    uv_tcp_init(loop_, tcp);
    uv_accept(listener, reinterpret_cast<uv_stream_t*>(tcp));
    uv_close(reinterpret_cast<uv_handle_t*>(tcp),
             [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
    ++counters_.connections_rejected;
    return;
  }
  Connection::Accept(this, listener);
}

void ServerContext::Link(Connection* c) {
  c->prev_ = nullptr;
  c->next_ = first_;
  if (first_ != nullptr) first_->prev_ = c;
  first_ = c;
  ++counters_.connections_current;
}

void ServerContext::Unlink(Connection* c) {
  if (c->prev_ != nullptr)
    c->prev_->next_ = c->next_;
  else
    first_ = c->next_;
  if (c->next_ != nullptr) c->next_->prev_ = c->prev_;
  c->prev_ = c->next_ = nullptr;
  --counters_.connections_current;
}

void ServerContext::ScheduleFlush(Connection* c) {
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

void ServerContext::CancelFlush(Connection* c) {
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
    Connection* c = ctx->flushing_[i];
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

void ServerContext::BeginDrain() {
  if (draining_) return;
  // Answers given before the shutdown leave first (unless this is a
  // callback of that very flush, which then carries on by itself).
  if (hooks_open() && !flush_queue_.empty() && !in_check_) OnCheck(check_);
  draining_ = true;
  for (Connection* c = first_; c != nullptr; c = c->next_) c->Drain();
  CloseHooks();
}

void ServerContext::CloseHooks() {
  if (!hooks_open()) return;
  hooks_closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(check_), OnHookClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(idle_), OnHookClosed);
}

void ServerContext::OnHookClosed(uv_handle_t* handle) {
  auto* ctx = static_cast<ServerContext*>(handle->data);
  if (handle->type == UV_CHECK) {
    delete reinterpret_cast<uv_check_t*>(handle);
    if (ctx != nullptr) ctx->check_ = nullptr;
  } else {
    delete reinterpret_cast<uv_idle_t*>(handle);
    if (ctx != nullptr) ctx->idle_ = nullptr;
  }
  if (ctx != nullptr && ctx->check_ == nullptr && ctx->idle_ == nullptr) ctx->HooksClosed();
}

// ---------------------------------------------------------------------------
// Connection: setup and teardown

struct Connection::WriteBatch {
  // One piece of the batch: a range of small_ or one of large_.
  struct Piece {
    bool small;
    size_t index;  // offset into small_, or index into large_
    size_t len;
  };

  uv_write_t req;
  Connection* conn = nullptr;
  std::string small_;
  std::vector<std::string> large_;
  std::vector<Piece> pieces_;
  std::vector<uv_buf_t> bufs_;
  size_t bytes = 0;

  // Takes the bytes of *s, leaving it empty (short strings keep their capacity).
  void Add(std::string* s) {
    if (s->empty()) return;
    bytes += s->size();
    if (s->size() <= kCoalesceBytes) {
      if (!pieces_.empty() && pieces_.back().small)
        pieces_.back().len += s->size();
      else
        pieces_.push_back(Piece{true, small_.size(), s->size()});
      small_.append(*s);
      s->clear();
    } else {
      pieces_.push_back(Piece{false, large_.size(), s->size()});
      large_.push_back(std::move(*s));
      s->clear();
    }
  }

  // The buffers for uv_write; valid until the batch changes.
  void Seal() {
    bufs_.clear();
    for (const Piece& p : pieces_) {
      char* base = p.small ? small_.data() + p.index : large_[p.index].data();
      bufs_.push_back(uv_buf_init(base, static_cast<unsigned>(p.len)));
    }
  }

  // Drops the first n bytes, already written.
  void Consume(size_t n) {
    bytes -= n;
    size_t drop = 0;
    while (n > 0 && n >= bufs_[drop].len) n -= bufs_[drop++].len;
    bufs_.erase(bufs_.begin(), bufs_.begin() + static_cast<ptrdiff_t>(drop));
    if (n > 0) {
      bufs_.front().base += n;
      bufs_.front().len -= n;
    }
  }

  void Reset() {
    if (small_.capacity() > kMaxKeptBatchBuffer) std::string().swap(small_);
    small_.clear();
    large_.clear();
    pieces_.clear();
    bufs_.clear();
    bytes = 0;
  }
};

Connection::Connection(ServerContext* ctx) : ctx_(ctx) {
  uv_tcp_init(ctx->loop(), &tcp_);
  uv_timer_init(ctx->loop(), &timer_);
  tcp_.data = this;
  timer_.data = this;
  handles_open_ = 2;
  llhttp_init(&parser_, HTTP_REQUEST, ParserSettings());
  parser_.data = this;
  ctx->Link(this);
}

Connection::~Connection() {
  for (WriteBatch* b : free_batches_) delete b;
}

bool Connection::Accept(ServerContext* ctx, uv_stream_t* listener) {
  auto* c = new Connection(ctx);
  if (uv_accept(listener, reinterpret_cast<uv_stream_t*>(&c->tcp_)) != 0) {
    c->Close();
    return false;
  }
  ++ctx->counters().connections_accepted;
  uv_tcp_nodelay(&c->tcp_, 1);
  c->peer_ = PeerName(&c->tcp_);
  c->accepted_at_ = c->last_activity_ = uv_now(ctx->loop());
  c->StartReading();
  c->ArmTimer();
  return true;
}

void Connection::Close() {
  if (closing_) return;
  closing_ = true;
  if (ctx_ != nullptr) ctx_->CancelFlush(this);
  reading_ = false;
  pending_input_.clear();
  in_message_ = false;
  DropSlots();
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp_), OnHandleClosed);
  uv_close(reinterpret_cast<uv_handle_t*>(&timer_), OnHandleClosed);
}

void Connection::OnHandleClosed(uv_handle_t* handle) {
  auto* c = static_cast<Connection*>(handle->data);
  if (--c->handles_open_ > 0) return;
  ServerContext* ctx = c->ctx_;
  if (ctx != nullptr) ctx->Unlink(c);
  delete c;
  if (ctx != nullptr) ctx->ConnectionGone();
}

void Connection::DropSlots() {
  std::vector<std::function<void()>> callbacks;
  for (auto& slot : slots_) {
    slot->conn = nullptr;
    unsent_bytes_ -= slot->out.size() + slot->body.size();
    if (slot->on_close) callbacks.push_back(std::move(slot->on_close));
  }
  slots_.clear();
  current_.reset();
  unanswered_ = 0;
  for (auto& fn : callbacks) fn();
}

void Connection::Drain() {
  if (closing_) return;
  if (lingering_) {  // everything is written; no reason to wait for the client
    Close();
    return;
  }
  stop_parsing_ = true;
  StopReading();
  pending_input_.clear();
  paused_ = false;
  if (current_ != nullptr) {  // a request still arriving is abandoned
    unsent_bytes_ -= current_->out.size();
    current_->conn = nullptr;
    slots_.pop_back();
    current_.reset();
  }
  in_message_ = false;
  MaybeFinish();
  ArmTimer();
}

void Connection::MaybeFinish() {
  if (closing_ || lingering_ || !stop_parsing_ || !slots_.empty() || writes_in_flight_ > 0) return;
  if (ctx_ == nullptr || ctx_->draining()) {
    Close();
    return;
  }
  // Shut down our side and drop whatever the client still sends, so the last
  // response is not destroyed by a reset (see the top of the header).
  lingering_ = true;
  linger_start_ = uv_now(ctx_->loop());
  if (uv_shutdown(&shutdown_req_, reinterpret_cast<uv_stream_t*>(&tcp_), OnShutdown) != 0) {
    Close();
    return;
  }
  StartReading();
  ArmTimer();
}

void Connection::OnShutdown(uv_shutdown_t* req, int status) {
  auto* c = static_cast<Connection*>(req->handle->data);
  if (status < 0) c->Close();
}

// ---------------------------------------------------------------------------
// Reading and parsing

void Connection::StartReading() {
  if (reading_ || closing_) return;
  if (uv_read_start(reinterpret_cast<uv_stream_t*>(&tcp_), OnAlloc, OnRead) == 0) reading_ = true;
}

void Connection::StopReading() {
  if (!reading_) return;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(&tcp_));
  reading_ = false;
}

void Connection::OnAlloc(uv_handle_t* handle, size_t, uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(handle->data);
  if (c->ctx_ == nullptr) {
    *buf = uv_buf_init(nullptr, 0);
    return;
  }
  *buf = uv_buf_init(c->ctx_->read_buffer(), ServerContext::kReadBufferSize);
}

void Connection::OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  auto* c = static_cast<Connection*>(stream->data);
  if (nread < 0) {  // EOF or error: also the normal end of a lingering close
    c->Close();
    return;
  }
  if (nread == 0 || c->lingering_ || c->closing_) return;
  c->last_activity_ = uv_now(c->ctx_->loop());
  c->Parse(buf->base, static_cast<size_t>(nread));
  c->FlushAndResume();
}

bool Connection::Overloaded() const {
  const ServerLimits& limits = ctx_->limits();
  return unanswered_ >= limits.max_pipelined || unsent_bytes_ > limits.max_write_queue_bytes;
}

void Connection::Parse(const char* data, size_t len) {
  in_parse_ = true;
  while (len > 0 && !closing_ && !stop_parsing_) {
    if (Overloaded()) {
      pending_input_.assign(data, len);
      break;
    }
    const llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    if (err == HPE_OK) break;
    if (err == HPE_PAUSED) {  // on_message_complete: one request is ready
      const char* pos = llhttp_get_error_pos(&parser_);
      len -= static_cast<size_t>(pos - data);
      data = pos;
      llhttp_resume(&parser_);
      Dispatch();
      continue;
    }
    if (err == HPE_PAUSED_UPGRADE) {  // upgrades are not supported; Dispatch closed after it
      stop_parsing_ = true;
      break;
    }
    RespondError(error_status_ != 0 ? error_status_ : 400);
    break;
  }
  in_parse_ = false;
  if (!closing_ && !stop_parsing_ && Overloaded() && !paused_) {
    paused_ = true;
    ++ctx_->counters().backpressure_pauses;
    StopReading();
  }
}

void Connection::MaybeResume() {
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
  if (!paused_ && !stop_parsing_) StartReading();
}

void Connection::Dispatch() {
  message_ready_ = false;
  std::shared_ptr<Responder::Slot> slot = std::move(current_);
  if (slot == nullptr) return;
  slot->state = Responder::Slot::State::kPending;
  slot->keep_alive = request_.keep_alive;
  ++unanswered_;
  ++requests_seen_;
  ++ctx_->counters().requests;
  if (!request_.keep_alive) stop_parsing_ = true;  // nothing after it is read
  ctx_->handler()(request_, Responder(std::move(slot)));
}

void Connection::RespondError(int status) {
  ++ctx_->counters().parse_errors;
  std::shared_ptr<Responder::Slot> slot = std::move(current_);
  if (slot == nullptr) {
    slot = NewSlot();
    slot->conn = this;
    slots_.push_back(slot);
  }
  slot->head_request = false;
  slot->close_after = true;
  const ErrorText text = ErrorFor(status);
  HttpResponse response = MakeErrorResponse(status, text.code, text.message);
  const size_t before = slot->out.size();
  AppendResponseHead(response, BodyFraming::kContentLength, response.body.size(),
                     ConnectionHeader::kClose, ctx_->extra_headers(), &slot->out);
  slot->out.append(response.body);
  AddUnsent(slot->out.size() - before);
  slot->state = Responder::Slot::State::kDone;
  in_message_ = false;
  message_ready_ = false;
  stop_parsing_ = true;
  pending_input_.clear();
  StopReading();
}

// llhttp callbacks. A callback that rejects the request sets error_status_
// and returns -1, which makes llhttp_execute fail.

const llhttp_settings_t* Connection::ParserSettings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = OnMessageBegin;
    s.on_url = OnUrl;
    s.on_header_field = OnHeaderField;
    s.on_header_field_complete = [](llhttp_t* p) {
      static_cast<Connection*>(p->data)->in_header_field_ = false;
      return 0;
    };
    s.on_header_value = OnHeaderValue;
    s.on_header_value_complete = OnHeaderValueComplete;
    s.on_headers_complete = OnHeadersComplete;
    s.on_body = OnBody;
    s.on_message_complete = OnMessageComplete;
    return s;
  }();
  return &settings;
}

int Connection::OnMessageBegin(llhttp_t* p) {
  auto* c = static_cast<Connection*>(p->data);
  HttpRequest& r = c->request_;
  r.method.clear();
  r.target.clear();
  r.path.clear();
  r.query.clear();
  r.headers.clear();
  r.body.clear();
  r.http_major = 1;
  r.http_minor = 1;
  r.keep_alive = true;
  c->header_bytes_ = 0;
  c->body_bytes_ = 0;
  c->error_status_ = 0;
  c->in_header_field_ = false;
  c->in_message_ = true;
  c->head_complete_ = false;
  c->head_start_ = uv_now(c->ctx_->loop());
  return 0;
}

int Connection::OnUrl(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<Connection*>(p->data);
  std::string& target = c->request_.target;
  if (target.size() + len > c->ctx_->limits().max_url_bytes) {
    c->error_status_ = 414;
    return -1;
  }
  target.append(at, len);
  return 0;
}

int Connection::OnHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<Connection*>(p->data);
  std::vector<Header>& headers = c->request_.headers;
  if (!c->in_header_field_) {  // a new header line (a name may come in pieces)
    headers.emplace_back();
    c->header_bytes_ += 4;  // ": " and CRLF
    c->in_header_field_ = true;
  }
  c->header_bytes_ += len;
  if (c->header_bytes_ > c->ctx_->limits().max_header_bytes) {
    c->error_status_ = 431;
    return -1;
  }
  headers.back().name.append(at, len);
  return 0;
}

int Connection::OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<Connection*>(p->data);
  c->header_bytes_ += len;
  if (c->header_bytes_ > c->ctx_->limits().max_header_bytes) {
    c->error_status_ = 431;
    return -1;
  }
  c->request_.headers.back().value.append(at, len);
  return 0;
}

int Connection::OnHeaderValueComplete(llhttp_t* p) {
  auto* c = static_cast<Connection*>(p->data);
  std::string& value = c->request_.headers.back().value;
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  return 0;
}

int Connection::OnHeadersComplete(llhttp_t* p) {
  auto* c = static_cast<Connection*>(p->data);
  HttpRequest& r = c->request_;
  const ServerLimits& limits = c->ctx_->limits();
  c->head_complete_ = true;

  const auto method = static_cast<llhttp_method_t>(p->method);
  r.method.assign(llhttp_method_name(method));
  r.http_major = p->http_major;
  r.http_minor = p->http_minor;
  const size_t q = r.target.find('?');
  if (q == std::string::npos) {
    r.path.assign(r.target);
  } else {
    r.path.assign(r.target, 0, q);
    r.query.assign(r.target, q + 1);
  }
  r.peer = c->peer_;

  const bool chunked = (p->flags & F_CHUNKED) != 0;
  const bool has_length = (p->flags & F_CONTENT_LENGTH) != 0;
  if (has_length && p->content_length > limits.max_body_bytes) {
    c->error_status_ = 413;
    return -1;
  }
  // A PUT's body is the value it stores: no length means a broken client.
  // A POST without one has an empty body (RFC 9112 6.3), which is what
  // `curl -X POST URL` sends to the seed API's /set?key=..&value=...
  if (!chunked && !has_length && method == HTTP_PUT) {
    c->error_status_ = 411;
    return -1;
  }
  const bool http11 = r.http_major > 1 || (r.http_major == 1 && r.http_minor >= 1);
  bool send_continue = false;
  if (const std::string* expect = r.header("Expect")) {
    if (!EqualsIgnoreCase(*expect, "100-continue")) {
      c->error_status_ = 417;
      return -1;
    }
    send_continue = http11 && (chunked || p->content_length > 0);
  }
  if (has_length) r.body.reserve(std::min<uint64_t>(p->content_length, kMaxBodyReserve));

  std::shared_ptr<Responder::Slot> slot = c->NewSlot();
  slot->conn = c;
  slot->head_request = method == HTTP_HEAD;
  slot->http10 = !http11;
  if (send_continue) {
    slot->out.append(kContinue);
    c->AddUnsent(kContinue.size());
  }
  c->slots_.push_back(slot);
  c->current_ = std::move(slot);
  return 0;
}

int Connection::OnBody(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<Connection*>(p->data);
  c->body_bytes_ += len;
  if (c->body_bytes_ > c->ctx_->limits().max_body_bytes) {
    c->error_status_ = 413;
    return -1;
  }
  c->request_.body.append(at, len);
  return 0;
}

int Connection::OnMessageComplete(llhttp_t* p) {
  auto* c = static_cast<Connection*>(p->data);
  c->request_.keep_alive = llhttp_should_keep_alive(p) != 0 && p->upgrade == 0;
  c->in_message_ = false;
  c->message_ready_ = true;
  return HPE_PAUSED;  // Dispatch runs outside llhttp
}

// ---------------------------------------------------------------------------
// Answers

std::shared_ptr<Responder::Slot> Connection::NewSlot() {
  if (free_slots_.empty()) return std::make_shared<Responder::Slot>();
  std::shared_ptr<Responder::Slot> slot = std::move(free_slots_.back());
  free_slots_.pop_back();
  return slot;
}

void Connection::RecycleSlot(std::shared_ptr<Responder::Slot>&& slot) {
  // Only a slot no Responder still holds can be reused.
  if (slot.use_count() != 1 || free_slots_.size() >= kMaxFreeSlots) return;
  Responder::Slot& s = *slot;
  s.conn = nullptr;
  s.state = Responder::Slot::State::kReceiving;
  s.head_request = s.http10 = s.chunked = s.close_after = false;
  s.keep_alive = true;
  s.out.clear();
  s.body.clear();
  s.on_close = nullptr;
  free_slots_.push_back(std::move(slot));
}

ConnectionHeader Connection::DecideConnection(Responder::Slot* slot, bool handler_asks_close) {
  if (handler_asks_close || !slot->keep_alive || slot->close_after) {
    slot->close_after = true;
    return ConnectionHeader::kClose;
  }
  // Shutting down: the last response says so; the connection closes once all
  // are written.
  if (ctx_ != nullptr && ctx_->draining() && slots_.back().get() == slot) {
    return ConnectionHeader::kClose;
  }
  return slot->http10 ? ConnectionHeader::kKeepAlive : ConnectionHeader::kNone;
}

void Connection::Answer(Responder::Slot* slot, HttpResponse&& response) {
  if (slot->state != Responder::Slot::State::kPending) return;
  const ConnectionHeader connection = DecideConnection(slot, ResponseAsksClose(response));
  BodyFraming framing = BodyFraming::kContentLength;
  uint64_t length = response.body.size();
  if (!StatusHasBody(response.status)) {
    framing = BodyFraming::kNone;
    response.body.clear();
  } else if (slot->head_request) {
    // A HEAD answer describes the GET body without sending it; a handler may
    // also leave the body out and state its length itself.
    if (response.body.empty()) {
      if (const std::string* declared = response.header("Content-Length")) {
        uint64_t n = 0;
        if (ParseLength(*declared, &n)) length = n;
      }
    }
    response.body.clear();
  }
  const size_t before = slot->out.size();
  AppendResponseHead(response, framing, length, connection, ctx_->extra_headers(), &slot->out);
  if (response.body.size() <= kSmallBody)
    slot->out.append(response.body);
  else
    slot->body = std::move(response.body);
  AddUnsent(slot->out.size() - before + slot->body.size());
  slot->state = Responder::Slot::State::kDone;
  --unanswered_;
  OutputReady();
}

void Connection::BeginStream(Responder::Slot* slot, HttpResponse&& head) {
  if (slot->state != Responder::Slot::State::kPending) return;
  ConnectionHeader connection = DecideConnection(slot, ResponseAsksClose(head));
  BodyFraming framing = BodyFraming::kChunked;
  slot->chunked = true;
  if (slot->http10) {  // no chunked coding in HTTP/1.0: the body ends with the connection
    framing = BodyFraming::kUntilClose;
    slot->chunked = false;
    slot->close_after = true;
    connection = ConnectionHeader::kClose;
  }
  const size_t before = slot->out.size();
  AppendResponseHead(head, framing, 0, connection, ctx_->extra_headers(), &slot->out);
  AddUnsent(slot->out.size() - before);
  slot->state = Responder::Slot::State::kStreaming;
  OutputReady();
}

void Connection::WriteChunk(Responder::Slot* slot, std::string_view data) {
  if (slot->state != Responder::Slot::State::kStreaming || data.empty() || slot->head_request) {
    return;
  }
  const size_t before = slot->out.size();
  if (slot->chunked)
    AppendChunk(data, &slot->out);
  else
    slot->out.append(data);
  AddUnsent(slot->out.size() - before);
  OutputReady();
}

void Connection::EndStream(Responder::Slot* slot) {
  if (slot->state != Responder::Slot::State::kStreaming) return;
  if (slot->chunked && !slot->head_request) {
    const size_t before = slot->out.size();
    AppendLastChunk(&slot->out);
    AddUnsent(slot->out.size() - before);
  }
  slot->state = Responder::Slot::State::kDone;
  --unanswered_;
  OutputReady();
}

void Connection::OutputReady() {
  if (in_parse_) return;  // the parse's caller flushes when it ends
  if (ctx_ != nullptr)
    ctx_->ScheduleFlush(this);
  else
    FlushAndResume();
}

// ---------------------------------------------------------------------------
// Writing

void Connection::FlushAndResume() {
  if (closing_) return;
  Flush();
  MaybeResume();
  MaybeFinish();
  ArmTimer();
}

void Connection::Flush() {
  if (closing_ || lingering_) return;
  bool close_after = false;
  WriteBatch* batch = CollectReady(&close_after);
  if (batch != nullptr) Write(batch);
  if (close_after && !closing_) {  // later requests are not answered: the client must retry them
    stop_parsing_ = true;
    pending_input_.clear();
    StopReading();
    DropSlots();
  }
}

Connection::WriteBatch* Connection::CollectReady(bool* close_after) {
  WriteBatch* batch = nullptr;
  while (!slots_.empty()) {
    Responder::Slot* slot = slots_.front().get();
    if (!slot->out.empty() || !slot->body.empty()) {
      if (batch == nullptr) {
        if (free_batches_.empty()) {
          batch = new WriteBatch;
        } else {
          batch = free_batches_.back();
          free_batches_.pop_back();
        }
      }
      batch->Add(&slot->out);
      batch->Add(&slot->body);
    }
    if (slot->state != Responder::Slot::State::kDone) break;  // unanswered or still streaming
    *close_after = slot->close_after;
    slot->conn = nullptr;
    std::shared_ptr<Responder::Slot> done = std::move(slots_.front());
    slots_.pop_front();
    RecycleSlot(std::move(done));
    if (*close_after) break;
  }
  return batch;
}

void Connection::Write(WriteBatch* batch) {
  batch->Seal();
  auto* stream = reinterpret_cast<uv_stream_t*>(&tcp_);
  const auto nbufs = static_cast<unsigned>(batch->bufs_.size());
  if (writes_in_flight_ == 0) {
    // Most batches fit in the socket buffer: write them at once. Besides
    // saving a loop turn, this skips the write request whose completion
    // makes libuv re-register the socket with epoll.
    const int n = uv_try_write(stream, batch->bufs_.data(), nbufs);
    if (n < 0 && n != UV_EAGAIN) {
      unsent_bytes_ -= batch->bytes;
      RecycleBatch(batch);
      Close();
      return;
    }
    if (n > 0) {
      const auto written = static_cast<size_t>(n);
      unsent_bytes_ -= written;
      last_activity_ = uv_now(ctx_->loop());
      if (written == batch->bytes) {
        RecycleBatch(batch);
        return;
      }
      batch->Consume(written);
    }
  }
  batch->conn = this;
  batch->req.data = batch;
  const int r = uv_write(&batch->req, stream, batch->bufs_.data(),
                         static_cast<unsigned>(batch->bufs_.size()), OnWrite);
  if (r != 0) {
    unsent_bytes_ -= batch->bytes;
    RecycleBatch(batch);
    Close();
    return;
  }
  ++writes_in_flight_;
}

void Connection::RecycleBatch(WriteBatch* batch) {
  batch->Reset();
  if (free_batches_.size() < kMaxFreeBatches)
    free_batches_.push_back(batch);
  else
    delete batch;
}

void Connection::OnWrite(uv_write_t* req, int status) {
  auto* batch = static_cast<WriteBatch*>(req->data);
  Connection* c = batch->conn;
  c->unsent_bytes_ -= batch->bytes;
  --c->writes_in_flight_;
  c->RecycleBatch(batch);
  if (c->closing_) return;
  if (status < 0) {
    c->Close();
    return;
  }
  c->last_activity_ = uv_now(c->ctx_->loop());
  c->MaybeResume();
  c->MaybeFinish();
  c->ArmTimer();
}

// ---------------------------------------------------------------------------
// Timeouts

uint64_t Connection::Deadline() const {
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

void Connection::ArmTimer() {
  if (closing_) return;
  const uint64_t due = Deadline();
  if (due == kNoDeadline) return;
  if (timer_armed_ && timer_due_ <= due) return;  // it fires earlier and re-checks
  const uint64_t now = uv_now(ctx_->loop());
  uv_timer_start(&timer_, OnTimer, due > now ? due - now : 0, 0);
  timer_armed_ = true;
  timer_due_ = due;
}

void Connection::OnTimer(uv_timer_t* timer) {
  auto* c = static_cast<Connection*>(timer->data);
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
