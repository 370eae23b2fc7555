// Serialization of HTTP/1.1 responses as the server writes them: the status
// line, the handler's headers, the server's own headers, the framing headers
// (Content-Length or Transfer-Encoding: chunked) and Connection, then body
// chunks for streamed responses.
//
// The writer alone decides framing and connection headers: a handler's own
// Content-Length, Transfer-Encoding and Connection headers are never copied
// (the connection reads a handler's "Connection: close" as a wish to close
// before calling in here). Bytes are appended to a caller-owned string so a
// connection can reuse its buffers from one response to the next.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "net/http_message.h"

namespace distkv::net {

enum class BodyFraming {
  kContentLength,  // Content-Length: n (also for HEAD answers, with no body after it)
  kChunked,        // Transfer-Encoding: chunked
  kUntilClose,     // no framing header: the body ends with the connection (HTTP/1.0 streams)
  kNone,           // 1xx, 204, 304: no body and no length
};

enum class ConnectionHeader { kNone, kClose, kKeepAlive };

// False for the statuses that never carry a body (1xx, 204, 304).
bool StatusHasBody(int status);

// True when the response carries "Connection: close".
bool ResponseAsksClose(const HttpResponse& response);

// Appends the head of response (status line through the blank line).
// extra_headers is a block of complete "Name: value\r\n" lines added to every
// response that does not set the same header itself.
void AppendResponseHead(const HttpResponse& response, BodyFraming framing, uint64_t content_length,
                        ConnectionHeader connection, std::string_view extra_headers,
                        std::string* out);

// Chunked transfer coding: one chunk (data must not be empty: an empty chunk
// ends the body), and the last chunk with an empty trailer.
void AppendChunk(std::string_view data, std::string* out);
void AppendLastChunk(std::string* out);

}  // namespace distkv::net
