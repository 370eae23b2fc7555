// Query parameters and If-None-Match on reads: what a key-value endpoint
// does not understand is refused with a 400 that names it, never ignored.
#include <doctest/doctest.h>

#include "src/api/kv_request.h"

namespace {

distkv::net::HttpRequest Req(std::string method, std::string target) {
  distkv::net::HttpRequest r;
  r.method = std::move(method);
  r.target = target;
  const auto q = target.find('?');
  r.path = target.substr(0, q);
  r.query = q == std::string::npos ? "" : target.substr(q + 1);
  return r;
}

// The 400's error code and message, or "ok".
std::string Refusal(distkv::net::HttpRequest r) {
  distkv::ParsedRequest parsed;
  distkv::net::HttpResponse error;
  if (distkv::ParseRequest(r, distkv::KeyLimits{}, &parsed, &error)) return "ok";
  CHECK(error.status == 400);
  return error.body;
}

}  // namespace

TEST_CASE("unknown, malformed and repeated query parameters are 400s naming the problem") {
  struct Case {
    const char* method;
    const char* target;
    const char* expect;  // substring of the error body
  };
  const Case cases[] = {
      {"PUT", "/kv/k?ack=banana", "ack=banana is not understood"},
      {"GET", "/kv/k?read=primary", "read=primary is not understood"},
      {"GET", "/kv/k?raed=replica", "unknown query parameter \\\"raed\\\""},
      {"GET", "/kv/k?x", "unknown query parameter \\\"x\\\""},
      {"GET", "/get?key=a&key=b", "\\\"key\\\" is given twice"},
      {"POST", "/set?key=a&value=1&value=2", "\\\"value\\\" is given twice"},
      {"GET", "/get?key=a&value=1", "unknown query parameter \\\"value\\\" for /get"},
      {"PUT", "/kv/k?ack=replica&ack=replica", "\\\"ack\\\" is given twice"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.target);
    const std::string body = Refusal(Req(c.method, c.target));
    CHECK_MESSAGE(body.find(c.expect) != std::string::npos, body);
  }
  for (const char* ok : {"/kv/k?ack=replica", "/kv/k?read=replica", "/get?key=a&read=replica",
                         "/set?key=a&value=b&ack=replica", "/delete?key=a&ack=replica"}) {
    CAPTURE(ok);
    CHECK(Refusal(Req(ok[1] == 's' ? "POST" : "GET", ok)) == "ok");
  }
}

TEST_CASE("GET takes If-None-Match with a list of ETags; a write only *") {
  auto get = Req("GET", "/kv/k");
  get.headers.push_back({"If-None-Match", "\"7\", W/\"12\""});
  distkv::ParsedRequest parsed;
  distkv::net::HttpResponse error;
  REQUIRE(distkv::ParseRequest(get, distkv::KeyLimits{}, &parsed, &error));
  CHECK(parsed.kv.if_none_match == std::vector<uint64_t>{7, 12});

  auto bad = Req("GET", "/kv/k");
  bad.headers.push_back({"If-None-Match", "\"x\""});
  CHECK(Refusal(bad).find("bad_if_none_match") != std::string::npos);

  // Every LSN is an ETag, the largest included; one past it is not.
  auto largest = Req("GET", "/kv/k");
  largest.headers.push_back(
      {"If-None-Match", "\"18446744073709551615\", \"18446744073709551609\""});
  distkv::ParsedRequest parsed_largest;
  REQUIRE(distkv::ParseRequest(largest, distkv::KeyLimits{}, &parsed_largest, &error));
  CHECK(parsed_largest.kv.if_none_match ==
        std::vector<uint64_t>{18446744073709551615ull, 18446744073709551609ull});
  auto past = Req("GET", "/kv/k");
  past.headers.push_back({"If-None-Match", "\"18446744073709551616\""});
  CHECK(Refusal(past).find("bad_if_none_match") != std::string::npos);

  auto put = Req("PUT", "/kv/k");
  put.headers.push_back({"If-None-Match", "\"7\""});
  CHECK(Refusal(put).find("only If-None-Match: *") != std::string::npos);
}
