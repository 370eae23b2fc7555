// ServerConnection, parsing: llhttp callbacks gather a request in the
// connection's reused HttpRequest and enforce the server's limits; a
// callback that rejects the request sets error_status_ and returns -1, which
// makes llhttp_execute fail, and RespondError answers with the status that
// names the problem. on_message_complete pauses the parser so that Dispatch
// hands each request to the handler outside llhttp.
#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "net/server_connection.h"

namespace distkv::net {

namespace {

constexpr size_t kMaxBodyReserve = 1 << 20;  // a Content-Length is not trusted beyond this
constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";

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
    case 408:
      return {"request_timeout", "the request body arrived too slowly"};
    case 417:
      return {"expectation_failed", "only \"Expect: 100-continue\" is supported"};
    case 431:
      return {"request_header_fields_too_large",
              "the request headers are larger than the server accepts"};
    default:
      return {"bad_request", "the request is not valid HTTP/1.1"};
  }
}

// llhttp_method_name's C string, without a strlen for the usual methods.
std::string_view MethodName(llhttp_method_t method) {
  switch (method) {
    case HTTP_GET:
      return "GET";
    case HTTP_PUT:
      return "PUT";
    case HTTP_POST:
      return "POST";
    case HTTP_DELETE:
      return "DELETE";
    case HTTP_HEAD:
      return "HEAD";
    default:
      return llhttp_method_name(method);
  }
}

// An absolute-form target ("http://host:port/kv/k", as proxies send) is
// served like its origin form, and its authority replaces the Host header
// (RFC 9112 3.2.2). Any other form must start with '/'; "*" (asterisk-form)
// is only for OPTIONS, which nothing here serves.
bool ToOriginForm(HttpRequest* r, std::string* error) {
  std::string& target = r->target;
  if (!target.empty() && target.front() == '/') return true;
  size_t scheme_end = 0;
  for (std::string_view scheme : {"http://", "https://"}) {
    if (target.size() >= scheme.size() &&
        EqualsIgnoreCase(std::string_view(target).substr(0, scheme.size()), scheme)) {
      scheme_end = scheme.size();
    }
  }
  if (scheme_end == 0) {
    *error = "the request target must be a path (/kv/key) or an absolute http:// URL";
    return false;
  }
  const size_t path = target.find_first_of("/?", scheme_end);
  std::string authority =
      target.substr(scheme_end, (path == std::string::npos ? target.size() : path) - scheme_end);
  if (authority.empty() || authority.find('@') != std::string::npos) {
    *error = "the absolute request target has no host, or has user info";
    return false;
  }
  std::string origin = path == std::string::npos ? "/" : target.substr(path);
  if (origin.front() == '?') origin.insert(0, "/");
  target = std::move(origin);
  bool has_host = false;
  for (Header& h : r->headers) {
    if (EqualsIgnoreCase(h.name, "Host")) {
      h.value = authority;
      has_host = true;
    }
  }
  if (!has_host) r->headers.push_back(Header{"Host", std::move(authority)});
  return true;
}

}  // namespace

void ServerConnection::Dispatch() {
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

void ServerConnection::RespondError(int status, std::string_view detail) {
  ++ctx_->counters().parse_errors;
  std::shared_ptr<Responder::Slot> slot = std::move(current_);
  if (slot == nullptr) {
    slot = NewSlot();
    slot->conn = this;
    slots_.push_back(slot);
  }
  slot->head_request = false;
  slot->close_after = true;
  FreeStaged(slot.get());
  const ErrorText text = ErrorFor(status);
  HttpResponse response =
      MakeErrorResponse(status, text.code, detail.empty() ? text.message : detail);
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

const llhttp_settings_t* ServerConnection::ParserSettings() {
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = OnMessageBegin;
    s.on_url = OnUrl;
    s.on_header_field = OnHeaderField;
    s.on_header_field_complete = [](llhttp_t* p) {
      static_cast<ServerConnection*>(p->data)->in_header_field_ = false;
      return 0;
    };
    s.on_header_value = OnHeaderValue;
    s.on_header_value_complete = OnHeaderValueComplete;
    s.on_headers_complete = OnHeadersComplete;
    s.on_body = OnBody;
    s.on_chunk_header = OnChunkHeader;
    s.on_message_complete = OnMessageComplete;
    return s;
  }();
  return &settings;
}

int ServerConnection::OnMessageBegin(llhttp_t* p) {
  auto* c = static_cast<ServerConnection*>(p->data);
  HttpRequest& r = c->request_;
  // method is set when the head is complete, usually to what it holds.
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
  c->error_detail_.clear();
  c->in_header_field_ = false;
  c->in_message_ = true;
  c->head_complete_ = false;
  c->head_start_ = uv_now(c->ctx_->loop());
  return 0;
}

int ServerConnection::OnUrl(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ServerConnection*>(p->data);
  std::string& target = c->request_.target;
  if (target.size() + len > c->ctx_->limits().max_url_bytes) {
    c->error_status_ = 414;
    c->error_detail_ = "the request target is longer than the server's limit of " +
                       std::to_string(c->ctx_->limits().max_url_bytes) +
                       " bytes (a key takes up to 3 bytes per byte when %-escaped)";
    return -1;
  }
  // llhttp lets a TAB or form feed through in the target; in a key they
  // would be taken literally. A target is visible ASCII (RFC 9112 3.2).
  if (HasControlByte(std::string_view(at, len))) {
    const auto* bad = std::find_if(
        at, at + len, [](char b) { return IsControlByte(static_cast<unsigned char>(b)); });
    const auto b = static_cast<unsigned char>(*bad);
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02x", b);
    c->error_status_ = 400;
    c->error_detail_ = std::string("the request target contains a raw control byte (") + hex +
                       (b == '\t' ? ", a TAB" : "") + "); %-escape it";
    return -1;
  }
  target.append(at, len);
  return 0;
}

int ServerConnection::OnHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ServerConnection*>(p->data);
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

int ServerConnection::OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ServerConnection*>(p->data);
  c->header_bytes_ += len;
  if (c->header_bytes_ > c->ctx_->limits().max_header_bytes) {
    c->error_status_ = 431;
    return -1;
  }
  c->request_.headers.back().value.append(at, len);
  return 0;
}

int ServerConnection::OnHeaderValueComplete(llhttp_t* p) {
  auto* c = static_cast<ServerConnection*>(p->data);
  std::string& value = c->request_.headers.back().value;
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.pop_back();
  return 0;
}

int ServerConnection::OnHeadersComplete(llhttp_t* p) {
  auto* c = static_cast<ServerConnection*>(p->data);
  HttpRequest& r = c->request_;
  const ServerLimits& limits = c->ctx_->limits();
  c->head_complete_ = true;
  c->body_start_ = uv_now(c->ctx_->loop());

  const auto method = static_cast<llhttp_method_t>(p->method);
  const std::string_view method_name = MethodName(method);
  if (r.method != method_name) r.method.assign(method_name);
  r.http_major = p->http_major;
  r.http_minor = p->http_minor;
  if (!ToOriginForm(&r, &c->error_detail_)) {
    c->error_status_ = 400;
    return -1;
  }
  const size_t q = r.target.find('?');
  if (q == std::string::npos) {
    r.path.assign(r.target);
  } else {
    r.path.assign(r.target, 0, q);
    r.query.assign(r.target, q + 1);
  }

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

  c->current_ = c->NewSlot();
  Responder::Slot* slot = c->current_.get();
  slot->conn = c;
  slot->head_request = method == HTTP_HEAD;
  slot->http10 = !http11;
  c->slots_.push_back(c->current_);
  // Room for the body under max_staged_bytes, reserved whole from its
  // length (a chunked body takes it as it arrives, in OnBody). Without room
  // the parser pauses here and the connection is not read until the
  // server admits it (StagingAdmitted); its "100 Continue" waits too.
  if ((has_length && p->content_length > 0) || chunked) {
    const size_t need = has_length ? p->content_length : 0;
    const auto& exempt = c->ctx_->staging_exempt();
    if (!c->ctx_->TakeStaged(c, need, exempt && exempt(r))) {
      c->awaiting_room_ = true;
      c->continue_deferred_ = send_continue;
      return HPE_PAUSED;
    }
    slot->staged = need;
  }
  if (send_continue) {
    slot->out.append(kContinue);
    c->AddUnsent(kContinue.size());
  }
  return 0;
}

void ServerConnection::StagingAdmitted(size_t bytes) {
  awaiting_room_ = false;
  if (current_ != nullptr) {
    current_->staged = bytes;
    if (continue_deferred_) {
      current_->out.append(kContinue);
      AddUnsent(kContinue.size());
    }
  }
  continue_deferred_ = false;
  // The body's clock starts now: the client could not send it before.
  body_start_ = last_activity_ = uv_now(ctx_->loop());
  ctx_->ScheduleFlush(this);
}

int ServerConnection::OnBody(llhttp_t* p, const char* at, size_t len) {
  auto* c = static_cast<ServerConnection*>(p->data);
  c->body_bytes_ += len;
  if (c->body_bytes_ > c->ctx_->limits().max_body_bytes) {
    c->error_status_ = 413;
    return -1;
  }
  if ((p->flags & F_CHUNKED) != 0 && c->current_ != nullptr) {
    c->current_->staged += len;
    c->ctx_->GrowStaged(len);
  }
  c->request_.body.append(at, len);
  return 0;
}

// A chunk that cannot fit in any body the server accepts is refused as soon
// as its size line is read, before a byte of it is buffered.
int ServerConnection::OnChunkHeader(llhttp_t* p) {
  auto* c = static_cast<ServerConnection*>(p->data);
  const size_t limit = c->ctx_->limits().max_body_bytes;
  if (p->content_length > limit - std::min(limit, c->body_bytes_)) {
    c->error_status_ = 413;
    c->error_detail_ = "a chunk size of " + std::to_string(p->content_length) +
                       " bytes exceeds the body limit of " + std::to_string(limit) + " bytes";
    return -1;
  }
  return 0;
}

int ServerConnection::OnMessageComplete(llhttp_t* p) {
  auto* c = static_cast<ServerConnection*>(p->data);
  c->request_.keep_alive = llhttp_should_keep_alive(p) != 0 && p->upgrade == 0;
  c->in_message_ = false;
  c->message_ready_ = true;
  return HPE_PAUSED;  // Dispatch runs outside llhttp
}

}  // namespace distkv::net
