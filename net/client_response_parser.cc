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
// Room for a relayed response's header lines (a distkv answer's fit).
constexpr size_t kRelayReserve = 128;

}  // namespace

ResponseParser::ResponseParser(Sink* sink) : sink_(sink) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &ResponseParser::OnMessageBegin;
  settings_.on_status = &ResponseParser::OnStatus;
  settings_.on_header_field = &ResponseParser::OnHeaderField;
  settings_.on_header_field_complete = &ResponseParser::OnHeaderFieldComplete;
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
  self->relay_ = self->sink_->OnResponseBegin();
  if (self->relay_ != nullptr) {
    self->current_.header_lines.reserve(kRelayReserve);
  } else {
    self->current_.headers.reserve(8);
  }
  self->line_start_ = 0;
  self->drop_line_ = false;
  self->field_.clear();
  self->value_.clear();
  self->mode_ = BodyMode::kCollect;
  self->interim_ = false;
  self->in_response_ = true;
  return 0;
}

int ResponseParser::OnStatus(llhttp_t*, const char*, size_t) { return 0; }

// A header's name and value may each come in pieces (split across reads).
// Relaying, they are appended to header_lines as they come; once the name is
// complete the filter decides, and a dropped line is cut off again.
int ResponseParser::OnHeaderField(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* self = Self(p);
  if (self->relay_ != nullptr) {
    self->current_.header_lines.append(at, len);
  } else {
    self->field_.append(at, len);
  }
  return 0;
}

int ResponseParser::OnHeaderFieldComplete(llhttp_t* p) {
  ResponseParser* self = Self(p);
  if (self->relay_ == nullptr) return 0;
  std::string& lines = self->current_.header_lines;
  const std::string_view name = std::string_view(lines).substr(self->line_start_);
  self->drop_line_ = IsFramingHeader(name) || !self->relay_(name);
  if (self->drop_line_) {
    lines.resize(self->line_start_);
  } else {
    lines.append(": ");
  }
  return 0;
}

int ResponseParser::OnHeaderValue(llhttp_t* p, const char* at, size_t len) {
  ResponseParser* self = Self(p);
  if (self->relay_ != nullptr) {
    if (!self->drop_line_) self->current_.header_lines.append(at, len);
  } else {
    self->value_.append(at, len);
  }
  return 0;
}

int ResponseParser::OnHeaderValueComplete(llhttp_t* p) {
  ResponseParser* self = Self(p);
  if (self->relay_ != nullptr) {
    if (!self->drop_line_) self->current_.header_lines.append("\r\n");
    self->line_start_ = self->current_.header_lines.size();
    self->drop_line_ = false;
    return 0;
  }
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
