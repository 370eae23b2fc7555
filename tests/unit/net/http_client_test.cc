// Tests of the outbound client (net/http_client.h) against TestPeer: a tiny
// scripted HTTP peer on the same libuv loop that hands every complete
// request it receives to the test, which answers with raw bytes (or not at
// all, or by closing). Every test runs its loop until all handles are
// closed and checks that the loop closes cleanly (no handle left behind).
#include <doctest/doctest.h>
#include <uv.h>

#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "net/client_request.h"
#include "net/http_client.h"
#include "net/http_server.h"

namespace distkv::net {
namespace {

class TestPeer;

// One accepted connection of a TestPeer.
struct PeerConn {
  uv_tcp_t tcp;
  TestPeer* peer = nullptr;
  std::string in;
  bool closed = false;

  void Write(std::string bytes) {
    if (closed) return;
    struct Req {
      uv_write_t req;
      std::string bytes;
    };
    auto* w = new Req;
    w->bytes = std::move(bytes);
    uv_buf_t buf = uv_buf_init(w->bytes.data(), w->bytes.size());
    int r = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(&tcp), &buf, 1,
                     [](uv_write_t* req, int) { delete reinterpret_cast<Req*>(req); });
    if (r < 0) delete w;
  }
  void Close() {
    if (closed) return;
    closed = true;
    uv_close(reinterpret_cast<uv_handle_t*>(&tcp),
             [](uv_handle_t* h) { delete static_cast<PeerConn*>(h->data); });
  }
};

// Listens on 127.0.0.1 at a free port; splits the byte stream of each
// connection into requests (head plus Content-Length body) and passes each
// to on_request.
class TestPeer {
 public:
  std::function<void(PeerConn& conn, const std::string& request)> on_request;
  int accepted = 0;
  int requests = 0;
  int port = 0;

  explicit TestPeer(uv_loop_t* loop) {
    uv_tcp_init(loop, &listener_);
    listener_.data = this;
    struct sockaddr_in addr;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    REQUIRE(uv_tcp_bind(&listener_, reinterpret_cast<const sockaddr*>(&addr), 0) == 0);
    REQUIRE(uv_listen(reinterpret_cast<uv_stream_t*>(&listener_), 128, &TestPeer::OnConnection) ==
            0);
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    uv_tcp_getsockname(&listener_, reinterpret_cast<sockaddr*>(&bound), &len);
    port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port); }

  // Closes the listener and every connection still open.
  void Close() {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(&listener_))) {
      uv_close(reinterpret_cast<uv_handle_t*>(&listener_), nullptr);
    }
    for (PeerConn* c : conns_) c->Close();
    conns_.clear();
  }

  void Forget(PeerConn* c) { conns_.erase(c); }

 private:
  static void OnConnection(uv_stream_t* server, int status) {
    if (status < 0) return;
    auto* self = static_cast<TestPeer*>(server->data);
    auto* c = new PeerConn;
    c->peer = self;
    uv_tcp_init(server->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, reinterpret_cast<uv_stream_t*>(&c->tcp)) != 0) {
      c->Close();
      return;
    }
    ++self->accepted;
    self->conns_.insert(c);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(&c->tcp),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          static char storage[65536];
          *buf = uv_buf_init(storage, sizeof(storage));
        },
        &TestPeer::OnRead);
  }

  static void OnRead(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
    auto* c = static_cast<PeerConn*>(stream->data);
    TestPeer* self = c->peer;
    if (nread < 0) {
      self->Forget(c);
      c->Close();
      return;
    }
    c->in.append(buf->base, static_cast<size_t>(nread));
    for (;;) {
      size_t end = c->in.find("\r\n\r\n");
      if (end == std::string::npos) return;
      size_t body = 0;
      size_t cl = c->in.find("Content-Length: ");
      if (cl != std::string::npos && cl < end)
        body = std::strtoul(c->in.c_str() + cl + 16, nullptr, 10);
      size_t total = end + 4 + body;
      if (c->in.size() < total) return;
      std::string request = c->in.substr(0, total);
      c->in.erase(0, total);
      ++self->requests;
      self->on_request(*c, request);
      if (c->closed) {
        self->Forget(c);
        return;
      }
    }
  }

  uv_tcp_t listener_;
  std::set<PeerConn*> conns_;
};

// A loop per test, run to completion with a watchdog that turns a hang into
// a failure instead of a stuck test binary.
struct Loop {
  uv_loop_t loop;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
  }
  void Run() {
    uv_timer_t watchdog;
    uv_timer_init(&loop, &watchdog);
    watchdog.data = this;
    uv_timer_start(
        &watchdog,
        [](uv_timer_t* t) {
          FAIL_CHECK("test loop did not finish");
          uv_stop(t->loop);
        },
        20'000, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&watchdog));
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&watchdog), nullptr);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
};

std::string Ok(std::string_view body) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

std::string TargetOf(const std::string& request) {
  size_t a = request.find(' ');
  size_t b = request.find(' ', a + 1);
  return request.substr(a + 1, b - a - 1);
}

OutboundRequest Get(std::string target) {
  OutboundRequest r;
  r.target = std::move(target);
  return r;
}

// A port nothing listens on: bound once, then released.
int FreePort() {
  int port = 0;
  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_tcp_t tcp;
  uv_tcp_init(&loop, &tcp);
  struct sockaddr_in addr;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  uv_tcp_bind(&tcp, reinterpret_cast<const sockaddr*>(&addr), 0);
  struct sockaddr_storage bound;
  int len = sizeof(bound);
  uv_tcp_getsockname(&tcp, reinterpret_cast<sockaddr*>(&bound), &len);
  port = ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  uv_close(reinterpret_cast<uv_handle_t*>(&tcp), nullptr);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return port;
}

}  // namespace

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

TEST_CASE("max_pipeline lets the pool share one connection between concurrent requests") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn& c, const std::string& req) { c.Write(Ok(TargetOf(req))); };
  ClientOptions options;
  options.max_pipeline = 8;
  HttpClient client(&l.loop, options);
  int done = 0;
  for (int i = 0; i < 8; ++i) {
    client.Request(peer.address(), Get("/" + std::to_string(i)), [&, i](ClientResult& r) {
      CHECK(r.error == ClientError::kNone);
      CHECK(r.response.body == "/" + std::to_string(i));
      if (++done == 8) {
        client.Close();
        peer.Close();
      }
    });
  }
  l.Run();
  CHECK(done == 8);
  CHECK(client.counters().connections_opened == 1);
}

TEST_CASE("the pool never pipelines a request behind a stream") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn& c, const std::string& req) {
    if (TargetOf(req) == "/stream") {
      c.Write(
          "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ntick\r\n");  // and never ends
    } else {
      c.Write(Ok("plain"));
    }
  };
  ClientOptions options;
  options.max_pipeline = 8;
  HttpClient client(&l.loop, options);
  ClientError stream_error = ClientError::kNone;
  std::string plain;
  OutboundRequest stream = Get("/stream");
  stream.on_body = [&](std::string_view) {
    // The stream is flowing; a plain request now must not queue behind it.
    client.Request(peer.address(), Get("/plain"), [&](ClientResult& r) {
      plain = r.response.body;
      client.Close();
      peer.Close();
    });
    return true;
  };
  client.Request(peer.address(), std::move(stream),
                 [&](ClientResult& r) { stream_error = r.error; });
  l.Run();
  CHECK(plain == "plain");
  CHECK(stream_error == ClientError::kShutdown);
  CHECK(client.counters().connections_opened == 2);
}

// Where each request arrived: the peer records (connection, target) pairs.
struct Arrivals {
  std::vector<std::pair<PeerConn*, std::string>> seen;
  std::vector<PeerConn*> ConnectionsOf(std::string_view prefix) const {
    std::vector<PeerConn*> out;
    for (const auto& [conn, target] : seen) {
      if (target.rfind(prefix, 0) == 0) out.push_back(conn);
    }
    return out;
  }
  std::vector<std::string> TargetsWith(std::string_view prefix) const {
    std::vector<std::string> out;
    for (const auto& [conn, target] : seen) {
      if (target.rfind(prefix, 0) == 0) out.push_back(target);
    }
    return out;
  }
};

TEST_CASE("requests with one order_key go out in order on one connection, though others are idle") {
  Loop l;
  TestPeer peer(&l.loop);
  Arrivals arrivals;
  peer.on_request = [&](PeerConn& c, const std::string& req) {
    arrivals.seen.emplace_back(&c, TargetOf(req));
    c.Write(Ok(TargetOf(req)));
  };
  ClientOptions options;
  options.max_pipeline = 1;  // one request per connection, unless bound by order_key
  HttpClient client(&l.loop, options);
  // Four requests at once open four connections, which then sit idle.
  int warm = 0;
  for (int i = 0; i < 4; ++i) {
    client.Request(peer.address(), Get("/warm"), [&](ClientResult& r) {
      CHECK(r.error == ClientError::kNone);
      if (++warm < 4) return;
      // Two client connections' requests, interleaved, submitted at once.
      int done = 0;
      for (int j = 0; j < 6; ++j) {
        OutboundRequest req = Get((j % 2 == 0 ? "/a/" : "/b/") + std::to_string(j));
        req.method = j % 3 == 1 ? "PUT" : "GET";
        req.order_key = j % 2 == 0 ? 7 : 8;
        client.Request(peer.address(), std::move(req), [&](ClientResult& res) {
          CHECK(res.error == ClientError::kNone);
          if (++done == 6) {
            client.Close();
            peer.Close();
          }
        });
      }
    });
  }
  l.Run();
  CHECK(client.counters().connections_opened == 4);
  for (std::string_view key : {"/a/", "/b/"}) {
    CAPTURE(key);
    const std::vector<PeerConn*> conns = arrivals.ConnectionsOf(key);
    REQUIRE(conns.size() == 3);
    CHECK(conns[0] == conns[1]);
    CHECK(conns[1] == conns[2]);
  }
  CHECK(arrivals.TargetsWith("/a/") == std::vector<std::string>{"/a/0", "/a/2", "/a/4"});
  CHECK(arrivals.TargetsWith("/b/") == std::vector<std::string>{"/b/1", "/b/3", "/b/5"});
}

TEST_CASE(
    "max_connections_per_peer: a burst waits in a queue instead of opening more connections") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn& c, const std::string& req) { c.Write(Ok(TargetOf(req))); };
  ClientOptions options;
  options.max_connections_per_peer = 2;
  options.max_pipeline = 1;
  HttpClient client(&l.loop, options);
  int done = 0;
  int wrong = 0;
  for (int i = 0; i < 10; ++i) {
    const std::string target = "/q/" + std::to_string(i);
    client.Request(peer.address(), Get(target), [&, target](ClientResult& r) {
      if (r.error != ClientError::kNone || r.response.body != target) ++wrong;
      if (++done == 10) {
        client.Close();
        peer.Close();
      }
    });
  }
  l.Run();
  CHECK(done == 10);
  CHECK(wrong == 0);
  CHECK(peer.accepted == 2);
  CHECK(client.counters().connections_opened == 2);
  CHECK(client.counters().queued == 8);
}

TEST_CASE("a request that waits in the queue beyond its timeout fails kBusy and is never sent") {
  Loop l;
  TestPeer peer(&l.loop);
  peer.on_request = [](PeerConn&, const std::string&) {};  // never answers
  ClientOptions options;
  options.max_connections_per_peer = 1;
  options.max_pipeline = 1;
  HttpClient client(&l.loop, options);
  ClientError first = ClientError::kNone;
  ClientError second = ClientError::kNone;
  std::string detail;
  OutboundRequest slow = Get("/slow");
  slow.timeout_ms = 2'000;
  client.Request(peer.address(), std::move(slow), [&](ClientResult& r) { first = r.error; });
  OutboundRequest waiting = Get("/waiting");
  waiting.timeout_ms = 100;
  client.Request(peer.address(), std::move(waiting), [&](ClientResult& r) {
    second = r.error;
    detail = r.detail;
    client.Close();
    peer.Close();
  });
  l.Run();
  CHECK(second == ClientError::kBusy);
  CHECK_MESSAGE(detail.find("not sent") != std::string::npos, detail);
  CHECK(first == ClientError::kShutdown);
  CHECK(peer.requests == 1);
}

TEST_CASE("after a timeout, the GET pipelined behind is resent elsewhere; the PUT fails kTimeout") {
  Loop l;
  TestPeer peer(&l.loop);
  std::set<PeerConn*> stalled;  // connections that got /slow: nothing more is answered there
  peer.on_request = [&](PeerConn& c, const std::string& req) {
    if (TargetOf(req) == "/slow") stalled.insert(&c);
    if (stalled.count(&c) == 0) c.Write(Ok(TargetOf(req)));
  };
  HttpClient client(&l.loop, ClientOptions{});
  std::map<std::string, ClientResult> results;
  auto send = [&](std::string method, std::string target) {
    OutboundRequest r = Get(target);
    r.method = std::move(method);
    r.order_key = 1;  // one client connection's requests: one pooled connection
    r.timeout_ms = target == "/slow" ? 200 : 5'000;
    client.Request(peer.address(), std::move(r), [&, target](ClientResult& res) {
      results[target] = std::move(res);
      if (results.size() == 3) {
        client.Close();
        peer.Close();
      }
    });
  };
  send("GET", "/slow");
  send("PUT", "/put");
  send("GET", "/get");
  l.Run();
  REQUIRE(results.size() == 3);
  CHECK(results["/slow"].error == ClientError::kTimeout);
  CHECK(results["/put"].error == ClientError::kTimeout);
  CHECK_MESSAGE(results["/put"].detail.find("timed out") != std::string::npos,
                results["/put"].detail);
  CHECK(results["/get"].error == ClientError::kNone);
  CHECK(results["/get"].response.body == "/get");
  CHECK(client.counters().resent == 1);
  CHECK(peer.accepted == 2);
}

TEST_CASE("against the project's HttpServer: concurrent pipelined requests and bodies all match") {
  Loop l;
  HttpServer server(&l.loop, ServerLimits{}, [](HttpRequest& request, Responder responder) {
    HttpResponse response;
    response.body = request.method + " " + request.target + " " + request.body;
    responder.Send(std::move(response));
  });
  REQUIRE(server.Listen("127.0.0.1", 0) == 0);
  ClientOptions options;
  options.max_pipeline = 4;
  HttpClient client(&l.loop, options);
  const std::string peer = "127.0.0.1:" + std::to_string(server.port());
  const int kTotal = 2000;
  const int kConcurrent = 16;
  int sent = 0;
  int done = 0;
  int wrong = 0;
  std::function<void()> send = [&] {
    int i = sent++;
    OutboundRequest r;
    r.method = i % 3 == 0 ? "PUT" : "GET";
    r.target = "/kv/" + std::to_string(i);
    if (r.method == "PUT") r.body = std::string(static_cast<size_t>(i % 200), 'x');
    std::string expect = r.method + " " + r.target + " " + r.body;
    client.Request(peer, std::move(r), [&, expect](ClientResult& res) {
      if (res.error != ClientError::kNone || res.response.status != 200 ||
          res.response.body != expect)
        ++wrong;
      ++done;
      if (sent < kTotal) {
        send();
      } else if (done == kTotal) {
        client.Close();
        server.Shutdown([] {});
      }
    });
  };
  for (int i = 0; i < kConcurrent; ++i) send();
  l.Run();
  CHECK(done == kTotal);
  CHECK(wrong == 0);
  CHECK(client.counters().errors == 0);
  // 16 concurrent requests, 4 per connection: 4 connections suffice.
  CHECK(client.counters().connections_opened == 4);
}

}  // namespace distkv::net
