// Response serialization; see response_writer.h.
#include "net/response_writer.h"

#include <charconv>
#include <cstring>

namespace distkv::net {

namespace {

// True when the comma-separated list value holds token (case-insensitive).
bool ListHasToken(std::string_view value, std::string_view token) {
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(',', start);
    if (end == std::string_view::npos) end = value.size();
    std::string_view item = value.substr(start, end - start);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (EqualsIgnoreCase(item, token)) return true;
    start = end + 1;
  }
  return false;
}

// Passes on the server-wide header lines, except those the response sets
// itself: a forwarded answer keeps the X-Distkv-Shard of the shard that
// produced it.
template <typename Put>
void ForEachExtraHeader(const HttpResponse& response, std::string_view extra, const Put& put) {
  while (!extra.empty()) {
    size_t end = extra.find("\r\n");
    end = end == std::string_view::npos ? extra.size() : end + 2;
    const std::string_view line = extra.substr(0, end);
    const std::string_view name = line.substr(0, line.find(':'));
    if (FindHeader(response.headers, name) == nullptr &&
        (response.header_lines.empty() || !HasHeaderLine(response.header_lines, name))) {
      put(line);
    }
    extra.remove_prefix(end);
  }
}

}  // namespace

bool StatusHasBody(int status) { return status >= 200 && status != 204 && status != 304; }

bool ResponseAsksClose(const HttpResponse& response) {
  for (const Header& h : response.headers) {
    if (EqualsIgnoreCase(h.name, "Connection") && ListHasToken(h.value, "close")) return true;
  }
  return false;
}

void AppendResponseHead(const HttpResponse& response, BodyFraming framing, uint64_t content_length,
                        ConnectionHeader connection, std::string_view extra_headers,
                        std::string* out) {
  int status = response.status;
  if (status < 100 || status > 999) status = 500;
  const std::string_view reason = StatusReason(status);
  // A response that sets none of its own headers takes the server's lines
  // as they are; otherwise each is checked against the response's.
  const bool own_headers = !response.headers.empty() || !response.header_lines.empty();
  std::string_view framing_line;
  switch (framing) {
    case BodyFraming::kContentLength:
      framing_line = "Content-Length: ";
      break;
    case BodyFraming::kChunked:
      framing_line = "Transfer-Encoding: chunked\r\n";
      break;
    case BodyFraming::kUntilClose:
    case BodyFraming::kNone:
      break;
  }
  std::string_view connection_line;
  switch (connection) {
    case ConnectionHeader::kClose:
      connection_line = "Connection: close\r\n";
      break;
    case ConnectionHeader::kKeepAlive:
      connection_line = "Connection: keep-alive\r\n";
      break;
    case ConnectionHeader::kNone:
      break;
  }

  // Sized once, written through a cursor, cut to what was written: the head
  // of every response, so no append re-checks the capacity.
  constexpr size_t kStatusLine = 9 + 3 + 1 + 2;  // "HTTP/1.1 ", the code, ' ', reason, CRLF
  constexpr size_t kLengthValue = 20 + 2;        // UINT64_MAX's digits, CRLF
  size_t size = kStatusLine + reason.size() + response.header_lines.size() + extra_headers.size() +
                framing_line.size() + kLengthValue + connection_line.size() + 2;  // the blank line
  for (const Header& h : response.headers) size += h.name.size() + h.value.size() + 4;
  const size_t at = out->size();
  out->resize(at + size);
  char* const begin = out->data() + at;
  char* p = begin;
  const auto put = [&p](std::string_view text) {
    if (text.empty()) return;  // an empty view's data() may be null, which memcpy must not see
    std::memcpy(p, text.data(), text.size());
    p += text.size();
  };
  put("HTTP/1.1 ");
  *p++ = static_cast<char>('0' + status / 100);
  *p++ = static_cast<char>('0' + status / 10 % 10);
  *p++ = static_cast<char>('0' + status % 10);
  *p++ = ' ';
  put(reason);
  put("\r\n");
  for (const Header& h : response.headers) {
    if (IsFramingHeader(h.name)) continue;
    put(h.name);
    put(": ");
    put(h.value);
    put("\r\n");
  }
  put(response.header_lines);
  if (!own_headers) {
    put(extra_headers);
  } else {
    ForEachExtraHeader(response, extra_headers, put);
  }
  put(framing_line);
  if (framing == BodyFraming::kContentLength) {
    p = std::to_chars(p, p + 20, content_length).ptr;
    put("\r\n");
  }
  put(connection_line);
  put("\r\n");
  out->resize(at + static_cast<size_t>(p - begin));
}

void AppendChunk(std::string_view data, std::string* out) {
  static const char kHex[] = "0123456789abcdef";
  char size[20];
  int n = 0;
  size_t v = data.size();
  do {
    size[n++] = kHex[v & 0xf];
    v >>= 4;
  } while (v != 0);
  out->reserve(out->size() + n + data.size() + 4);
  while (n > 0) out->push_back(size[--n]);
  out->append("\r\n");
  out->append(data);
  out->append("\r\n");
}

void AppendLastChunk(std::string* out) { out->append("0\r\n\r\n"); }

}  // namespace distkv::net
