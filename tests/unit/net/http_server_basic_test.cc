// HttpServer behaviour on well-formed traffic: parsing across reads,
// pipelining order, bodies, HEAD, HTTP/1.0, Connection: close, late and
// out-of-order answers, streaming, extra headers and shutdown.
#include <doctest/doctest.h>

#include "tests/unit/net/http_server_test_harness.h"

namespace distkv::net {
namespace {

using test::EchoHandler;
using test::ParsedResponse;
using test::RawClient;
using test::TestServer;

// Several pipelined requests of every body framing, and what the echo
// handler answers to each.
const std::string kBatch =
    "GET /kv/a?x=1 HTTP/1.1\r\nHost: h\r\nX-Tag: one\r\n\r\n"
    "PUT /kv/b HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nX-Tag: two\r\n\r\nhello"
    "POST /set?key=c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nX-Tag: three\r\n\r\n"
    "3\r\nabc\r\n4;ext=1\r\ndefg\r\n0\r\n\r\n"
    "DELETE /kv/d HTTP/1.1\r\nHost: h\r\nX-Tag: four\r\n\r\n";
const std::vector<std::string> kBatchBodies = {"GET /kv/a?x=1 ", "PUT /kv/b hello",
                                               "POST /set?key=c abcdefg", "DELETE /kv/d "};
const std::vector<std::string> kBatchTags = {"one", "two", "three", "four"};

void CheckBatchAnswers(const std::vector<ParsedResponse>& responses) {
  REQUIRE(responses.size() == kBatchBodies.size());
  for (size_t i = 0; i < responses.size(); ++i) {
    CHECK(responses[i].status == 200);
    CHECK(responses[i].body == kBatchBodies[i]);
    REQUIRE(responses[i].header("X-Tag") != nullptr);
    CHECK(*responses[i].header("X-Tag") == kBatchTags[i]);
    REQUIRE(responses[i].header("Content-Length") != nullptr);
    CHECK(responses[i].header("Connection") == nullptr);
  }
}

TEST_CASE("server: a request gets its answer and the connection stays open") {
  HttpRequest seen;
  TestServer ts(ServerLimits{}, [&seen](HttpRequest& request, Responder responder) {
    seen = request;
    HttpResponse response;
    response.SetHeader("Content-Type", "text/plain");
    response.body = "value";
    responder.Send(std::move(response));
  });
  RawClient c(&ts);
  REQUIRE(c.Send("GET /kv/some%20key?a=b&c HTTP/1.1\r\nHost: x\r\nX-Multi:  v1 \r\n\r\n"));
  auto responses = c.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].status == 200);
  CHECK(responses[0].body == "value");
  CHECK(*responses[0].header("Content-Length") == "5");
  CHECK(*responses[0].header("Content-Type") == "text/plain");
  CHECK_FALSE(c.eof());

  CHECK(seen.method == "GET");
  CHECK(seen.target == "/kv/some%20key?a=b&c");
  CHECK(seen.path == "/kv/some%20key");
  CHECK(seen.query == "a=b&c");
  CHECK(seen.http_major == 1);
  CHECK(seen.http_minor == 1);
  CHECK(seen.keep_alive);
  REQUIRE(seen.header("x-multi") != nullptr);
  CHECK(*seen.header("x-multi") == "v1");
  CHECK(seen.peer.rfind("127.0.0.1:", 0) == 0);

  REQUIRE(c.Send("GET /second HTTP/1.1\r\nHost: x\r\n\r\n"));
  responses = c.Await(2);
  REQUIRE(responses.size() == 2);
  CHECK(seen.target == "/second");
  CHECK(ts.counters().requests == 2);
  CHECK(ts.counters().connections_accepted == 1);
  CHECK(ts.counters().connections_current == 1);
}

TEST_CASE("server: a pipelined batch split at every byte is answered in order") {
  TestServer ts(ServerLimits{}, EchoHandler());
  for (size_t split = 1; split < kBatch.size(); ++split) {
    CAPTURE(split);
    RawClient c(&ts);
    REQUIRE(c.Send(std::string_view(kBatch).substr(0, split)));
    ts.Step();  // the first part is read and parsed on its own
    ts.Step();
    REQUIRE(c.Send(std::string_view(kBatch).substr(split)));
    CheckBatchAnswers(c.Await(kBatchBodies.size()));
    CHECK_FALSE(c.eof());
  }
  CHECK(ts.counters().parse_errors == 0);
}

TEST_CASE("server: a pipelined batch sent one byte at a time is answered in order") {
  TestServer ts(ServerLimits{}, EchoHandler());
  RawClient c(&ts);
  for (char ch : kBatch) {
    REQUIRE(c.Send(std::string_view(&ch, 1)));
    ts.Step();
  }
  CheckBatchAnswers(c.Await(kBatchBodies.size()));
}

TEST_CASE("server: fifty pipelined batches in one write are all answered in order") {
  TestServer ts(ServerLimits{}, EchoHandler());
  RawClient c(&ts);
  std::string many;
  for (int i = 0; i < 50; ++i) many += kBatch;
  REQUIRE(c.Send(many));
  auto responses = c.Await(50 * kBatchBodies.size());
  REQUIRE(responses.size() == 50 * kBatchBodies.size());
  for (size_t i = 0; i < responses.size(); ++i) {
    CHECK(responses[i].body == kBatchBodies[i % kBatchBodies.size()]);
  }
}

TEST_CASE("server: answers given out of order leave in request order") {
  std::vector<Responder> held;
  TestServer ts(ServerLimits{}, [&held](HttpRequest& request, Responder responder) {
    HttpResponse response;
    response.body = request.path;
    if (request.path == "/first") {
      held.push_back(responder);  // answered after the second
      return;
    }
    responder.Send(std::move(response));
    for (Responder& r : held) {
      HttpResponse first;
      first.body = "/first";
      r.Send(std::move(first));
    }
    held.clear();
  });
  RawClient c(&ts);
  REQUIRE(c.Send("GET /first HTTP/1.1\r\nHost: x\r\n\r\nGET /second HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto responses = c.Await(2);
  REQUIRE(responses.size() == 2);
  CHECK(responses[0].body == "/first");
  CHECK(responses[1].body == "/second");
}

TEST_CASE("server: answers given later, from a timer, are written") {
  std::vector<Responder> held;
  TestServer ts(ServerLimits{}, [&held](HttpRequest&, Responder responder) {
    held.push_back(std::move(responder));
  });
  RawClient c(&ts);
  REQUIRE(
      c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(ts.RunUntil([&held] { return held.size() == 3; }));
  // Answer from a timer callback in reverse order: the server must still
  // flush them (the loop may otherwise sit in poll) and keep their order.
  uv_timer_t timer;
  uv_timer_init(ts.loop(), &timer);
  timer.data = &held;
  uv_timer_start(
      &timer,
      [](uv_timer_t* t) {
        auto* responders = static_cast<std::vector<Responder>*>(t->data);
        for (size_t i = responders->size(); i-- > 0;) {
          HttpResponse response;
          response.body = std::to_string(i);
          (*responders)[i].Send(std::move(response));
        }
      },
      1, 0);
  auto responses = c.Await(3);
  REQUIRE(responses.size() == 3);
  CHECK(responses[0].body == "0");
  CHECK(responses[1].body == "1");
  CHECK(responses[2].body == "2");
  bool closed = false;
  timer.data = &closed;
  uv_close(reinterpret_cast<uv_handle_t*>(&timer),
           [](uv_handle_t* h) { *static_cast<bool*>(h->data) = true; });
  REQUIRE(ts.RunUntil([&closed] { return closed; }));
}

TEST_CASE("server: a handler answering after the client left does no harm") {
  Responder held;
  TestServer ts(ServerLimits{}, [&](HttpRequest&, Responder responder) { held = responder; });
  {
    RawClient c(&ts);
    REQUIRE(c.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
    REQUIRE(ts.RunUntil([&held] { return held.alive(); }));
  }
  // The server sees only the end of the client's sending side: the client
  // may still read (a half-close), so its answer is still awaited.
  ts.RunFor(50);
  CHECK(held.alive());
  CHECK(ts.counters().connections_current == 1);
  HttpResponse response;
  response.body = std::string(100000, 'x');
  held.Send(std::move(response));  // written towards a closed socket, then the end
  REQUIRE(ts.RunUntil([&ts] { return ts.counters().connections_current == 0; }));
  CHECK_FALSE(held.alive());
  CHECK(held.queued_bytes() == 0);
  held.Send(HttpResponse{});  // ignored
  held.BeginStream(HttpResponse{});
  held.WriteChunk("data");
  held.EndStream();
  bool late_on_close = false;
  held.OnClose([&late_on_close] { late_on_close = true; });
  ts.RunFor(20);
  CHECK_FALSE(late_on_close);
}

TEST_CASE("server: a Responder answers once; a second Send is ignored") {
  TestServer ts(ServerLimits{}, [](HttpRequest&, Responder responder) {
    HttpResponse a;
    a.body = "first";
    HttpResponse b;
    b.body = "second";
    responder.Send(std::move(a));
    responder.Send(std::move(b));
    responder.EndStream();
  });
  RawClient c(&ts);
  REQUIRE(c.Send("GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto responses = c.Await(2);
  REQUIRE(responses.size() == 2);
  CHECK(responses[0].body == "first");
  CHECK(responses[1].body == "first");
  ts.RunFor(10);
  c.Poll();
  CHECK(c.Responses().size() == 2);
}

TEST_CASE("server: chunked request bodies are de-chunked, trailers tolerated") {
  std::string body_seen;
  TestServer ts(ServerLimits{}, [&body_seen](HttpRequest& request, Responder responder) {
    body_seen = request.body;
    responder.Send(HttpResponse{});
  });
  RawClient c(&ts);
  REQUIRE(
      c.Send("PUT /kv/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
             "5\r\nhello\r\n1\r\n \r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"));
  auto responses = c.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].status == 200);
  CHECK(*responses[0].header("Content-Length") == "0");
  CHECK(body_seen == "hello 0123456789");
}

TEST_CASE("server: Expect: 100-continue gets an interim 100 before the body is sent") {
  TestServer ts(ServerLimits{}, EchoHandler());
  RawClient c(&ts);
  REQUIRE(
      c.Send("PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n"
             "Expect: 100-continue\r\n\r\n"));
  auto responses = c.Await(1);
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].status == 100);
  CHECK(c.received() == "HTTP/1.1 100 Continue\r\n\r\n");
  REQUIRE(c.Send("data"));
  responses = c.Await(2);
  REQUIRE(responses.size() == 2);
  CHECK(responses[1].status == 200);
  CHECK(responses[1].body == "PUT /kv/k data");
}

TEST_CASE("server: Expect: 100-continue waits its turn behind earlier answers") {
  Responder held;
  TestServer ts(ServerLimits{}, [&held](HttpRequest& request, Responder responder) {
    if (request.path == "/slow") {
      held = responder;
      return;
    }
    EchoHandler()(request, responder);
  });
  RawClient c(&ts);
  REQUIRE(
      c.Send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"
             "PUT /kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
             "Expect: 100-continue\r\n\r\n"));
  REQUIRE(ts.RunUntil([&held] { return held.alive(); }));
  ts.RunFor(10);
  c.Poll();
  CHECK(c.received().empty());  // the 100 may not overtake the first answer
  HttpResponse slow;
  slow.body = "slow";
  held.Send(std::move(slow));
  auto responses = c.Await(2);
  REQUIRE(responses.size() == 2);
  CHECK(responses[0].body == "slow");
  CHECK(responses[1].status == 100);
  REQUIRE(c.Send("ok"));
  responses = c.Await(3);
  REQUIRE(responses.size() == 3);
  CHECK(responses[2].body == "PUT /kv/k ok");
}

TEST_CASE("server: HEAD answers carry the GET body's length and no body") {
  TestServer ts(ServerLimits{}, [](HttpRequest& request, Responder responder) {
    HttpResponse response;
    if (request.path == "/declared") {
      response.SetHeader("Content-Length", "12345");  // the handler skipped reading the value
    } else {
      response.body = "0123456789";
    }
    responder.Send(std::move(response));
  });
  RawClient c(&ts);
  REQUIRE(
      c.Send("HEAD /x HTTP/1.1\r\nHost: x\r\n\r\nHEAD /declared HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto responses = c.Await(3, {true, true, false});
  REQUIRE(responses.size() == 3);
  CHECK(*responses[0].header("Content-Length") == "10");
  CHECK(responses[0].body.empty());
  CHECK(*responses[1].header("Content-Length") == "12345");
  CHECK(responses[2].body == "0123456789");
  // Nothing but the three heads and the GET body was sent.
  ParsedResponse dummy;
  size_t used = 0;
  std::string_view rest = c.received();
  for (bool head : {true, true, false}) {
    used = test::ParseResponse(rest, head, false, &dummy);
    REQUIRE(used > 0);
    rest.remove_prefix(used);
  }
  CHECK(rest.empty());
}

TEST_CASE("server: HTTP/1.0 closes unless keep-alive is asked for") {
  TestServer ts(ServerLimits{}, EchoHandler());
  SUBCASE("plain HTTP/1.0") {
    RawClient c(&ts);
    REQUIRE(c.Send("GET /a HTTP/1.0\r\n\r\n"));
    REQUIRE(c.AwaitEof());
    auto responses = c.Responses();
    REQUIRE(responses.size() == 1);
    CHECK(responses[0].body == "GET /a ");
    CHECK(*responses[0].header("Connection") == "close");
  }
  SUBCASE("HTTP/1.0 with keep-alive") {
    RawClient c(&ts);
    REQUIRE(c.Send("GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    auto responses = c.Await(1);
    REQUIRE(responses.size() == 1);
    CHECK(*responses[0].header("Connection") == "keep-alive");
    REQUIRE(c.Send("GET /b HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"));
    responses = c.Await(2);
    REQUIRE(responses.size() == 2);
    CHECK(responses[1].body == "GET /b ");
    CHECK_FALSE(c.eof());
  }
}

TEST_CASE("server: Connection: close is answered, then the connection closes") {
  TestServer ts(ServerLimits{}, EchoHandler());
  RawClient c(&ts);
  // The request after the closing one is never read.
  REQUIRE(
      c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nConnection: close\r\n\r\n"
             "GET /c HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(c.AwaitEof());
  auto responses = c.Responses();
  REQUIRE(responses.size() == 2);
  CHECK(responses[0].header("Connection") == nullptr);
  CHECK(responses[1].body == "GET /b ");
  CHECK(*responses[1].header("Connection") == "close");
  CHECK(ts.counters().requests == 2);
  c.Close();
  REQUIRE(ts.RunUntil([&ts] { return ts.counters().connections_current == 0; }));
}

TEST_CASE("server: a handler's Connection: close ends the connection after its answer") {
  TestServer ts(ServerLimits{}, [](HttpRequest&, Responder responder) {
    HttpResponse response;
    response.SetHeader("Connection", "close");
    response.body = "bye";
    responder.Send(std::move(response));
  });
  RawClient c(&ts);
  REQUIRE(c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(c.AwaitEof());
  auto responses = c.Responses();
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].body == "bye");
  CHECK(*responses[0].header("Connection") == "close");
}

TEST_CASE("server: streamed responses are chunked and keep their place in the order") {
  Responder stream;
  TestServer ts(ServerLimits{}, [&stream](HttpRequest& request, Responder responder) {
    if (request.path == "/stream") {
      HttpResponse head;
      head.SetHeader("Content-Type", "application/octet-stream");
      responder.BeginStream(std::move(head));
      responder.WriteChunk("first;");
      stream = responder;
      return;
    }
    EchoHandler()(request, responder);
  });
  RawClient c(&ts);
  REQUIRE(c.Send("GET /stream HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(ts.RunUntil([&] {
    c.Poll();
    return c.received().find("first;") != std::string::npos;
  }));
  CHECK(c.received().find("Transfer-Encoding: chunked\r\n") != std::string::npos);
  CHECK(c.received().find("/after") == std::string::npos);
  CHECK(stream.alive());
  stream.WriteChunk("");  // an empty chunk would end the stream: ignored
  stream.WriteChunk(std::string(5000, 'z'));
  stream.EndStream();
  auto responses = c.Await(2);
  REQUIRE(responses.size() == 2);
  CHECK(responses[0].chunked);
  CHECK(responses[0].body == "first;" + std::string(5000, 'z'));
  CHECK(responses[1].body == "GET /after ");
  CHECK_FALSE(stream.alive());
}

TEST_CASE("server: AddResponseHeader applies to answers and to the server's errors") {
  TestServer ts(ServerLimits{}, [](HttpRequest& request, Responder responder) {
    HttpResponse response;
    if (const std::string* shard = request.header("X-Distkv-Shard")) {
      response.SetHeader("X-Distkv-Shard", *shard);  // as a forwarded answer does
    }
    responder.Send(std::move(response));
  });
  ts.server().AddResponseHeader("X-Distkv-Shard", "Delhi");
  RawClient ok(&ts);
  REQUIRE(ok.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto responses = ok.Await(1);
  REQUIRE(responses.size() == 1);
  REQUIRE(responses[0].header("X-Distkv-Shard") != nullptr);
  CHECK(*responses[0].header("X-Distkv-Shard") == "Delhi");
  REQUIRE(ok.Send("GET /own HTTP/1.1\r\nHost: x\r\nX-Distkv-Shard: Mumbai\r\n\r\n"));
  responses = ok.Await(2);
  REQUIRE(responses.size() == 2);
  size_t shard_headers = 0;
  for (const Header& h : responses[1].headers) shard_headers += h.name == "X-Distkv-Shard";
  CHECK(shard_headers == 1);  // the handler's own value replaces the server's
  CHECK(*responses[1].header("X-Distkv-Shard") == "Mumbai");
  RawClient bad(&ts);
  REQUIRE(bad.Send("NOT HTTP AT ALL\r\n\r\n"));
  REQUIRE(bad.AwaitEof());
  responses = bad.Responses();
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].status == 400);
  REQUIRE(responses[0].header("X-Distkv-Shard") != nullptr);
  CHECK(*responses[0].header("X-Distkv-Shard") == "Delhi");
}

TEST_CASE("server: header lines given as text join the server's, or replace one of them") {
  TestServer ts(ServerLimits{}, [](HttpRequest& request, Responder responder) {
    HttpResponse response;
    response.header_lines = "ETag: \"7\"\r\n";
    if (request.path == "/relayed") response.header_lines += "X-Distkv-Shard: Mumbai\r\n";
    response.body = "v";
    responder.Send(std::move(response));
  });
  ts.server().AddResponseHeader("X-Distkv-Shard", "Delhi");
  ts.server().AddResponseHeader("X-Other", "o");
  RawClient c(&ts);
  REQUIRE(c.Send("GET /own HTTP/1.1\r\nHost: x\r\n\r\nGET /relayed HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto responses = c.Await(2);
  REQUIRE(responses.size() == 2);
  for (const auto& r : responses) {
    REQUIRE(r.header("ETag") != nullptr);
    CHECK(*r.header("ETag") == "\"7\"");
    REQUIRE(r.header("X-Other") != nullptr);
    CHECK(r.body == "v");
    size_t shard_headers = 0;
    for (const Header& h : r.headers) shard_headers += h.name == "X-Distkv-Shard";
    CHECK(shard_headers == 1);
  }
  CHECK(*responses[0].header("X-Distkv-Shard") == "Delhi");
  CHECK(*responses[1].header("X-Distkv-Shard") == "Mumbai");  // the relayed line wins
}

TEST_CASE("server: Shutdown answers in-flight requests, closes everything, then calls back") {
  Responder held;
  TestServer ts(ServerLimits{}, [&held](HttpRequest&, Responder responder) { held = responder; });
  RawClient busy(&ts);
  RawClient idle(&ts);
  RawClient partial(&ts);
  REQUIRE(busy.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(partial.Send("GET /partial HTTP/1.1\r\nHo"));
  REQUIRE(ts.RunUntil([&] { return held.alive() && ts.counters().connections_current == 3; }));

  ts.BeginShutdown();
  REQUIRE(idle.AwaitEof());
  REQUIRE(partial.AwaitEof());
  CHECK(partial.received().empty());
  CHECK_FALSE(ts.closed());  // the busy connection still owes an answer
  CHECK(held.alive());

  HttpResponse response;
  response.body = "last";
  held.Send(std::move(response));
  REQUIRE(busy.AwaitEof());
  auto responses = busy.Responses();
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].body == "last");
  CHECK(*responses[0].header("Connection") == "close");
  REQUIRE(ts.RunUntil([&ts] { return ts.closed(); }));
  CHECK(ts.counters().connections_current == 0);
}

}  // namespace
}  // namespace distkv::net

namespace distkv::net {
namespace {

using test::EchoHandler;
using test::RawClient;
using test::TestServer;

TEST_CASE("server: bodies of every size keep their bytes and order in one pipeline") {
  const std::vector<size_t> sizes = {0, 10, 1024, 1025, 3000, 5000, 100'000, 2'000'000, 7};
  TestServer ts(ServerLimits{}, [&sizes](HttpRequest& request, Responder responder) {
    const size_t i = std::stoul(request.path.substr(1));
    HttpResponse response;
    response.body.resize(sizes[i]);
    for (size_t j = 0; j < sizes[i]; ++j) response.body[j] = static_cast<char>('a' + (i + j) % 26);
    responder.Send(std::move(response));
  });
  RawClient c(&ts);
  std::string batch;
  for (size_t i = 0; i < sizes.size(); ++i) {
    batch += "GET /" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  REQUIRE(c.Send(batch));
  auto responses = c.Await(sizes.size());
  REQUIRE(responses.size() == sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    CAPTURE(i);
    REQUIRE(responses[i].body.size() == sizes[i]);
    bool same = true;
    for (size_t j = 0; j < sizes[i]; ++j) {
      same = same && responses[i].body[j] == static_cast<char>('a' + (i + j) % 26);
    }
    CHECK(same);
  }
}

TEST_CASE("server: 204 and 304 answers carry no body and no length") {
  TestServer ts(ServerLimits{}, [](HttpRequest& request, Responder responder) {
    HttpResponse response;
    response.status = request.path == "/304" ? 304 : 204;
    response.body = "dropped";
    responder.Send(std::move(response));
  });
  RawClient c(&ts);
  REQUIRE(
      c.Send("DELETE /204 HTTP/1.1\r\nHost: x\r\n\r\nGET /304 HTTP/1.1\r\nHost: x\r\n\r\n"
             "GET /204 HTTP/1.1\r\nHost: x\r\n\r\n"));
  auto responses = c.Await(3);
  REQUIRE(responses.size() == 3);
  CHECK(responses[0].status == 204);
  CHECK(responses[1].status == 304);
  CHECK(responses[2].status == 204);
  for (const auto& r : responses) CHECK(r.header("Content-Length") == nullptr);
  CHECK(c.received().find("dropped") == std::string::npos);
}

TEST_CASE("server: a stream to an HTTP/1.0 client runs until the connection closes") {
  TestServer ts(ServerLimits{}, [](HttpRequest&, Responder responder) {
    responder.BeginStream(HttpResponse{});
    responder.WriteChunk("part1 ");
    responder.WriteChunk("part2");
    responder.EndStream();
  });
  RawClient c(&ts);
  REQUIRE(c.Send("GET /s HTTP/1.0\r\n\r\n"));
  REQUIRE(c.AwaitEof());
  auto responses = c.Responses();
  REQUIRE(responses.size() == 1);
  CHECK_FALSE(responses[0].chunked);
  CHECK(responses[0].header("Transfer-Encoding") == nullptr);
  CHECK(responses[0].body == "part1 part2");
}

TEST_CASE("server: a stream's OnClose runs when its client goes away") {
  Responder stream;
  int closes = 0;
  TestServer ts(ServerLimits{}, [&](HttpRequest&, Responder responder) {
    responder.BeginStream(HttpResponse{});
    responder.OnClose([&closes] { ++closes; });
    stream = responder;
  });
  auto c = std::make_unique<RawClient>(&ts);
  REQUIRE(c->Send("GET /follow HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(ts.RunUntil([&stream] { return stream.alive(); }));
  stream.WriteChunk("record");
  REQUIRE(ts.RunUntil([&] {
    c->Poll();
    return c->received().find("record") != std::string::npos;
  }));
  c.reset();
  REQUIRE(ts.RunUntil([&stream] { return !stream.alive(); }));
  CHECK(closes == 1);
  stream.WriteChunk("ignored");
  stream.EndStream();
  CHECK(closes == 1);
}

TEST_CASE("server: an OnClose callback may shut the server down in the middle of a flush") {
  std::vector<Responder> held;
  TestServer* server = nullptr;
  TestServer ts(ServerLimits{}, [&](HttpRequest&, Responder responder) {
    if (held.size() == 1) responder.OnClose([&server] { server->BeginShutdown(); });
    held.push_back(std::move(responder));
  });
  server = &ts;
  RawClient c(&ts);
  REQUIRE(c.Send("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(ts.RunUntil([&held] { return held.size() == 2; }));
  HttpResponse response;
  response.SetHeader("Connection", "close");  // drops /b, whose OnClose shuts down
  response.body = "a";
  held[0].Send(std::move(response));
  REQUIRE(c.AwaitEof());
  auto responses = c.Responses();
  REQUIRE(responses.size() == 1);
  CHECK(responses[0].body == "a");
  REQUIRE(ts.RunUntil([&ts] { return ts.closed(); }));
  CHECK_FALSE(held[1].alive());
}

TEST_CASE("server: destroying a server without Shutdown leaves nothing behind") {
  uv_loop_t loop;
  uv_loop_init(&loop);
  Responder held;
  bool on_close = false;
  auto server =
      std::make_unique<HttpServer>(&loop, ServerLimits{}, [&](HttpRequest&, Responder responder) {
        held = responder;
        held.OnClose([&on_close] { on_close = true; });
      });
  REQUIRE(server->Listen("127.0.0.1", 0) == 0);
  const int port = server->port();
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  const std::string request = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
  REQUIRE(send(fd, request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  for (int i = 0; i < 1000 && !held.alive(); ++i) uv_run(&loop, UV_RUN_ONCE);
  REQUIRE(held.alive());

  server.reset();
  CHECK(on_close);
  CHECK_FALSE(held.alive());
  held.Send(HttpResponse{});      // ignored
  uv_run(&loop, UV_RUN_DEFAULT);  // close callbacks free everything
  CHECK(uv_loop_close(&loop) == 0);
  close(fd);
}

}  // namespace
}  // namespace distkv::net
