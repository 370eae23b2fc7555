// Response serialization; see response_writer.h.
#include "net/response_writer.h"

#include <charconv>

namespace distkv::net {

namespace {

void AppendDecimal(uint64_t value, std::string* out) {
  char digits[24];
  const auto result = std::to_chars(digits, digits + sizeof(digits), value);
  out->append(digits, result.ptr);
}

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

// Appends the server-wide header lines, except those the response sets
// itself: a forwarded answer keeps the X-Distkv-Shard of the shard that
// produced it.
void AppendExtraHeaders(const HttpResponse& response, std::string_view extra, std::string* out) {
  while (!extra.empty()) {
    size_t end = extra.find("\r\n");
    end = end == std::string_view::npos ? extra.size() : end + 2;
    const std::string_view line = extra.substr(0, end);
    const std::string_view name = line.substr(0, line.find(':'));
    if (FindHeader(response.headers, name) == nullptr &&
        (response.header_lines.empty() || !HasHeaderLine(response.header_lines, name))) {
      out->append(line);
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

  size_t size = 64 + reason.size() + extra_headers.size() + response.header_lines.size();
  for (const Header& h : response.headers) size += h.name.size() + h.value.size() + 4;
  out->reserve(out->size() + size);

  out->append("HTTP/1.1 ");
  out->push_back(static_cast<char>('0' + status / 100));
  out->push_back(static_cast<char>('0' + status / 10 % 10));
  out->push_back(static_cast<char>('0' + status % 10));
  out->push_back(' ');
  out->append(reason);
  out->append("\r\n");
  for (const Header& h : response.headers) {
    if (IsFramingHeader(h.name)) continue;
    out->append(h.name);
    out->append(": ");
    out->append(h.value);
    out->append("\r\n");
  }
  out->append(response.header_lines);
  AppendExtraHeaders(response, extra_headers, out);
  switch (framing) {
    case BodyFraming::kContentLength:
      out->append("Content-Length: ");
      AppendDecimal(content_length, out);
      out->append("\r\n");
      break;
    case BodyFraming::kChunked:
      out->append("Transfer-Encoding: chunked\r\n");
      break;
    case BodyFraming::kUntilClose:
    case BodyFraming::kNone:
      break;
  }
  switch (connection) {
    case ConnectionHeader::kClose:
      out->append("Connection: close\r\n");
      break;
    case ConnectionHeader::kKeepAlive:
      out->append("Connection: keep-alive\r\n");
      break;
    case ConnectionHeader::kNone:
      break;
  }
  out->append("\r\n");
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
