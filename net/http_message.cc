// Helpers over the plain HTTP message types: header lookup, reason phrases,
// the project's JSON error body, and the percent-decoding used for keys in
// paths and query strings.
#include "net/http_message.h"

#include <cstring>

#include "src/obs/json_writer.h"

namespace distkv::net {

namespace {

char LowerAscii(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Whether any of the 8 bytes of w IsControlByte. A byte below 0x21 (or, in
// w ^ 0x7f..., a zero byte) sets its top bit in (w - n...) & ~w, and no byte
// does unless one of them is below n, so the test is exact.
bool WordHasControlByte(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101;
  constexpr uint64_t kTops = 0x8080808080808080;
  const uint64_t del = w ^ (0x7f * kOnes);
  return ((((w - 0x21 * kOnes) & ~w) | ((del - kOnes) & ~del)) & kTops) != 0;
}

}  // namespace

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  // Header names nearly always arrive in the case they are looked up with:
  // one memcmp settles those without the byte-by-byte folding below.
  if (std::memcmp(a.data(), b.data(), a.size()) == 0) return true;
  for (size_t i = 0; i < a.size(); ++i) {
    if (LowerAscii(a[i]) != LowerAscii(b[i])) return false;
  }
  return true;
}

bool HasControlByte(std::string_view text) {
  // Eight bytes a step; the last word overlaps the one before it rather than
  // leaving a tail to test byte by byte.
  const char* data = text.data();
  const size_t len = text.size();
  uint64_t w;
  if (len < sizeof w) {
    w = 0x6161616161616161;  // "aaaaaaaa": the bytes past the end pass
    if (len > 0) std::memcpy(&w, data, len);
    return WordHasControlByte(w);
  }
  for (size_t i = 0; i + sizeof w < len; i += sizeof w) {
    std::memcpy(&w, data + i, sizeof w);
    if (WordHasControlByte(w)) return true;
  }
  std::memcpy(&w, data + len - sizeof w, sizeof w);
  return WordHasControlByte(w);
}

bool HasHeaderLine(std::string_view lines, std::string_view name) {
  while (!lines.empty()) {
    if (lines.size() > name.size() && lines[name.size()] == ':' &&
        EqualsIgnoreCase(lines.substr(0, name.size()), name)) {
      return true;
    }
    const size_t end = lines.find("\r\n");
    if (end == std::string_view::npos) break;
    lines.remove_prefix(end + 2);
  }
  return false;
}

bool IsFramingHeader(std::string_view name) {
  switch (name.size()) {  // asked of every header relayed or written: lengths first
    case 10:
      return EqualsIgnoreCase(name, "Connection");
    case 14:
      return EqualsIgnoreCase(name, "Content-Length");
    case 17:
      return EqualsIgnoreCase(name, "Transfer-Encoding");
    default:
      return false;
  }
}

void HttpResponse::SetHeader(std::string_view name, std::string_view value) {
  for (Header& h : headers) {
    if (EqualsIgnoreCase(h.name, name)) {
      h.value.assign(value);
      return;
    }
  }
  headers.push_back(Header{std::string(name), std::string(value)});
}

std::string_view StatusReason(int status) {
  switch (status) {
    case 100:
      return "Continue";
    case 101:
      return "Switching Protocols";
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 202:
      return "Accepted";
    case 204:
      return "No Content";
    case 206:
      return "Partial Content";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 303:
      return "See Other";
    case 304:
      return "Not Modified";
    case 307:
      return "Temporary Redirect";
    case 308:
      return "Permanent Redirect";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 408:
      return "Request Timeout";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 411:
      return "Length Required";
    case 412:
      return "Precondition Failed";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 415:
      return "Unsupported Media Type";
    case 416:
      return "Range Not Satisfiable";
    case 417:
      return "Expectation Failed";
    case 422:
      return "Unprocessable Entity";
    case 425:
      return "Too Early";
    case 426:
      return "Upgrade Required";
    case 428:
      return "Precondition Required";
    case 429:
      return "Too Many Requests";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 501:
      return "Not Implemented";
    case 502:
      return "Bad Gateway";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    case 505:
      return "HTTP Version Not Supported";
    case 507:
      return "Insufficient Storage";
    default:
      return "Unknown";
  }
}

HttpResponse MakeErrorResponse(int status, std::string_view code, std::string_view message) {
  HttpResponse response;
  response.status = status;
  response.headers.push_back(Header{"Content-Type", "application/json"});
  JsonWriter w(&response.body);
  w.BeginObject();
  w.Field("error", code);
  w.Field("message", message);
  w.EndObject();
  response.body.push_back('\n');
  return response;
}

HttpResponse MakeJsonResponse(std::string json) {
  HttpResponse response;
  response.headers.push_back(Header{"Content-Type", "application/json"});
  json.push_back('\n');
  response.body = std::move(json);
  return response;
}

bool PercentDecode(std::string_view in, std::string* out, bool plus_is_space) {
  // Copied whole, then decoded in place from the first byte that needs it
  // (the result is never longer): a key is decoded for every request, and
  // most have few escapes or none.
  out->clear();
  out->append(in);  // cheaper than assign: no check for overlap with in
  size_t first = 0;
  if (!plus_is_space) {
    first = out->find('%');
    if (first == std::string::npos) return true;
  }
  char* const begin = out->data();
  char* d = begin + first;
  const char* s = d;
  const char* const end = begin + out->size();
  while (s != end) {
    const char c = *s++;
    if (c == '%') {
      const int hi = end - s >= 2 ? HexValue(s[0]) : -1;
      const int lo = hi >= 0 ? HexValue(s[1]) : -1;
      if (lo < 0) {
        out->resize(d - begin);
        return false;
      }
      *d++ = static_cast<char>(hi * 16 + lo);
      s += 2;
    } else {
      *d++ = c == '+' && plus_is_space ? ' ' : c;
    }
  }
  out->resize(d - begin);
  return true;
}

bool ParseQuery(std::string_view query, std::vector<std::pair<std::string, std::string>>* params) {
  params->clear();
  size_t start = 0;
  while (start <= query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string_view::npos) end = query.size();
    const std::string_view part = query.substr(start, end - start);
    if (!part.empty()) {
      const size_t eq = part.find('=');
      const std::string_view raw_name = part.substr(0, eq);
      const std::string_view raw_value =
          eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1);
      std::pair<std::string, std::string> param;
      if (!PercentDecode(raw_name, &param.first, true)) return false;
      if (!PercentDecode(raw_value, &param.second, true)) return false;
      params->push_back(std::move(param));
    }
    start = end + 1;
  }
  return true;
}

void AppendPercentEncoded(std::string* out, std::string_view in) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  out->reserve(out->size() + in.size());
  // Runs of unreserved bytes are appended whole: most keys are mostly those.
  size_t run = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(in[i]);
    const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                            (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) continue;
    out->append(in.data() + run, i - run);
    const char escape[3] = {'%', kHex[c >> 4], kHex[c & 15]};
    out->append(escape, 3);
    run = i + 1;
  }
  out->append(in.data() + run, in.size() - run);
}

std::string PercentEncode(std::string_view in) {
  std::string out;
  AppendPercentEncoded(&out, in);
  return out;
}

std::string QueryValue(std::string_view query, std::string_view name) {
  std::vector<std::pair<std::string, std::string>> params;
  if (!ParseQuery(query, &params)) return "";
  for (const auto& [n, v] : params) {
    if (n == name) return v;
  }
  return "";
}

}  // namespace distkv::net
