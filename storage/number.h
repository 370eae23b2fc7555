// Unsigned numbers in text: the one parser behind every number the project
// reads from text it did not write itself or must read strictly (query
// parameters, cursors, the MANIFEST, replication parameters).
//
// Strict on purpose: digits only (no sign, no spaces, no "0x", no empty
// text), and a value that does not fit in 64 bits is refused rather than
// wrapped. Hex digits are lower-case only unless the caller allows upper
// case too: what the project writes itself (the MANIFEST, cursors) is lower
// case, and a format read back must stay canonical, while a user's hex may be
// either.
#pragma once

#include <cstdint>
#include <string_view>

namespace distkv::storage {

enum class HexCase { kLower, kAny };

// Parses text in base 10 or 16 into *out; false (and *out untouched) when it
// is not such a number or exceeds UINT64_MAX.
inline bool ParseUint(std::string_view text, int base, uint64_t* out,
                      HexCase hex_case = HexCase::kLower) {
  if (text.empty() || text.size() > 20) return false;
  uint64_t v = 0;
  for (char c : text) {
    uint64_t d;
    if (c >= '0' && c <= '9') {
      d = static_cast<uint64_t>(c - '0');
    } else if (base == 16 && c >= 'a' && c <= 'f') {
      d = static_cast<uint64_t>(c - 'a' + 10);
    } else if (base == 16 && hex_case == HexCase::kAny && c >= 'A' && c <= 'F') {
      d = static_cast<uint64_t>(c - 'A' + 10);
    } else {
      return false;
    }
    const uint64_t b = static_cast<uint64_t>(base);
    if (v > (UINT64_MAX - d) / b) return false;
    v = v * b + d;
  }
  *out = v;
  return true;
}

}  // namespace distkv::storage
