// See client_response_parser.h. llhttp calls back into the static functions
// below with parser->data pointing at the ResponseParser.
#include "net/client_response_parser.h"

#include <algorithm>

namespace distkv::net {

namespace {

ResponseParser* Self(llhttp_t* p) { return static_cast<ResponseParser*>(p->data); }

// Upper bound for reserving a body from its Content-Length: a lying peer
// must not make us allocate gigabytes before sending a byte.
constexpr uint64_t kMaxReserve = 16u << 20;

}  // namespace

ResponseParser::ResponseParser(Sink* sink) : sink_(sink) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &ResponseParser::OnMessageBegin;
  settings_.on_status = &ResponseParser::OnStatus;
  settings_.on_header_field = &ResponseParser::OnHeaderField;
  settings_.on_header_value = &ResponseParser::OnHeaderValue;
  settings_.on_header_value_complete = &ResponseParser::OnHeaderValueComplete;
  settings_.on_headers_complete = &ResponseParser::OnHeadersComplete;
  settings_.on_body = &ResponseParser::OnBody;
  settings_.on_message_complete = &ResponseParser::OnMessageComplete;
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
}

ResponseParser::Result ResponseParser::Check(llhttp_errno_t err) {
  if (err == HPE_OK) return Result::kOk;
  if (stopped_) return Result::kStopped;
  error_ = llhttp_errno_name(err);
  const char* reason = llhttp_get_error_reason(&parser_);
  if (reason != nullptr && *reason != '\0') {
    error_ += ": ";
    error_ += reason;
  }
  return Result::kError;
}

ResponseParser::Result ResponseParser::Feed(const char* data, size_t len) {
  if (stopped_) return Result::kStopped;
  return Check(llhttp_execute(&parser_, data, len));
}

ResponseParser::Result ResponseParser::Finish() {
  if (stopped_) return Result::kStopped;
  return Check(llhttp_finish(&parser_));
}

int ResponseParser::OnMessageBegin(llhttp_t* p) {
  ResponseParser* self = Self(p);
  self->current_ = HttpResponse();
  self->current_.headers.reserve(8);
  self->field_.clear();
  self->value_.clear();
  self->mode_ = BodyMode::kCollect;
  self->interim_ = false;
  self->in_response_ = true;
  return 0;
}

int ResponseParser::OnStatus(llhttp_t*, const char*, size_t) { return 0; }

int ResponseParser::OnHeaderField(llhttp_t* p, const char* at, size_t len) {
  Self(p)->field_.append(at, len);
  return 0;
}

int ResponseParser::OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
  Self(p)->value_.append(at, len);
  return 0;
}

int ResponseParser::OnHeaderValueComplete(llhttp_t* p) {
  ResponseParser* self = Self(p);
  self->current_.headers.push_back(Header{std::move(self->field_), std::move(self->value_)});
  self->field_.clear();
  self->value_.clear();
  return 0;
}

int ResponseParser::OnHeadersComplete(llhttp_t* p) {
  ResponseParser* self = Self(p);
  self->current_.status = llhttp_get_status_code(p);
  // 1xx answers are interim (the real response follows); 101 would switch
  // protocols, which this client never asks for.
  if (self->current_.status >= 100 && self->current_.status < 200) {
    self->interim_ = true;
    return 0;
  }
  self->mode_ = self->sink_->OnResponseHead(self->current_);
  switch (self->mode_) {
    case BodyMode::kStop:
      self->stopped_ = true;
      return -1;
    case BodyMode::kNone:
      return 1;  // llhttp: no body follows this head
    case BodyMode::kCollect:
      if ((p->flags & F_CONTENT_LENGTH) != 0) {
        self->current_.body.reserve(std::min<uint64_t>(p->content_length, kMaxReserve));
      }
      return 0;
    case BodyMode::kStream:
      return 0;
  }
  return 0;
}

int ResponseParser::OnBody(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* self = Self(p);
  if (self->interim_) return 0;
  if (self->mode_ == BodyMode::kCollect) {
    self->current_.body.append(at, len);
    return 0;
  }
  if (!self->sink_->OnResponseBody(std::string_view(at, len))) {
    self->stopped_ = true;
    return -1;
  }
  return 0;
}

int ResponseParser::OnMessageComplete(llhttp_t* p) {
  ResponseParser* self = Self(p);
  self->in_response_ = false;
  if (self->interim_) return 0;
  if (!self->sink_->OnResponseComplete(self->current_, llhttp_should_keep_alive(p) != 0)) {
    self->stopped_ = true;
    return -1;
  }
  return 0;
}

}  // namespace distkv::net
