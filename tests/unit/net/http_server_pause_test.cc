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

// Limits whose header or idle timeout is short (100 ms), the other long.
ServerLimits ShortTimeout(bool header) {
  ServerLimits limits;
  limits.header_timeout_ms = header ? 100 : 60'000;
  limits.idle_timeout_ms = header ? 60'000 : 100;
  return limits;
}

// Sends bytes, then pauses the loop well past the short timeout; the
// answers must go on to the n-th, which is body, with no timeout counted.
void SendThenPause(TestServer* ts, RawClient* c, std::string_view bytes, size_t n,
                   std::string_view body) {
  REQUIRE(c->Send(bytes));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto responses = c->Await(n);
  REQUIRE(responses.size() == n);
  CHECK(responses[n - 1].body == body);
  CHECK_FALSE(c->eof());
  CHECK(ts->counters().timeouts == 0);
}

TEST_CASE("pause: a request that arrived before header_timeout is served after a pause past it") {
  TestServer ts(ShortTimeout(/*header=*/true), EchoHandler());
  RawClient c(&ts);
  REQUIRE(ts.RunUntil([&ts] { return ts.counters().connections_accepted == 1; }));
  SendThenPause(&ts, &c, "GET /a HTTP/1.1\r\nHost: x\r\n\r\n", 1, "GET /a ");
}

TEST_CASE("pause: a keep-alive request that arrived before idle_timeout is served after a pause") {
  TestServer ts(ShortTimeout(/*header=*/false), EchoHandler());
  RawClient c(&ts);
  REQUIRE(c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(c.Await(1).size() == 1);
  SendThenPause(&ts, &c, "GET /b HTTP/1.1\r\nHost: x\r\n\r\n", 2, "GET /b ");
}

TEST_CASE("pause: the rest of a body that arrived before idle_timeout is read after a pause") {
  TestServer ts(ShortTimeout(/*header=*/false), EchoHandler());
  RawClient c(&ts);
  REQUIRE(c.Send("PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n01234"));
  ts.RunFor(20);  // the head and half the body are read
  SendThenPause(&ts, &c, "56789", 1, "PUT /b 0123456789");
}

TEST_CASE("pause: bytes that do not complete a late head do not save it from header_timeout") {
  TestServer ts(ShortTimeout(/*header=*/true), EchoHandler());
  RawClient c(&ts);
  REQUIRE(c.Send("GET /"));
  ts.RunFor(20);  // the head has begun
  REQUIRE(c.Send("a"));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  REQUIRE(c.AwaitEof());
  CHECK(c.received().empty());
  CHECK(ts.counters().timeouts == 1);
}

}  // namespace
}  // namespace distkv::net
