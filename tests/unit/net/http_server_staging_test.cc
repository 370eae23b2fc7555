// HttpServer staged bytes (max_staged_bytes): a request body that finds no
// room waits, unread, after its head; answers free room and admit waiters in
// order; a body larger than the cap goes through alone; requests without a
// body never wait; a waiter that goes away gives its turn up.
#include <doctest/doctest.h>

#include <vector>

#include "tests/unit/net/http_server_test_harness.h"

namespace distkv::net {
namespace {

using test::RawClient;
using test::TestServer;

// Holds every request with a body until the test answers it; answers the
// others at once.
struct HoldingHandler {
  std::vector<Responder> held;
  std::vector<std::string> bodies;

  HttpServer::Handler Get() {
    return [this](HttpRequest& request, Responder responder) {
      if (request.body.empty()) {
        HttpResponse r;
        r.body = "no body";
        responder.Send(std::move(r));
        return;
      }
      bodies.push_back(request.body);
      held.push_back(std::move(responder));
    };
  }
  void Answer(size_t i) {
    HttpResponse r;
    r.status = 201;
    held[i].Send(std::move(r));
  }
};

std::string Put(const std::string& path, size_t n, char fill) {
  return "PUT " + path + " HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(n) +
         "\r\n\r\n" + std::string(n, fill);
}

TEST_CASE("staging: a body without room waits unread until an answer frees room") {
  ServerLimits limits;
  limits.max_staged_bytes = 1000;
  HoldingHandler h;
  TestServer ts(limits, h.Get());

  RawClient a(&ts);
  REQUIRE(a.Send(Put("/a", 800, 'a')));
  REQUIRE(ts.RunUntil([&] { return h.held.size() == 1; }));
  CHECK(ts.counters().staged_bytes == 800);

  // b's body (800 more) would pass the cap: its head is read, its body is
  // not, and its "100 Continue" waits with it.
  RawClient b(&ts);
  REQUIRE(
      b.Send("PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 800\r\nExpect: 100-continue\r\n\r\n"));
  REQUIRE(ts.RunUntil([&] { return ts.counters().staging_waits == 1; }));
  b.Poll();
  CHECK(b.received().empty());
  CHECK(h.held.size() == 1);

  // A request without a body is not held up.
  RawClient c(&ts);
  REQUIRE(c.Send("GET /c HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto got = c.Await(1);
  REQUIRE(got.size() == 1);
  CHECK(got[0].body == "no body");
  CHECK(h.held.size() == 1);

  // Answering a frees its room: b is admitted, told to continue, and read.
  h.Answer(0);
  REQUIRE(ts.RunUntil([&] {
    b.Poll();
    return b.received().find("100 Continue") != std::string::npos;
  }));
  REQUIRE(b.Send(std::string(800, 'b')));
  REQUIRE(ts.RunUntil([&] { return h.held.size() == 2; }));
  CHECK(h.bodies[1] == std::string(800, 'b'));
  CHECK(ts.counters().staged_bytes == 800);
  h.Answer(1);
  auto answers = b.Await(2);
  REQUIRE(answers.size() == 2);
  CHECK(answers[0].status == 100);
  CHECK(answers[1].status == 201);
  CHECK(ts.counters().staged_bytes == 0);
  CHECK(ts.counters().staged_bytes_peak == 800);  // never both at once
}

TEST_CASE("staging: a body larger than the cap goes through when nothing else is held") {
  ServerLimits limits;
  limits.max_staged_bytes = 1000;
  HoldingHandler h;
  TestServer ts(limits, h.Get());
  RawClient a(&ts);
  // Pipelined: the second request waits behind the first, large one.
  REQUIRE(a.Send(Put("/big", 5000, 'x') + Put("/small", 10, 'y')));
  REQUIRE(ts.RunUntil([&] { return h.held.size() == 1 && ts.counters().staging_waits == 1; }));
  CHECK(h.bodies[0].size() == 5000);
  CHECK(ts.counters().staged_bytes == 5000);
  h.Answer(0);
  REQUIRE(ts.RunUntil([&] { return h.held.size() == 2; }));
  CHECK(h.bodies[1] == std::string(10, 'y'));
  h.Answer(1);
  auto answers = a.Await(2);
  REQUIRE(answers.size() == 2);
  CHECK(answers[1].status == 201);
  CHECK(ts.counters().staged_bytes == 0);
}

TEST_CASE(
    "staging: waiters are admitted in order, and one that left gives its room back on its turn") {
  ServerLimits limits;
  limits.max_staged_bytes = 1000;
  HoldingHandler h;
  TestServer ts(limits, h.Get());
  RawClient a(&ts), b(&ts), c(&ts);
  REQUIRE(a.Send(Put("/a", 900, 'a')));
  REQUIRE(ts.RunUntil([&] { return h.held.size() == 1; }));
  REQUIRE(b.Send("PUT /b HTTP/1.1\r\nHost: x\r\nContent-Length: 900\r\n\r\n"));
  REQUIRE(ts.RunUntil([&] { return ts.counters().staging_waits == 1; }));
  // c's small body would fit beside a's, but b came first.
  REQUIRE(c.Send(Put("/c", 50, 'c')));
  REQUIRE(ts.RunUntil([&] { return ts.counters().staging_waits == 2; }));
  CHECK(h.held.size() == 1);
  // b leaves while waiting, before sending its body. Its connection is not read, so the server
  // learns it only on b's turn: then b gives its room back and c goes on.
  b.Close();
  h.Answer(0);
  REQUIRE(ts.RunUntil([&] { return h.held.size() == 2; }));
  CHECK(h.bodies[1] == std::string(50, 'c'));
  REQUIRE(ts.RunUntil([&] { return ts.counters().staged_bytes == 50; }));
  h.Answer(1);
  REQUIRE(ts.RunUntil([&] { return ts.counters().staged_bytes == 0; }));
  CHECK(ts.counters().staged_bytes_peak <= 1000);
}

}  // namespace
}  // namespace distkv::net
