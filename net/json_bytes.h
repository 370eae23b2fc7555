// Bytes in JSON. Keys and values are arbitrary bytes but JSON strings are
// UTF-8, so wherever the API puts keys or values into JSON (scan pages,
// _mget answers) a byte string that is valid UTF-8 is written as a JSON
// string and any other as an object {"base64": "<RFC 4648 base64>"}.
// The node writes with AppendJsonBytes; the client reads with Base64Decode.
#pragma once

#include <string>
#include <string_view>

namespace distkv::net {

// True if s is well-formed UTF-8 (no overlongs, surrogates or code points
// above U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Standard base64 with padding.
std::string Base64Encode(std::string_view in);
// False on a character outside the alphabet or a bad length/padding.
bool Base64Decode(std::string_view in, std::string* out);

// Appends s as a JSON string if it is UTF-8, else as {"base64":"..."}.
void AppendJsonBytes(std::string* out, std::string_view s);

}  // namespace distkv::net
