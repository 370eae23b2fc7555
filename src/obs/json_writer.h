// JsonWriter: the one way this project writes JSON (status pages, error
// bodies, admin and internal endpoints, requests to etcd).
//
//   std::string out;
//   JsonWriter w(&out);
//   w.BeginObject();
//   w.Field("shard", "Delhi");
//   w.Key("slots");
//   w.BeginArray();
//   w.Value(0);
//   w.Value(4095);
//   w.EndArray();
//   w.EndObject();          // {"shard":"Delhi","slots":[0,4095]}
//
// The writer keeps a stack of the open objects and arrays and places every
// comma and colon itself, so a caller cannot forget or double one. Strings
// may hold any bytes (keys are bytes, peer addresses and error messages come
// from outside): the output is always valid UTF-8 JSON. Quotes, backslashes
// and control bytes are escaped (\n, \t, ..., \u00XX); valid UTF-8 passes
// through; each byte that is not part of a valid UTF-8 sequence (a stray
// continuation byte, a truncated sequence, an overlong form, a surrogate,
// a code point above U+10FFFF) becomes \ufffd, the Unicode replacement
// character, as a browser's decoder shows it. Callers that must carry binary
// exactly (digests, ids) write it as hex.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace distkv {

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  // The name of the next member of the object being written.
  void Key(std::string_view name);

  void Value(std::string_view s);
  void Value(const char* s) { Value(std::string_view(s)); }
  void Value(const std::string& s) { Value(std::string_view(s)); }
  void Value(bool b);
  void Value(double d);  // finite; NaN and infinities are written as null
  template <typename T>
  requires(std::is_integral_v<T> && !std::is_same_v<T, bool>) void Value(T v) {
    if constexpr (std::is_signed_v<T>) {
      Int(static_cast<int64_t>(v));
    } else {
      Uint(static_cast<uint64_t>(v));
    }
  }
  void Null();
  // Bytes that must arrive exact (keys, values): a string when they are
  // valid UTF-8, else {"base64": "..."} (see json_bytes.h).
  void Bytes(std::string_view bytes);
  // A value that is already JSON (a peer's answer that was checked to be
  // one, or a document written by another JsonWriter), spliced in as is.
  void Raw(std::string_view json);

  // Key(name) then Value(v).
  template <typename T>
  void Field(std::string_view name, const T& v) {
    Key(name);
    Value(v);
  }

  // True once every object and array opened has been closed.
  bool complete() const { return stack_.empty() && wrote_any_; }

 private:
  void Int(int64_t v);
  void Uint(uint64_t v);
  // Writes the comma a value needs before it in an array or at the top.
  void BeforeValue();

  struct Level {
    bool object;
    bool first = true;
  };
  std::string* out_;
  std::vector<Level> stack_;
  bool after_key_ = false;
  bool wrote_any_ = false;
};

// Appends s as a JSON string literal, quotes included, escaped as above.
void AppendJsonString(std::string* out, std::string_view s);

}  // namespace distkv
