// TestPeer: a tiny scripted HTTP peer on a libuv loop for the outbound
// client's tests (http_client_test.cc, http_client_pool_test.cc). It hands
// every complete request it receives to the test, which answers with raw
// bytes (or not at all, or by closing).
#pragma once

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

namespace distkv::net::testing {

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
  bool timed_out = false;
  Loop() { uv_loop_init(&loop); }
  ~Loop() {
    Drain();
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
          static_cast<Loop*>(t->data)->timed_out = true;
          uv_stop(t->loop);
        },
        20'000, 0);
    uv_unref(reinterpret_cast<uv_handle_t*>(&watchdog));
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&watchdog), nullptr);
    Drain();
  }

 private:
  // After a timeout the test's handles may still be active: running the loop
  // to completion would hang where the watchdog meant to fail, so only the
  // pending callbacks (closes) run.
  void Drain() {
    if (!timed_out) {
      uv_run(&loop, UV_RUN_DEFAULT);
      return;
    }
    for (int i = 0; i < 100; ++i) uv_run(&loop, UV_RUN_NOWAIT);
  }
};

inline std::string Ok(std::string_view body) {
  return "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" +
         std::string(body);
}

inline std::string TargetOf(const std::string& request) {
  size_t a = request.find(' ');
  size_t b = request.find(' ', a + 1);
  return request.substr(a + 1, b - a - 1);
}

inline OutboundRequest Get(std::string target) {
  OutboundRequest r;
  r.target = std::move(target);
  return r;
}

// A port nothing listens on: bound once, then released.
inline int FreePort() {
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

}  // namespace distkv::net::testing
