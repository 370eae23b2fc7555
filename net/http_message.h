// The HTTP message types shared by the server (net/http_server.h) and the
// outbound client (net/http_client.h). Plain data: no I/O here.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace distkv::net {

struct Header {
  std::string name;
  std::string value;
};

// Case-insensitive ASCII comparison, as header names require.
bool EqualsIgnoreCase(std::string_view a, std::string_view b);

// Value of the first header called name, or nullptr. Inline, and names of
// another length are passed over without comparing them: a request is asked
// for several headers it nearly never has.
inline const std::string* FindHeader(const std::vector<Header>& headers, std::string_view name) {
  for (const Header& h : headers) {
    if (h.name.size() == name.size() && EqualsIgnoreCase(h.name, name)) return &h.value;
  }
  return nullptr;
}

// A byte a request target must not hold raw: space, a control byte, DEL.
inline bool IsControlByte(unsigned char b) { return b <= 0x20 || b == 0x7f; }
// Whether any byte of text IsControlByte (read eight at a time: every
// request target is scanned).
bool HasControlByte(std::string_view text);

// Whether a block of "Name: value\r\n" lines has a header called name.
bool HasHeaderLine(std::string_view lines, std::string_view name);

// Content-Length, Transfer-Encoding and Connection: they describe one hop's
// framing, so the writer of each message sets its own.
bool IsFramingHeader(std::string_view name);

// On the server side one HttpRequest is reused for every request of a
// connection: method, peer and connection_id are written only when they
// change, so a handler may read and copy them but never move them out.
struct HttpRequest {
  std::string method;  // "GET", "PUT", ... as sent
  std::string target;  // request target as sent: path plus optional "?query"
  std::string path;    // target before '?', not percent-decoded
  std::string query;   // target after '?', not percent-decoded ("" if none)
  std::vector<Header> headers;
  std::string body;  // de-chunked
  int http_major = 1;
  int http_minor = 1;
  bool keep_alive = true;  // the client's wish (HTTP/1.0 needs Connection: keep-alive)
  std::string peer;        // "ip:port" of the client (server side only)
  // The client connection it came on, unique within the server (server side
  // only): requests that must take effect in the order sent share it.
  uint64_t connection_id = 0;

  const std::string* header(std::string_view name) const { return FindHeader(headers, name); }
};

struct HttpResponse {
  int status = 200;
  std::vector<Header> headers;  // Content-Length and Connection are added by the writer
  // More headers, as complete "Name: value\r\n" lines, written after those
  // above: an answer relayed from another server keeps them in this form
  // (OutboundRequest::relay_header), so passing it on copies one string
  // instead of building and re-reading a header list. Never framing or
  // Connection headers; header() does not look here.
  std::string header_lines;
  std::string body;

  const std::string* header(std::string_view name) const { return FindHeader(headers, name); }
  // Replaces the header's value if present, else appends it.
  void SetHeader(std::string_view name, std::string_view value);
};

// Reason phrase of a status code ("OK", "Not Found", ...; "Unknown" otherwise).
std::string_view StatusReason(int status);

// The body of every error this project answers with:
//   {"error": "<code>", "message": "<message>"}
// code is a short snake_case word ("not_found", "payload_too_large", ...).
// Strings are JSON-escaped.
HttpResponse MakeErrorResponse(int status, std::string_view code, std::string_view message);

// A 200 answer whose body is the JSON document json, ended by a newline (so
// that curl's output ends a line).
HttpResponse MakeJsonResponse(std::string json);

// Percent-decoding of a path segment or a query component ('+' means a space
// in a query only). Returns false on a malformed escape ("%zz", "%4").
bool PercentDecode(std::string_view in, std::string* out, bool plus_is_space);

// Percent-encodes every byte outside RFC 3986's unreserved set, so that any
// key (binary included) survives a trip through a URL path or query.
void AppendPercentEncoded(std::string* out, std::string_view in);
std::string PercentEncode(std::string_view in);

// Splits a raw query string into decoded (name, value) pairs, in order.
// Returns false if any component has a malformed escape.
bool ParseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>* params);

// The decoded value of the first parameter called `name`, or "" when it is
// absent or the query does not parse.
std::string QueryValue(std::string_view query, std::string_view name);

}  // namespace distkv::net
