// ResponseParser: turns the byte stream of one client connection into a
// sequence of HTTP/1.1 responses, with llhttp in HTTP_RESPONSE mode.
//
// Bytes are fed as they are read, split anywhere; several responses may sit
// in one read (pipelining). For each response the sink first sees the head
// (status line and headers) and chooses how the body is handled: collected
// into the response, handed over chunk by chunk (streaming), or absent (the
// answer to a HEAD request, whose Content-Length describes a body that is
// not sent). Bodies delimited by Content-Length, by chunked encoding or by
// the end of the connection (Finish) are all handled by llhttp. Interim 1xx
// responses are skipped.
//
// A relayed response (the sink's OnResponseBegin gives a filter) keeps its
// headers as wire lines appended while they are parsed: one string, no
// header list.
//
// Any sink callback may return "stop": parsing ends at once and Feed returns
// kStopped. The sink may then destroy its own state but not the parser.
#pragma once

#include <llhttp.h>

#include <string>
#include <string_view>

#include "net/http_message.h"

namespace distkv::net {

class ResponseParser {
 public:
  enum class BodyMode { kCollect, kStream, kNone, kStop };

  // Decides which headers of a relayed response are kept (see Sink).
  using HeaderFilter = bool (*)(std::string_view name);

  class Sink {
   public:
    virtual ~Sink() = default;
    // A response begins. A filter returned here makes the parser keep the
    // headers it accepts as "Name: value\r\n" lines in header_lines (never
    // framing or Connection headers) instead of filling headers.
    virtual HeaderFilter OnResponseBegin() { return nullptr; }
    // The head of the next response is parsed.
    virtual BodyMode OnResponseHead(const HttpResponse& head) = 0;
    // A piece of the body, in kStream mode only. False stops parsing.
    virtual bool OnResponseBody(std::string_view chunk) = 0;
    // The response is complete (its body collected in kCollect mode).
    // keep_alive is false when the peer will close after it. False stops.
    virtual bool OnResponseComplete(HttpResponse& response, bool keep_alive) = 0;
  };

  enum class Result { kOk, kStopped, kError };

  explicit ResponseParser(Sink* sink);
  ResponseParser(const ResponseParser&) = delete;
  ResponseParser& operator=(const ResponseParser&) = delete;

  Result Feed(const char* data, size_t len);
  // The peer closed its side: completes a body that runs to the end of the
  // connection. kError if the stream stopped inside a response.
  Result Finish();

  // True once a byte of the next response has been parsed and until the
  // response is complete.
  bool in_response() const { return in_response_; }
  // Why the last Feed/Finish returned kError.
  const std::string& error() const { return error_; }

 private:
  static int OnMessageBegin(llhttp_t* p);
  static int OnStatus(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderField(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderFieldComplete(llhttp_t* p);
  static int OnHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int OnHeaderValueComplete(llhttp_t* p);
  static int OnHeadersComplete(llhttp_t* p);
  static int OnBody(llhttp_t* p, const char* at, size_t len);
  static int OnMessageComplete(llhttp_t* p);
  Result Check(llhttp_errno_t err);

  Sink* sink_;
  llhttp_settings_t settings_;
  llhttp_t parser_;
  HttpResponse current_;
  std::string field_;  // header name being parsed
  std::string value_;  // header value being parsed
  // Relaying: where the header being parsed starts in current_.header_lines,
  // and whether the filter dropped it.
  HeaderFilter relay_ = nullptr;
  size_t line_start_ = 0;
  bool drop_line_ = false;
  BodyMode mode_ = BodyMode::kCollect;
  bool interim_ = false;  // current response is a 1xx, not handed to the sink
  bool in_response_ = false;
  bool stopped_ = false;  // a sink callback asked to stop
  std::string error_;
};

}  // namespace distkv::net
