// Tests of ResponseParser's relayed responses (net/client_response_parser.h):
// with a header filter, the headers it accepts are kept as wire lines in
// header_lines, whatever way the bytes are split, and framing headers never.
#include "net/client_response_parser.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "net/response_writer.h"

namespace distkv::net {
namespace {

bool KeepShardAndEtag(std::string_view name) {
  return EqualsIgnoreCase(name, "ETag") || EqualsIgnoreCase(name, "X-Distkv-Shard") ||
         EqualsIgnoreCase(name, "Content-Length") || EqualsIgnoreCase(name, "Connection");
}

// Collects every complete response; relays (gives the filter) when asked.
class CollectingSink : public ResponseParser::Sink {
 public:
  ResponseParser::HeaderFilter filter = nullptr;
  std::vector<HttpResponse> responses;

  ResponseParser::HeaderFilter OnResponseBegin() override { return filter; }
  ResponseParser::BodyMode OnResponseHead(const HttpResponse&) override {
    return ResponseParser::BodyMode::kCollect;
  }
  bool OnResponseBody(std::string_view) override { return true; }
  bool OnResponseComplete(HttpResponse& response, bool) override {
    responses.push_back(std::move(response));
    return true;
  }
};

constexpr std::string_view kAnswer =
    "HTTP/1.1 200 OK\r\n"
    "ETag: \"7\"\r\n"
    "Content-Type: application/octet-stream\r\n"
    "x-distkv-shard: B\r\n"
    "X-Empty:\r\n"
    "Content-Length: 5\r\n"
    "Connection: keep-alive\r\n"
    "\r\n"
    "hello";

}  // namespace

TEST_CASE("a relayed response keeps the accepted headers as lines, split anywhere") {
  // Every split point of the answer, fed in two reads, and one byte at a time.
  for (size_t split = 0; split <= kAnswer.size() + 1; ++split) {
    CAPTURE(split);
    CollectingSink sink;
    sink.filter = &KeepShardAndEtag;
    ResponseParser parser(&sink);
    if (split <= kAnswer.size()) {
      REQUIRE(parser.Feed(kAnswer.data(), split) == ResponseParser::Result::kOk);
      REQUIRE(parser.Feed(kAnswer.data() + split, kAnswer.size() - split) ==
              ResponseParser::Result::kOk);
    } else {
      for (char c : kAnswer) REQUIRE(parser.Feed(&c, 1) == ResponseParser::Result::kOk);
    }
    REQUIRE(sink.responses.size() == 1);
    const HttpResponse& r = sink.responses[0];
    CHECK(r.status == 200);
    CHECK(r.body == "hello");
    CHECK(r.headers.empty());
    // The filter accepted Content-Length and Connection too: framing is
    // the writer's, so they are dropped all the same.
    CHECK(r.header_lines == "ETag: \"7\"\r\nx-distkv-shard: B\r\n");
  }
}

TEST_CASE("without a filter the headers are parsed into the list, as before") {
  CollectingSink sink;
  ResponseParser parser(&sink);
  REQUIRE(parser.Feed(kAnswer.data(), kAnswer.size()) == ResponseParser::Result::kOk);
  REQUIRE(sink.responses.size() == 1);
  const HttpResponse& r = sink.responses[0];
  CHECK(r.header_lines.empty());
  REQUIRE(r.headers.size() == 6);
  CHECK(*r.header("etag") == "\"7\"");
  CHECK(*r.header("X-Empty") == "");
}

TEST_CASE("a relayed response is written with its lines, and the server's own headers yield") {
  CollectingSink sink;
  sink.filter = &KeepShardAndEtag;
  ResponseParser parser(&sink);
  // Two pipelined answers: the second relays its own lines only.
  const std::string two =
      std::string(kAnswer) + "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nETag: \"9\"\r\n\r\nno";
  REQUIRE(parser.Feed(two.data(), two.size()) == ResponseParser::Result::kOk);
  REQUIRE(sink.responses.size() == 2);
  CHECK(sink.responses[1].header_lines == "ETag: \"9\"\r\n");

  std::string out;
  const HttpResponse& r = sink.responses[0];
  AppendResponseHead(r, BodyFraming::kContentLength, r.body.size(), ConnectionHeader::kNone,
                     "X-Distkv-Shard: A\r\nServer: distkv\r\n", &out);
  CHECK(out ==
        "HTTP/1.1 200 OK\r\n"
        "ETag: \"7\"\r\n"
        "x-distkv-shard: B\r\n"
        "Server: distkv\r\n"
        "Content-Length: 5\r\n"
        "\r\n");
}

TEST_CASE("HasHeaderLine finds a name at the start of a line only, in any case") {
  const std::string lines = "ETag: \"1\"\r\nX-Distkv-Shard: B\r\nA: X-Distkv-TTL: 3\r\n";
  CHECK(HasHeaderLine(lines, "x-distkv-shard"));
  CHECK(HasHeaderLine(lines, "ETag"));
  CHECK_FALSE(HasHeaderLine(lines, "X-Distkv-TTL"));
  CHECK_FALSE(HasHeaderLine(lines, "ETa"));
  CHECK_FALSE(HasHeaderLine("", "ETag"));
}

}  // namespace distkv::net
