// JsonWriter: commas and colons in nested documents, escaping of every byte,
// invalid UTF-8 replaced; every output is checked by a strict parser.
#include "src/obs/json_writer.h"

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>
#include <random>
#include <vector>

#include "src/obs/json_bytes.h"
#include "src/obs/utf8.h"

namespace distkv {
namespace {

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(&out, s);
  return out;
}

TEST_CASE("json writer: commas and colons in nested objects and arrays") {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Field("a", 1);
  w.Key("empty");
  w.BeginObject();
  w.EndObject();
  w.Key("list");
  w.BeginArray();
  w.Value(uint64_t{18446744073709551615ull});
  w.BeginObject();
  w.Field("x", -2);
  w.Field("y", true);
  w.EndObject();
  w.BeginArray();
  w.EndArray();
  w.Null();
  w.Value("s");
  w.EndArray();
  w.Field("d", 0.25);
  w.Field("name", std::string("n"));
  w.EndObject();
  CHECK(w.complete());
  CHECK(out ==
        "{\"a\":1,\"empty\":{},\"list\":[18446744073709551615,{\"x\":-2,\"y\":true},[],null,"
        "\"s\"],\"d\":0.25,\"name\":\"n\"}");
  CHECK(nlohmann::json::accept(out));
}

TEST_CASE("json writer: a string literal is a string, not a bool") {
  std::string out;
  JsonWriter w(&out);
  w.BeginObject();
  w.Field("role", "primary");
  w.EndObject();
  CHECK(out == "{\"role\":\"primary\"}");
}

TEST_CASE("json writer: raw JSON is spliced with the commas around it") {
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  w.Raw("{\"k\":1}");
  w.Raw("[2]");
  w.EndArray();
  CHECK(out == "[{\"k\":1},[2]]");
}

TEST_CASE("json writer: quotes, backslashes and control bytes are escaped") {
  CHECK(Quoted("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(Quoted("\n\r\t\b\f") == "\"\\n\\r\\t\\b\\f\"");
  CHECK(Quoted(std::string_view("\x00\x01\x1f\x7f", 4)) == "\"\\u0000\\u0001\\u001f\\u007f\"");
}

TEST_CASE("json writer: valid UTF-8 passes through, invalid bytes become U+FFFD") {
  CHECK(Quoted("D\xc3\xa9lhi \xe2\x82\xac \xf0\x9f\x98\x80") ==
        "\"D\xc3\xa9lhi \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK(Quoted("a\xff"
               "b") == "\"a\\ufffdb\"");                                    // never a UTF-8 byte
  CHECK(Quoted("\x80") == "\"\\ufffd\"");                                   // stray continuation
  CHECK(Quoted("\xc3") == "\"\\ufffd\"");                                   // truncated at the end
  CHECK(Quoted("\xe2\x82x") == "\"\\ufffd\\ufffdx\"");                      // truncated inside
  CHECK(Quoted("\xc0\xaf") == "\"\\ufffd\\ufffd\"");                        // overlong '/'
  CHECK(Quoted("\xe0\x80\xaf") == "\"\\ufffd\\ufffd\\ufffd\"");             // overlong, 3 bytes
  CHECK(Quoted("\xed\xa0\x80") == "\"\\ufffd\\ufffd\\ufffd\"");             // a surrogate
  CHECK(Quoted("\xf4\x90\x80\x80") == "\"\\ufffd\\ufffd\\ufffd\\ufffd\"");  // > U+10FFFF
  CHECK(Quoted("\xf4\x8f\xbf\xbf") == "\"\xf4\x8f\xbf\xbf\"");              // U+10FFFF itself
}

// Bytes that exercise the escaper: ASCII, quotes and control bytes, valid
// sequences of every length, and the invalid kinds (stray continuation,
// truncated, overlong, surrogate, above U+10FFFF, never-UTF-8 bytes).
std::string HostileBytes(std::mt19937& gen) {
  static const char* kPieces[] = {"a",        "\"",           "\\",
                                  "\n",       "\x01",         "\x7f",
                                  "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                  "\x80",     "\xc3",         "\xe2\x82",
                                  "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                  "\xff",     "\xfe",         "/"};
  std::string s;
  const size_t n = gen() % 12;
  for (size_t i = 0; i < n; ++i) {
    if (gen() % 3 == 0) {
      s.push_back(static_cast<char>(gen() & 0xff));  // any byte at all
    } else {
      s.append(kPieces[gen() % std::size(kPieces)]);
    }
  }
  return s;
}

// What a decoder makes of bytes: each byte outside a valid sequence is U+FFFD
// (Utf8SequenceLength itself is pinned by the cases above).
std::string Replaced(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out.append("\xef\xbf\xbd");
      i++;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

TEST_CASE("json writer: bytes are a string when UTF-8, else base64, and read back exact") {
  const std::string binary("\xff\x00k", 3);
  std::string out;
  JsonWriter w(&out);
  w.BeginArray();
  w.Bytes("caf\xc3\xa9");
  w.Bytes(binary);
  w.Bytes("");
  w.EndArray();
  CHECK(out == "[\"caf\xc3\xa9\",{\"base64\":\"/wBr\"},\"\"]");
  const nlohmann::json j = nlohmann::json::parse(out);
  std::string decoded;
  REQUIRE(Base64Decode(j[1]["base64"].get<std::string>(), &decoded));
  CHECK(decoded == binary);
  CHECK(IsValidUtf8("\xf0\x9f\x98\x80"));
  CHECK_FALSE(IsValidUtf8("\xed\xa0\x80"));  // a surrogate
  CHECK_FALSE(IsValidUtf8("\xc0\xaf"));      // overlong
  CHECK_FALSE(IsValidUtf8("\xe2\x82"));      // truncated
}

TEST_CASE("json writer: random documents, nested at random, read back equal by a strict parser") {
  // The writer and an nlohmann model are driven by the same random choices;
  // the text must parse strictly (no missing or extra comma, valid UTF-8) to
  // exactly the model, strings with invalid UTF-8 replaced.
  std::mt19937 gen(7);
  for (int round = 0; round < 300; ++round) {
    std::string out;
    JsonWriter w(&out);
    nlohmann::json model = nlohmann::json::object();
    std::vector<nlohmann::json*> open{&model};
    w.BeginObject();
    int budget = 1 + static_cast<int>(gen() % 40);
    while (!open.empty()) {
      nlohmann::json* top = open.back();
      const bool close = budget-- <= 0 || gen() % 5 == 0;
      if (close) {
        if (top->is_object()) {
          w.EndObject();
        } else {
          w.EndArray();
        }
        open.pop_back();
        continue;
      }
      // The slot for the next value: a new member or element.
      nlohmann::json* slot;
      if (top->is_object()) {
        const std::string key = HostileBytes(gen) + std::to_string(top->size());
        w.Key(key);
        slot = &(*top)[Replaced(key)];
      } else {
        top->push_back(nullptr);
        slot = &top->back();
      }
      switch (gen() % 7) {
        case 0:
          w.BeginObject();
          *slot = nlohmann::json::object();
          open.push_back(slot);
          break;
        case 1:
          w.BeginArray();
          *slot = nlohmann::json::array();
          open.push_back(slot);
          break;
        case 2: {
          const std::string v = HostileBytes(gen);
          w.Value(v);
          *slot = Replaced(v);
          break;
        }
        case 3: {
          const uint64_t v = (uint64_t{gen()} << 32) | gen();
          w.Value(v);
          *slot = v;
          break;
        }
        case 4: {
          const int64_t v = -static_cast<int64_t>(gen());
          w.Value(v);
          *slot = v;
          break;
        }
        case 5: {
          const bool v = gen() % 2 == 0;
          w.Value(v);
          *slot = v;
          break;
        }
        default:
          w.Null();
          break;
      }
    }
    CAPTURE(out);
    REQUIRE(w.complete());
    const nlohmann::json parsed = nlohmann::json::parse(out, nullptr, /*allow_exceptions=*/false);
    REQUIRE(!parsed.is_discarded());
    CHECK(parsed == model);
  }
}

TEST_CASE("json writer: any bytes give a document a strict parser accepts") {
  std::mt19937 gen(11);
  for (int round = 0; round < 2000; ++round) {
    std::string bytes(gen() % 24, '\0');
    for (char& c : bytes) c = static_cast<char>(gen() & 0xff);
    std::string out;
    JsonWriter w(&out);
    w.BeginObject();
    w.Field(bytes, bytes);
    w.EndObject();
    CAPTURE(out);
    REQUIRE(nlohmann::json::accept(out));
    // Valid UTF-8 comes back unchanged; each other byte as U+FFFD.
    const nlohmann::json j = nlohmann::json::parse(out);
    CHECK(j.begin().key() == Replaced(bytes));
    CHECK(j.begin().value() == Replaced(bytes));
  }
}

}  // namespace
}  // namespace distkv
