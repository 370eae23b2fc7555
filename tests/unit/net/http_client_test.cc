// Tests of the outbound client (net/http_client.h) against TestPeer: a tiny
// scripted HTTP peer on the same libuv loop that hands every complete
// request it receives to the test, which answers with raw bytes (or not at
// all, or by closing). Every test runs its loop until all handles are
// closed and checks that the loop closes cleanly (no handle left behind).
#include "tests/unit/net/client_test_peer.h"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

namespace distkv::net {
using namespace testing;

TEST_CASE("SplitHostPort accepts host:port and [v6]:port and refuses the rest") {
  std::string host;
  int port = 0;
  CHECK(SplitHostPort("127.0.0.2:8080", &host, &port));
  CHECK(host == "127.0.0.2");
  CHECK(port == 8080);
  CHECK(SplitHostPort("[::1]:9000", &host, &port));
  CHECK(host == "::1");
  CHECK(port == 9000);
  CHECK(SplitHostPort("localhost:1", &host, &port));
  CHECK(host == "localhost");
  for (const char* bad :
       {"", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:80x",
        "::1:80", "[::1]80", "[::1]", "[127.0.0.1]:80", "h:-1"}) {
    CAPTURE(bad);
    CHECK_FALSE(SplitHostPort(bad, &host, &port));
  }
}

TEST_CASE("a request is serialized with Host and Content-Length, dropping caller framing headers") {
  OutboundRequest r;
  r.method = "PUT";
  r.target = "/kv/a%20b";
  r.headers = {{"X-Hop", "1"}, {"Content-Length", "99"}, {"Connection", "close"}};
  r.body = "hello";
  std::string out;
  AppendRequestHead(&out, r, HostHeader("::1", 80));
  CHECK(out == "PUT /kv/a%20b HTTP/1.1\r\nX-Hop: 1\r\nHost: [::1]:80\r\nContent-Length: 5\r\n\r\n");

  std::string get;
  AppendRequestHead(&get, Get("/health"), "h:1");
  CHECK(get == "GET /health HTTP/1.1\r\nHost: h:1\r\n\r\n");
}

TEST_CASE("the pool reuses one keep-alive connection for sequential requests") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn& c, const std::string& req) { c.Write(Ok(TargetOf(req))); };
  HttpClient client(&l.loop, ClientOptions{});
  int done = 0;
  std::function<void()> next = [&] {
    std::string target = "/kv/" + std::to_string(done);
    client.Request(peer.address(), Get(target), [&, target](ClientResult& r) {
      CHECK(r.error == ClientError::kNone);
      CHECK(r.response.status == 200);
      CHECK(r.response.body == target);
      if (++done < 100) {
        next();
      } else {
        client.Close();
        peer.Close();
      }
    });
  };
  next();
  l.Run();
  CHECK(done == 100);
  CHECK(client.counters().requests == 100);
  CHECK(client.counters().connections_opened == 1);
  CHECK(client.counters().errors == 0);
  CHECK(peer.accepted == 1);
}

TEST_CASE("max_idle_per_peer = 0 closes each connection once it is idle") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn& c, const std::string&) { c.Write(Ok("x")); };
  ClientOptions options;
  options.max_idle_per_peer = 0;
  HttpClient client(&l.loop, options);
  int done = 0;
  std::function<void()> next = [&] {
    client.Request(peer.address(), Get("/"), [&](ClientResult& r) {
      CHECK(r.error == ClientError::kNone);
      if (++done < 5) {
        next();
      } else {
        client.Close();
        peer.Close();
      }
    });
  };
  next();
  l.Run();
  CHECK(done == 5);
  CHECK(client.counters().connections_opened == 5);
}

TEST_CASE("pipelined requests complete in order, answered in one burst") {
  Loop l;
  TestPeer peer(&l.loop);
  std::string burst;
  int seen = 0;
  peer.on_request = [&](PeerConn& c, const std::string& req) {
    burst += Ok(TargetOf(req));
    if (++seen == 20) c.Write(burst);  // every answer at once, after every request
  };
  auto conn = std::make_unique<ClientConnection>(&l.loop, "127.0.0.1", peer.port, ClientOptions{});
  std::vector<std::string> order;
  for (int i = 0; i < 20; ++i) {
    std::string target = "/p/" + std::to_string(i);
    conn->Submit(Get(target), [&, target](ClientResult& r) {
      REQUIRE(r.error == ClientError::kNone);
      CHECK(r.response.body == target);
      order.push_back(r.response.body);
      if (order.size() == 20) {
        conn->Close();
        peer.Close();
      }
    });
  }
  CHECK(conn->in_flight() == 20);
  l.Run();
  REQUIRE(order.size() == 20);
  for (int i = 0; i < 20; ++i) CHECK(order[i] == "/p/" + std::to_string(i));
  CHECK(peer.accepted == 1);
}

TEST_CASE("chunked, HEAD and close-delimited responses are framed correctly") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn& c, const std::string& req) {
    std::string target = TargetOf(req);
    if (target == "/chunked") {
      c.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
      c.Write("lo\r\n6\r\n world\r\n0\r\n\r\n");
    } else if (target == "/head") {
      c.Write("HTTP/1.1 200 OK\r\nContent-Length: 12345\r\nETag: \"7\"\r\n\r\n");
    } else if (target == "/until-close") {
      c.Write("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of ");
      c.Write("this");
      c.Close();
    }
  };
  ClientConnection conn(&l.loop, "127.0.0.1", peer.port, ClientOptions{});
  std::vector<std::string> got;
  conn.Submit(Get("/chunked"), [&](ClientResult& r) {
    REQUIRE(r.error == ClientError::kNone);
    got.push_back(r.response.body);
  });
  OutboundRequest head = Get("/head");
  head.method = "HEAD";
  conn.Submit(std::move(head), [&](ClientResult& r) {
    REQUIRE(r.error == ClientError::kNone);
    REQUIRE(r.response.header("ETag") != nullptr);
    CHECK(*r.response.header("ETag") == "\"7\"");
    got.push_back(r.response.body);
  });
  conn.Submit(Get("/until-close"), [&](ClientResult& r) {
    REQUIRE(r.error == ClientError::kNone);
    got.push_back(r.response.body);
    peer.Close();
  });
  l.Run();
  REQUIRE(got.size() == 3);
  CHECK(got[0] == "hello world");
  CHECK(got[1] == "");
  CHECK(got[2] == "all of this");
  CHECK_FALSE(conn.usable());
}

TEST_CASE("a refused connection fails with kConnectFailed") {
  Loop l;
  int port = FreePort();
  HttpClient client(&l.loop, ClientOptions{});
  ClientError error = ClientError::kNone;
  int calls = 0;
  client.Request("127.0.0.1:" + std::to_string(port), Get("/"), [&](ClientResult& r) {
    error = r.error;
    ++calls;
  });
  l.Run();
  CHECK(calls == 1);
  CHECK(error == ClientError::kConnectFailed);
  CHECK(client.counters().errors == 1);
}

TEST_CASE("a malformed peer address fails with kConnectFailed") {
  Loop l;
  HttpClient client(&l.loop, ClientOptions{});
  ClientError error = ClientError::kNone;
  client.Request("no-port", Get("/"), [&](ClientResult& r) { error = r.error; });
  l.Run();
  CHECK(error == ClientError::kConnectFailed);
}

TEST_CASE("a peer that accepts but never answers fails the request with kTimeout") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn&, const std::string&) {};
  ClientOptions options;
  options.request_timeout_ms = 100;
  HttpClient client(&l.loop, options);
  ClientResult got;
  client.Request(peer.address(), Get("/"), [&](ClientResult& r) {
    got = r;
    peer.Close();
  });
  l.Run();
  CHECK(got.error == ClientError::kTimeout);
  CHECK(peer.requests == 1);
  CHECK(client.counters().timeouts == 1);
}

TEST_CASE("a per-request timeout overrides the client's default") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn&, const std::string&) {};
  ClientOptions options;
  options.request_timeout_ms = 60'000;
  ClientConnection conn(&l.loop, "127.0.0.1", peer.port, options);
  ClientError error = ClientError::kNone;
  OutboundRequest r = Get("/");
  r.timeout_ms = 50;
  conn.Submit(std::move(r), [&](ClientResult& res) {
    error = res.error;
    peer.Close();
  });
  l.Run();
  CHECK(error == ClientError::kTimeout);
}

TEST_CASE("a peer that closes mid-response fails the request with kConnectionLost") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn& c, const std::string&) {
    c.Write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part");
    c.Close();
  };
  HttpClient client(&l.loop, ClientOptions{});
  std::vector<ClientError> errors;
  for (int i = 0; i < 2; ++i) {
    client.Request(peer.address(), Get("/"), [&](ClientResult& r) {
      errors.push_back(r.error);
      if (errors.size() == 2) peer.Close();
    });
  }
  l.Run();
  REQUIRE(errors.size() == 2);
  CHECK(errors[0] == ClientError::kConnectionLost);
  CHECK(errors[1] == ClientError::kConnectionLost);
}

TEST_CASE("bytes that are not HTTP fail the request with kProtocol") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn& c, const std::string&) { c.Write("SSH-2.0-OpenSSH\r\n\r\n"); };
  ClientConnection conn(&l.loop, "127.0.0.1", peer.port, ClientOptions{});
  ClientError error = ClientError::kNone;
  conn.Submit(Get("/"), [&](ClientResult& r) {
    error = r.error;
    peer.Close();
  });
  l.Run();
  CHECK(error == ClientError::kProtocol);
}

TEST_CASE("a streaming response delivers its head, then its body piece by piece") {
  Loop l;
  TestPeer peer(&l.loop);
  PeerConn* stream = nullptr;
  peer.on_request = [&](PeerConn& c, const std::string&) {
    stream = &c;
    c.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Stream: yes\r\n\r\n3\r\none\r\n");
  };
  ClientOptions options;
  options.request_timeout_ms = 60'000;
  ClientConnection conn(&l.loop, "127.0.0.1", peer.port, options);
  int heads = 0;
  std::vector<std::string> pieces;
  ClientResult final_result;
  int finals = 0;
  OutboundRequest r = Get("/stream");
  r.on_head = [&](const HttpResponse& head) {
    ++heads;
    CHECK(head.status == 200);
    REQUIRE(head.header("X-Stream") != nullptr);
  };
  r.on_body = [&](std::string_view chunk) {
    pieces.emplace_back(chunk);
    // The peer sends the next piece only once this one has been delivered.
    if (pieces.size() == 1) stream->Write("3\r\ntwo\r\n");
    if (pieces.size() == 2) stream->Write("5\r\nthree\r\n0\r\n\r\n");
    return true;
  };
  conn.Submit(std::move(r), [&](ClientResult& res) {
    final_result = res;
    ++finals;
    peer.Close();
  });
  l.Run();
  CHECK(heads == 1);
  CHECK(finals == 1);
  CHECK(final_result.error == ClientError::kNone);
  CHECK(final_result.response.body.empty());
  REQUIRE(pieces.size() == 3);
  CHECK(pieces[0] == "one");
  CHECK(pieces[1] == "two");
  CHECK(pieces[2] == "three");
}

TEST_CASE(
    "a stream whose idle deadline passes while the peer's bytes wait unread reads them, and does "
    "not time out") {
  Loop l;
  TestPeer peer(&l.loop);
  PeerConn* stream = nullptr;
  peer.on_request = [&](PeerConn& c, const std::string&) {
    stream = &c;
    c.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n");
  };
  ClientOptions options;
  options.request_timeout_ms = 100;  // the stream's idle timeout
  ClientConnection conn(&l.loop, "127.0.0.1", peer.port, options);
  std::vector<std::string> pieces;
  ClientResult final_result;
  OutboundRequest r = Get("/stream");
  r.on_body = [&](std::string_view chunk) {
    pieces.emplace_back(chunk);
    if (pieces.size() == 1) {
      // The next piece reaches the socket at once (loopback), and then the
      // loop stalls past the idle timeout, as a paused process does: when
      // it runs again its timer comes due before it polls for the piece.
      stream->Write("3\r\ntwo\r\n");
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    if (pieces.size() == 2) stream->Write("0\r\n\r\n");
    return true;
  };
  conn.Submit(std::move(r), [&](ClientResult& res) {
    final_result = res;
    peer.Close();
  });
  l.Run();
  CHECK(final_result.error == ClientError::kNone);
  REQUIRE(pieces.size() == 2);
  CHECK(pieces[1] == "two");
}

TEST_CASE("on_body returning false aborts the stream with kShutdown") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [&](PeerConn& c, const std::string&) {
    c.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\none\r\n");
  };
  ClientConnection conn(&l.loop, "127.0.0.1", peer.port, ClientOptions{});
  OutboundRequest r = Get("/stream");
  int bodies = 0;
  r.on_body = [&](std::string_view) {
    ++bodies;
    return false;
  };
  ClientError error = ClientError::kNone;
  conn.Submit(std::move(r), [&](ClientResult& res) {
    error = res.error;
    peer.Close();
  });
  l.Run();
  CHECK(bodies == 1);
  CHECK(error == ClientError::kShutdown);
  CHECK_FALSE(conn.usable());
}

TEST_CASE("destroying a connection from inside its callback fails the rest with kShutdown") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn& c, const std::string& req) { c.Write(Ok(TargetOf(req))); };
  auto conn = std::make_unique<ClientConnection>(&l.loop, "127.0.0.1", peer.port, ClientOptions{});
  std::vector<ClientError> errors;
  int closes = 0;
  conn->OnClose([&] { ++closes; });
  for (int i = 0; i < 3; ++i) {
    conn->Submit(Get("/" + std::to_string(i)), [&](ClientResult& r) {
      errors.push_back(r.error);
      if (errors.size() == 1) conn.reset();
      if (errors.size() == 3) peer.Close();
    });
  }
  l.Run();
  REQUIRE(errors.size() == 3);
  CHECK(errors[0] == ClientError::kNone);
  CHECK(errors[1] == ClientError::kShutdown);
  CHECK(errors[2] == ClientError::kShutdown);
  CHECK(closes == 1);
}

TEST_CASE("a GET on a reused connection the peer has closed is resent on a new one") {
  Loop l;
  TestPeer peer(&l.loop);
  // Each connection answers one request, then closes as if idle too long.
  peer.on_request = [](PeerConn& c, const std::string& req) {
    c.Write(Ok(TargetOf(req)));
    c.Close();
  };
  HttpClient client(&l.loop, ClientOptions{});
  std::vector<ClientResult> results;
  client.Request(peer.address(), Get("/first"), [&](ClientResult& r) {
    results.push_back(r);
    // Sent at once on the pooled connection, which the peer is closing.
    client.Request(peer.address(), Get("/second"), [&](ClientResult& r2) {
      results.push_back(r2);
      client.Close();
      peer.Close();
    });
  });
  l.Run();
  REQUIRE(results.size() == 2);
  CHECK(results[0].error == ClientError::kNone);
  CHECK(results[1].error == ClientError::kNone);
  CHECK(results[1].response.body == "/second");
  CHECK(client.counters().connections_opened == 2);
  CHECK(client.counters().resent == 1);
  CHECK(client.counters().errors == 0);
}

TEST_CASE("closing the client fails pending requests with kShutdown and refuses new ones") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn&, const std::string&) {};
  ClientOptions options;
  options.max_pipeline = 1;  // one connection per pending request
  HttpClient client(&l.loop, options);
  std::vector<ClientError> errors;
  for (int i = 0; i < 3; ++i) {
    client.Request(peer.address(), Get("/"), [&](ClientResult& r) { errors.push_back(r.error); });
  }
  // Once the peer has seen all three, close the client.
  peer.on_request = [&](PeerConn&, const std::string&) {
    if (peer.requests == 3) {
      client.Close();
      peer.Close();
    }
  };
  l.Run();
  client.Request(peer.address(), Get("/"), [&](ClientResult& r) { errors.push_back(r.error); });
  REQUIRE(errors.size() == 4);
  for (ClientError e : errors) CHECK(e == ClientError::kShutdown);
  CHECK(client.counters().connections_opened == 3);
}

}  // namespace distkv::net
