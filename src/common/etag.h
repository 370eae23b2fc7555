// The number in an ETag as this server writes it ("\"" + LSN + "\""): written
// by the node's answers (src/api), read by the node's reader of a peer's batch
// answer and by the client library (src/client), which must agree on what is
// one. Header only.
#pragma once

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace distkv {

// The longest ETag: two quotes around the 20 digits of UINT64_MAX.
constexpr size_t kMaxEtagBytes = 22;

// Writes "\"<number>\"" at out, which has room for kMaxEtagBytes, and
// returns the end of what it wrote.
inline char* WriteEtag(uint64_t number, char* out) {
  *out++ = '"';
  out = std::to_chars(out, out + (kMaxEtagBytes - 2), number).ptr;
  *out++ = '"';
  return out;
}

// "\"42\"" or "42" -> 42. Nothing for anything else: empty, a character that
// is not a digit, a lone quote, or a number past UINT64_MAX.
inline std::optional<uint64_t> ParseEtagNumber(std::string_view etag) {
  if (etag.size() >= 2 && etag.front() == '"' && etag.back() == '"') {
    etag = etag.substr(1, etag.size() - 2);
  }
  if (etag.empty()) return std::nullopt;
  uint64_t v = 0;
  for (char c : etag) {
    if (c < '0' || c > '9') return std::nullopt;
    const uint64_t digit = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - digit) / 10) return std::nullopt;
    v = v * 10 + digit;
  }
  return v;
}

}  // namespace distkv
