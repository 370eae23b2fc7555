// HttpServer limits: every size limit answered with its status, a JSON body
// and Connection: close; malformed requests; the connection cap; header and
// idle timeouts; back-pressure on clients that pipeline or do not read.
#include <doctest/doctest.h>

#include "tests/unit/net/http_server_test_harness.h"

namespace distkv::net {
namespace {

using test::EchoHandler;
using test::ParsedResponse;
using test::RawClient;
using test::TestServer;

// Sends request on a fresh connection and expects exactly one answer, the
// server's own error, followed by the end of the connection.
ParsedResponse ExpectServerError(TestServer* ts, const std::string& request) {
  RawClient c(ts);
  c.Send(request);  // may fail part way once the server has answered and closed
  CHECK(c.AwaitEof());
  auto responses = c.Responses();
  REQUIRE(responses.size() == 1);
  const ParsedResponse& r = responses[0];
  REQUIRE(r.header("Connection") != nullptr);
  CHECK(*r.header("Connection") == "close");
  REQUIRE(r.header("Content-Type") != nullptr);
  CHECK(*r.header("Content-Type") == "application/json");
  REQUIRE(r.header("Content-Length") != nullptr);
  CHECK(std::stoul(*r.header("Content-Length")) == r.body.size());
  return r;
}

std::string ErrorCode(const ParsedResponse& r) {
  const std::string prefix = "{\"error\":\"";
  REQUIRE(r.body.rfind(prefix, 0) == 0);
  return r.body.substr(prefix.size(), r.body.find('"', prefix.size()) - prefix.size());
}

TEST_CASE("limits: a URL over max_url_bytes is answered 414") {
  ServerLimits limits;
  limits.max_url_bytes = 64;
  TestServer ts(limits, EchoHandler());
  const std::string at_limit = "/" + std::string(63, 'a');
  RawClient ok(&ts);
  REQUIRE(ok.Send("GET " + at_limit + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto responses = ok.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].status == 200);

  ParsedResponse r = ExpectServerError(&ts, "GET " + at_limit + "b HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(r.status == 414);
  CHECK(ErrorCode(r) == "uri_too_long");
  CHECK(ts.counters().parse_errors == 1);
}

TEST_CASE("limits: headers over max_header_bytes are answered 431") {
  ServerLimits limits;
  limits.max_header_bytes = 256;
  TestServer ts(limits, EchoHandler());
  RawClient ok(&ts);
  REQUIRE(ok.Send("GET / HTTP/1.1\r\nX-A: " + std::string(200, 'v') + "\r\n\r\n"));
  auto responses = ok.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].status == 200);

  SUBCASE("one large header") {
    ParsedResponse r =
        ExpectServerError(&ts, "GET / HTTP/1.1\r\nX-A: " + std::string(300, 'v') + "\r\n\r\n");
    CHECK(r.status == 431);
    CHECK(ErrorCode(r) == "request_header_fields_too_large");
  }
  SUBCASE("many small headers") {
    std::string request = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 40; ++i) request += "X-" + std::to_string(i) + ": v\r\n";
    ParsedResponse r = ExpectServerError(&ts, request + "\r\n");
    CHECK(r.status == 431);
  }
}

TEST_CASE("limits: bodies over max_body_bytes are answered 413") {
  ServerLimits limits;
  limits.max_body_bytes = 100;
  TestServer ts(limits, EchoHandler());
  RawClient ok(&ts);
  REQUIRE(ok.Send("PUT /kv/k HTTP/1.1\r\nContent-Length: 100\r\n\r\n" + std::string(100, 'b')));
  auto responses = ok.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].status == 200);

  SUBCASE("declared by Content-Length, answered before the body") {
    ParsedResponse r = ExpectServerError(&ts, "PUT /kv/k HTTP/1.1\r\nContent-Length: 101\r\n\r\n");
    CHECK(r.status == 413);
    CHECK(ErrorCode(r) == "payload_too_large");
  }
  SUBCASE("a huge Content-Length with its body under way") {
    ParsedResponse r = ExpectServerError(
        &ts, "PUT /kv/k HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n" + std::string(5000, 'b'));
    CHECK(r.status == 413);
  }
  SUBCASE("chunked, found while the body arrives") {
    ParsedResponse r = ExpectServerError(
        &ts, "PUT /kv/k HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n40\r\n" +
                 std::string(64, 'b') + "\r\n40\r\n" + std::string(64, 'b') + "\r\n0\r\n\r\n");
    CHECK(r.status == 413);
  }
  SUBCASE("Expect: 100-continue with a too large body gets 413, not 100") {
    RawClient c(&ts);
    REQUIRE(c.Send("PUT /kv/k HTTP/1.1\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n"));
    REQUIRE(c.AwaitEof());
    auto rs = c.Responses();
    REQUIRE(rs.size() == 1);
    CHECK(rs[0].status == 413);
    CHECK(c.received().find("100 Continue") == std::string::npos);
  }
  CHECK(ts.counters().parse_errors == 1);
}

TEST_CASE("limits: a PUT without a length is answered 411; a POST without one has no body") {
  TestServer ts(ServerLimits{}, EchoHandler());
  ParsedResponse put = ExpectServerError(&ts, "PUT /kv/k HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(put.status == 411);
  CHECK(ErrorCode(put) == "length_required");
  // Other methods need no length (POST included), and an explicit zero is fine.
  RawClient ok(&ts);
  REQUIRE(
      ok.Send("DELETE /kv/k HTTP/1.1\r\nHost: x\r\n\r\n"
              "PUT /kv/k HTTP/1.1\r\nContent-Length: 0\r\n\r\n"
              "POST /set?key=a HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto responses = ok.Await(3);
  REQUIRE(responses.size() == 3);
  CHECK(responses[0].status == 200);
  CHECK(responses[1].body == "PUT /kv/k ");
  CHECK(responses[2].status == 200);
  CHECK(responses[2].body == "POST /set?key=a ");
  CHECK(ts.counters().parse_errors == 1);
}

TEST_CASE("limits: malformed requests are answered 400") {
  TestServer ts(ServerLimits{}, EchoHandler());
  const char* bad[] = {
      "GARBAGE\r\n\r\n",
      "GET / HTTP/1.1\r\nNo colon here\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "PUT / HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
      "PUT / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
      "PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET / HTTP/1.1\r\nExpect: something-else\r\n\r\n",
  };
  for (const char* request : bad) {
    CAPTURE(request);
    ParsedResponse r = ExpectServerError(&ts, request);
    CHECK(r.status >= 400);
    CHECK(r.status < 500);
  }
  ParsedResponse r = ExpectServerError(&ts, "GARBAGE\r\n\r\n");
  CHECK(r.status == 400);
  CHECK(ErrorCode(r) == "bad_request");
  CHECK(ts.counters().requests == 0);
}

TEST_CASE("limits: requests before a bad one are answered first, in order") {
  TestServer ts(ServerLimits{}, EchoHandler());
  RawClient c(&ts);
  REQUIRE(
      c.Send("GET /one HTTP/1.1\r\nHost: x\r\n\r\nGET /two HTTP/1.1\r\nHost: x\r\n\r\n"
             "BROKEN\r\n\r\nGET /never HTTP/1.1\r\n\r\n"));
  REQUIRE(c.AwaitEof());
  auto responses = c.Responses();
  REQUIRE(responses.size() == 3);
  CHECK(responses[0].body == "GET /one ");
  CHECK(responses[1].body == "GET /two ");
  CHECK(responses[2].status == 400);
  CHECK(ts.counters().requests == 2);
}

TEST_CASE("limits: connections beyond max_connections get 503 with Retry-After, then close") {
  ServerLimits limits;
  limits.max_connections = 2;
  TestServer ts(limits, EchoHandler());
  auto c1 = std::make_unique<RawClient>(&ts);
  RawClient c2(&ts);
  REQUIRE(ts.RunUntil([&ts] { return ts.counters().connections_current == 2; }));
  RawClient c3(&ts);
  REQUIRE(c3.Send("GET /full HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(c3.AwaitEof());
  auto refused = c3.Responses();
  REQUIRE(refused.size() == 1);
  CHECK(refused[0].status == 503);
  REQUIRE(refused[0].header("Retry-After") != nullptr);
  CHECK(*refused[0].header("Retry-After") == "1");
  CHECK(ErrorCode(refused[0]) == "too_many_connections");
  CHECK(ts.counters().connections_rejected == 1);
  CHECK(ts.counters().connections_accepted == 2);

  REQUIRE(c2.Send("GET /still HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto responses = c2.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].body == "GET /still ");

  c1.reset();  // frees a place
  REQUIRE(ts.RunUntil([&ts] { return ts.counters().connections_current == 1; }));
  RawClient c4(&ts);
  REQUIRE(c4.Send("GET /new HTTP/1.1\r\nHost: x\r\n\r\n"));
  responses = c4.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].body == "GET /new ");
  CHECK(ts.counters().connections_accepted == 3);
}

TEST_CASE("limits: a slow-loris client is cut at header_timeout while others are served") {
  ServerLimits limits;
  limits.header_timeout_ms = 300;
  limits.idle_timeout_ms = 60'000;
  TestServer ts(limits, EchoHandler());
  RawClient loris(&ts);
  RawClient good(&ts);
  const std::string slow_request = "GET /" + std::string(10'000, 'a');
  size_t sent = 0;
  size_t served = 0;
  // One byte every 20 ms: the head never completes, but bytes keep coming.
  while (!loris.eof() && sent < slow_request.size()) {
    loris.Send(std::string_view(slow_request).substr(sent++, 1));
    REQUIRE(good.Send("GET /ok HTTP/1.1\r\nHost: x\r\n\r\n"));
    auto responses = good.Await(served + 1);
    REQUIRE(responses.size() == served + 1);
    CHECK(responses.back().body == "GET /ok ");
    served = responses.size();
    ts.RunFor(20);
    loris.Poll();
  }
  CHECK(loris.eof());
  CHECK(loris.received().empty());
  CHECK(ts.counters().timeouts == 1);
  CHECK_FALSE(good.eof());
  CHECK(served > 1);
}

TEST_CASE("limits: a client that connects and sends nothing is cut at header_timeout") {
  ServerLimits limits;
  limits.header_timeout_ms = 100;
  TestServer ts(limits, EchoHandler());
  RawClient silent(&ts);
  REQUIRE(silent.AwaitEof());
  CHECK(ts.counters().timeouts == 1);
}

TEST_CASE("limits: an idle keep-alive connection is closed at idle_timeout") {
  ServerLimits limits;
  limits.idle_timeout_ms = 200;
  limits.header_timeout_ms = 60'000;
  std::vector<Responder> held;
  TestServer ts(limits, [&held](HttpRequest& request, Responder responder) {
    if (request.path == "/hold") {
      held.push_back(responder);
      return;
    }
    EchoHandler()(request, responder);
  });
  RawClient c(&ts);
  REQUIRE(c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(c.Await(1).size() == 1);
  REQUIRE(c.AwaitEof());
  CHECK(ts.counters().timeouts == 1);

  // A connection waiting for its handler is not idle.
  RawClient waiting(&ts);
  REQUIRE(waiting.Send("GET /hold HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(ts.RunUntil([&held] { return held.size() == 1; }));
  ts.RunFor(500);
  waiting.Poll();
  CHECK_FALSE(waiting.eof());
  HttpResponse response;
  response.body = "late";
  held[0].Send(std::move(response));
  auto responses = waiting.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].body == "late");
  REQUIRE(waiting.AwaitEof());  // then idle again
  CHECK(ts.counters().timeouts == 2);
}

TEST_CASE("limits: max_pipelined unanswered requests stop the reading") {
  ServerLimits limits;
  limits.max_pipelined = 2;
  std::vector<Responder> held;
  TestServer ts(
      limits, [&held](HttpRequest&, Responder responder) { held.push_back(std::move(responder)); });
  RawClient c(&ts);
  std::string batch;
  for (int i = 0; i < 6; ++i) batch += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(c.Send(batch));
  REQUIRE(ts.RunUntil([&held] { return held.size() == 2; }));
  ts.RunFor(20);
  CHECK(held.size() == 2);
  CHECK(ts.counters().requests == 2);
  CHECK(ts.counters().backpressure_pauses == 1);

  size_t answered = 0;
  while (answered < 6) {
    REQUIRE(ts.RunUntil([&] { return held.size() > answered; }));
    const size_t upto = held.size();
    CHECK(upto - answered <= 2);
    for (; answered < upto; ++answered) {
      HttpResponse response;
      response.body = std::to_string(answered);
      held[answered].Send(std::move(response));
    }
  }
  auto responses = c.Await(6);
  REQUIRE(responses.size() == 6);
  for (size_t i = 0; i < 6; ++i) CHECK(responses[i].body == std::to_string(i));
  CHECK(ts.counters().backpressure_pauses >= 2);
}

TEST_CASE("limits: a client that does not read stops being read") {
  ServerLimits limits;
  limits.max_write_queue_bytes = 64 * 1024;
  const std::string big(6 << 20, 'v');  // more than the kernel buffers hold
  size_t queued_seen = 0;
  TestServer ts(limits, [&](HttpRequest&, Responder responder) {
    HttpResponse response;
    response.body = big;
    responder.Send(std::move(response));
    queued_seen = responder.queued_bytes();
  });
  RawClient c(&ts, 4096);
  REQUIRE(
      c.Send("GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /3 HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(ts.RunUntil([&ts] { return ts.counters().backpressure_pauses == 1; }));
  ts.RunFor(50);
  CHECK(ts.counters().requests == 1);
  CHECK(queued_seen >= big.size());

  // Reading drains the queue and the remaining requests are served.
  auto responses = c.Await(3);
  REQUIRE(responses.size() == 3);
  for (const auto& r : responses) CHECK(r.body.size() == big.size());
  CHECK(ts.counters().requests == 3);
}

}  // namespace
}  // namespace distkv::net

namespace distkv::net {
namespace {

TEST_CASE("limits: an Upgrade request is answered, then the connection closes") {
  test::TestServer ts(ServerLimits{}, test::EchoHandler());
  test::RawClient c(&ts);
  REQUIRE(
      c.Send("GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"
             "\x81\x05hello"));
  REQUIRE(c.AwaitEof());
  auto responses = c.Responses();
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].body == "GET /ws ");
  CHECK(*responses[0].header("Connection") == "close");
  CHECK(ts.counters().requests == 1);
}

}  // namespace
}  // namespace distkv::net
