// UTF-8 validation shared by the JSON and Prometheus writers, which both
// must emit valid UTF-8 whatever bytes they are given, and by JSON bytes
// (json_bytes.h), which writes a key that is not UTF-8 as base64.
#pragma once

#include <cstddef>
#include <string_view>

namespace distkv {

// Length (1-4) of the valid UTF-8 sequence starting at s[i], or 0 when the
// byte there does not start one (RFC 3629: no overlong forms, no UTF-16
// surrogates, nothing above U+10FFFF). i < s.size().
size_t Utf8SequenceLength(std::string_view s, size_t i);

// True if s is well-formed UTF-8 throughout.
bool IsValidUtf8(std::string_view s);

// U+FFFD, the replacement character, encoded: what a byte that is not part
// of a valid sequence becomes.
inline constexpr std::string_view kUtf8Replacement = "\xef\xbf\xbd";

}  // namespace distkv
