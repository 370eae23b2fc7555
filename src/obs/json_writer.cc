// See json_writer.h.
#include "src/obs/json_writer.h"

#include <cassert>
#include <charconv>
#include <cmath>

#include "src/obs/json_bytes.h"
#include "src/obs/utf8.h"

namespace distkv {

void AppendJsonString(std::string* out, std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  out->push_back('"');
  for (size_t i = 0; i < s.size();) {
    const char c = s[i];
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x80) {
      const size_t n = Utf8SequenceLength(s, i);
      if (n == 0) {
        out->append("\\ufffd");
        i++;
      } else {
        out->append(s.substr(i, n));
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out->append("\\\"");
        break;
      case '\\':
        out->append("\\\\");
        break;
      case '\n':
        out->append("\\n");
        break;
      case '\r':
        out->append("\\r");
        break;
      case '\t':
        out->append("\\t");
        break;
      case '\b':
        out->append("\\b");
        break;
      case '\f':
        out->append("\\f");
        break;
      default:
        if (u < 0x20 || u == 0x7f) {
          out->append("\\u00");
          out->push_back(kHex[u >> 4]);
          out->push_back(kHex[u & 0xf]);
        } else {
          out->push_back(c);
        }
    }
    i++;
  }
  out->push_back('"');
}

void JsonWriter::BeforeValue() {
  wrote_any_ = true;
  if (after_key_) {
    after_key_ = false;
    return;
  }
  // A value inside an object must follow its Key().
  assert(stack_.empty() || !stack_.back().object);
  if (!stack_.empty()) {
    if (!stack_.back().first) out_->push_back(',');
    stack_.back().first = false;
  }
}

void JsonWriter::Key(std::string_view name) {
  assert(!stack_.empty() && stack_.back().object && !after_key_);
  if (!stack_.back().first) out_->push_back(',');
  stack_.back().first = false;
  AppendJsonString(out_, name);
  out_->push_back(':');
  after_key_ = true;
}

void JsonWriter::BeginObject() {
  BeforeValue();
  out_->push_back('{');
  stack_.push_back(Level{true});
}

void JsonWriter::EndObject() {
  assert(!stack_.empty() && stack_.back().object && !after_key_);
  stack_.pop_back();
  out_->push_back('}');
}

void JsonWriter::BeginArray() {
  BeforeValue();
  out_->push_back('[');
  stack_.push_back(Level{false});
}

void JsonWriter::EndArray() {
  assert(!stack_.empty() && !stack_.back().object);
  stack_.pop_back();
  out_->push_back(']');
}

void JsonWriter::Value(std::string_view s) {
  BeforeValue();
  AppendJsonString(out_, s);
}

void JsonWriter::Value(bool b) {
  BeforeValue();
  out_->append(b ? "true" : "false");
}

void JsonWriter::Value(double d) {
  BeforeValue();
  if (!std::isfinite(d)) {
    out_->append("null");
    return;
  }
  char text[32];  // the shortest form that reads back as d
  const auto r = std::to_chars(text, text + sizeof text, d);
  out_->append(text, r.ptr);
}

void JsonWriter::Int(int64_t v) {
  BeforeValue();
  out_->append(std::to_string(v));
}

void JsonWriter::Uint(uint64_t v) {
  BeforeValue();
  out_->append(std::to_string(v));
}

void JsonWriter::Null() {
  BeforeValue();
  out_->append("null");
}

void JsonWriter::Bytes(std::string_view bytes) {
  if (IsValidUtf8(bytes)) {
    Value(bytes);
    return;
  }
  BeginObject();
  Field("base64", Base64Encode(bytes));
  EndObject();
}

void JsonWriter::Raw(std::string_view json) {
  BeforeValue();
  out_->append(json);
}

}  // namespace distkv
