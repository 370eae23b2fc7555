// Bytes in JSON. Keys and values are arbitrary bytes but JSON strings are
// UTF-8, so wherever the API puts keys or values into JSON (scan pages,
// _mget answers, batch bodies) a byte string that is valid UTF-8 is written
// as a JSON string and any other as an object {"base64": "<RFC 4648
// base64>"}: JsonWriter::Bytes writes it, a reader decodes it with
// Base64Decode.
#pragma once

#include <string>
#include <string_view>

namespace distkv {

// Standard base64 with padding.
std::string Base64Encode(std::string_view in);
// False on a character outside the alphabet or a bad length/padding.
bool Base64Decode(std::string_view in, std::string* out);

// Appends {"key":<key>,"value":<value>} and a newline, both as bytes: one
// line of the NDJSON form of an _mput body, which the node (the parts it
// forwards) and the client library both write.
void AppendKeyValueLine(std::string* out, std::string_view key, std::string_view value);

}  // namespace distkv
