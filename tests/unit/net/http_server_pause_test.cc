// HttpServer after a pause of its process: a deadline that passes while the
// client's bytes already wait in the socket is judged after they are read.
// The test's thread is the server's loop, so sleeping between two steps is
// exactly a paused process: on loopback the bytes sent before the sleep are
// in the server's socket, and the next step runs the due timer before it
// polls for them.
#include <doctest/doctest.h>

#include <chrono>
#include <thread>

#include "tests/unit/net/http_server_test_harness.h"

namespace distkv::net {
namespace {

using test::EchoHandler;
using test::RawClient;
using test::TestServer;

void Pause(int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); }

TEST_CASE("pause: a request that arrived before header_timeout is served after a pause past it") {
  ServerLimits limits;
  limits.header_timeout_ms = 100;
  limits.idle_timeout_ms = 60'000;
  TestServer ts(limits, EchoHandler());
  RawClient c(&ts);
  REQUIRE(ts.RunUntil([&ts] { return ts.counters().connections_accepted == 1; }));
  REQUIRE(c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  Pause(300);
  auto responses = c.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].body == "GET /a ");
  CHECK_FALSE(c.eof());
  CHECK(ts.counters().timeouts == 0);
}

TEST_CASE("pause: a keep-alive request that arrived before idle_timeout is served after a pause") {
  ServerLimits limits;
  limits.idle_timeout_ms = 100;
  limits.header_timeout_ms = 60'000;
  TestServer ts(limits, EchoHandler());
  RawClient c(&ts);
  REQUIRE(c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(c.Await(1).size() == 1);
  REQUIRE(c.Send("GET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  Pause(300);
  auto responses = c.Await(2);
  REQUIRE(responses.size() == 2);
  CHECK(responses[1].body == "GET /b ");
  CHECK_FALSE(c.eof());
  CHECK(ts.counters().timeouts == 0);
}

TEST_CASE("pause: the rest of a body that arrived before idle_timeout is read after a pause") {
  ServerLimits limits;
  limits.idle_timeout_ms = 100;
  limits.header_timeout_ms = 60'000;
  TestServer ts(limits, EchoHandler());
  RawClient c(&ts);
  REQUIRE(c.Send("PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234"));
  ts.RunFor(20);  // the head and half the body are read
  REQUIRE(c.Send("56789"));
  Pause(300);
  auto responses = c.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].body == "PUT /b 0123456789");
  CHECK(ts.counters().timeouts == 0);
}

TEST_CASE("pause: bytes that do not complete a late head do not save it from header_timeout") {
  ServerLimits limits;
  limits.header_timeout_ms = 100;
  limits.idle_timeout_ms = 60'000;
  TestServer ts(limits, EchoHandler());
  RawClient c(&ts);
  REQUIRE(c.Send("GET /"));
  ts.RunFor(20);  // the head has begun
  REQUIRE(c.Send("a"));
  Pause(300);
  REQUIRE(c.AwaitEof());
  CHECK(c.received().empty());
  CHECK(ts.counters().timeouts == 1);
}

}  // namespace
}  // namespace distkv::net
