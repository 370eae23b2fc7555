// Tests of the plain message helpers: header lookup, reason phrases, the JSON
// error body, percent-decoding and query parsing.
#include "net/http_message.h"

#include <doctest/doctest.h>

namespace distkv::net {
namespace {

TEST_CASE("EqualsIgnoreCase compares ASCII without case") {
  CHECK(EqualsIgnoreCase("Content-Length", "content-length"));
  CHECK(EqualsIgnoreCase("", ""));
  CHECK_FALSE(EqualsIgnoreCase("Content-Length", "Content-Lengt"));
  CHECK_FALSE(EqualsIgnoreCase("a", "b"));
}

TEST_CASE("FindHeader returns the first header of that name, any case") {
  std::vector<Header> headers = {{"Host", "a"}, {"X-Key", "1"}, {"x-key", "2"}};
  REQUIRE(FindHeader(headers, "x-KEY") != nullptr);
  CHECK(*FindHeader(headers, "x-KEY") == "1");
  CHECK(FindHeader(headers, "Missing") == nullptr);
}

TEST_CASE("SetHeader replaces an existing header or appends a new one") {
  HttpResponse r;
  r.SetHeader("ETag", "\"1\"");
  r.SetHeader("etag", "\"2\"");
  r.SetHeader("X-Other", "x");
  REQUIRE(r.headers.size() == 2);
  CHECK(r.headers[0].name == "ETag");
  CHECK(r.headers[0].value == "\"2\"");
  CHECK(*r.header("x-other") == "x");
}

TEST_CASE("StatusReason names the codes the project uses") {
  CHECK(StatusReason(200) == "OK");
  CHECK(StatusReason(404) == "Not Found");
  CHECK(StatusReason(411) == "Length Required");
  CHECK(StatusReason(413) == "Payload Too Large");
  CHECK(StatusReason(414) == "URI Too Long");
  CHECK(StatusReason(431) == "Request Header Fields Too Large");
  CHECK(StatusReason(507) == "Insufficient Storage");
  CHECK(StatusReason(299) == "Unknown");
}

TEST_CASE("MakeErrorResponse builds an escaped JSON body") {
  HttpResponse r = MakeErrorResponse(400, "bad_request", "key \"a\\b\"\nnot\x01 valid");
  CHECK(r.status == 400);
  REQUIRE(r.header("Content-Type") != nullptr);
  CHECK(*r.header("Content-Type") == "application/json");
  CHECK(r.body ==
        "{\"error\":\"bad_request\",\"message\":\"key \\\"a\\\\b\\\"\\nnot\\u0001 valid\"}\n");
}

TEST_CASE("PercentDecode decodes escapes and rejects malformed ones") {
  std::string out;
  CHECK(PercentDecode("a%20b%2Fc%2fd", &out, false));
  CHECK(out == "a b/c/d");
  CHECK(PercentDecode("a+b", &out, false));
  CHECK(out == "a+b");
  CHECK(PercentDecode("a+b", &out, true));
  CHECK(out == "a b");
  CHECK(PercentDecode("%00%ff", &out, false));
  CHECK(out == std::string("\0\xff", 2));
  CHECK(PercentDecode("", &out, false));
  CHECK(out.empty());
  CHECK_FALSE(PercentDecode("%zz", &out, false));
  CHECK_FALSE(PercentDecode("%4", &out, false));
  CHECK_FALSE(PercentDecode("abc%", &out, false));
  CHECK_FALSE(PercentDecode("%g0", &out, false));
  CHECK_FALSE(PercentDecode("%0g", &out, false));
}

TEST_CASE("PercentDecode replaces what the output held, escapes anywhere in a long input") {
  std::string out(100, 'x');
  CHECK(PercentDecode("key", &out, false));
  CHECK(out == "key");
  CHECK(PercentDecode("abcdefghijklmnopqrstuvwxyz%41%42+c", &out, false));
  CHECK(out == "abcdefghijklmnopqrstuvwxyzAB+c");
  CHECK(PercentDecode("abcdefghijklmnopqrstuvwxyz%41%42+c", &out, true));
  CHECK(out == "abcdefghijklmnopqrstuvwxyzAB c");
  CHECK(PercentDecode("++%2B", &out, true));
  CHECK(out == "  +");
  CHECK_FALSE(PercentDecode("abcdefghijklmnopqrstuvwxyz%4", &out, false));
  CHECK_FALSE(PercentDecode("abcdefghijklmnopqrstuvwxyz%41%", &out, true));
}

TEST_CASE("HasControlByte finds every byte IsControlByte names, at every place, and no other") {
  CHECK_FALSE(HasControlByte(""));
  // Each byte value at each place of texts of 1 to 40 bytes (shorter than a
  // word, whole words, words and a tail), among neighbours that pass: the
  // highest bytes too, which a word-wise test must not mistake for low ones.
  for (const char fill : {'a', '~', '\x80', '\xff'}) {
    for (size_t len = 1; len <= 40; ++len) {
      for (size_t at = 0; at < len; ++at) {
        for (int b = 0; b < 256; ++b) {
          std::string text(len, fill);
          text[at] = static_cast<char>(b);
          if (HasControlByte(text) != IsControlByte(static_cast<unsigned char>(b))) {
            FAIL_CHECK("fill " << int(static_cast<unsigned char>(fill)) << ", " << len
                               << " bytes, byte " << b << " at " << at);
          }
        }
      }
    }
  }
}

TEST_CASE("ParseQuery splits and decodes parameters in order") {
  std::vector<std::pair<std::string, std::string>> params;
  CHECK(ParseQuery("key=a%2Fb&value=hello+world&flag&empty=&&x=1=2", &params));
  REQUIRE(params.size() == 5);
  CHECK(params[0] == std::make_pair(std::string("key"), std::string("a/b")));
  CHECK(params[1] == std::make_pair(std::string("value"), std::string("hello world")));
  CHECK(params[2] == std::make_pair(std::string("flag"), std::string("")));
  CHECK(params[3] == std::make_pair(std::string("empty"), std::string("")));
  CHECK(params[4] == std::make_pair(std::string("x"), std::string("1=2")));
  CHECK(ParseQuery("", &params));
  CHECK(params.empty());
  CHECK_FALSE(ParseQuery("key=%zz", &params));
  CHECK_FALSE(ParseQuery("k%4=v", &params));
}

}  // namespace
}  // namespace distkv::net

TEST_CASE(
    "PercentEncode escapes everything but unreserved characters, and PercentDecode undoes it") {
  CHECK(distkv::net::PercentEncode("Az09-._~") == "Az09-._~");
  CHECK(distkv::net::PercentEncode("a b/c?d&e=f%\xff:@") == "a%20b%2Fc%3Fd%26e%3Df%25%FF%3A%40");
  std::string out = "/kv/";
  distkv::net::AppendPercentEncoded(&out, std::string("\0k", 2));
  CHECK(out == "/kv/%00k");
  std::string decoded;
  REQUIRE(distkv::net::PercentDecode(distkv::net::PercentEncode(std::string("\0\x01 +\xff", 5)),
                                     &decoded, true));
  CHECK(decoded == std::string("\0\x01 +\xff", 5));
}
