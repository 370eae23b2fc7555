// Tests of the outbound client's pool: sharing connections, order keys,
// the per-peer cap and its queue, and what follows a timed-out request.
// The peer is TestPeer (client_test_peer.h).
#include "tests/unit/net/client_test_peer.h"

#include <doctest/doctest.h>

namespace distkv::net {
using namespace testing;

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
  int done = 0;  // outlives the callback below, whose requests count it
  for (int i = 0; i < 4; ++i) {
    client.Request(peer.address(), Get("/warm"), [&](ClientResult& r) {
      CHECK(r.error == ClientError::kNone);
      if (++warm < 4) return;
      // Two client connections' requests, interleaved, submitted at once.
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
    "an order_key still unanswered keeps its connection while hundreds of others come and go") {
  Loop l;
  TestPeer peer(&l.loop);
  Arrivals arrivals;
  PeerConn* held = nullptr;  // where /held/first waits for its answer
  peer.on_request = [&](PeerConn& c, const std::string& req) {
    const std::string target = TargetOf(req);
    arrivals.seen.emplace_back(&c, target);
    if (target == "/held/first") {
      held = &c;
    } else if (target == "/held/second") {
      c.Write(Ok("/held/first"));
      c.Write(Ok(target));
    } else {
      c.Write(Ok(target));
    }
  };
  ClientOptions options;
  options.max_pipeline = 1;  // a second request goes elsewhere unless bound by its order_key
  HttpClient client(&l.loop, options);
  int done = 0;
  auto finish = [&](ClientResult& r) {
    CHECK(r.error == ClientError::kNone);
    if (++done == 2) {
      client.Close();
      peer.Close();
    }
  };
  OutboundRequest first = Get("/held/first");
  first.order_key = 7;
  client.Request(peer.address(), std::move(first), finish);
  // One request at a time for 300 other keys: each key's binding is emptied
  // as it is answered, and the empty ones are swept as the map grows.
  int others = 0;
  std::function<void()> next = [&] {
    OutboundRequest r = Get("/other/" + std::to_string(others));
    r.order_key = 1000 + static_cast<uint64_t>(others);
    client.Request(peer.address(), std::move(r), [&](ClientResult& res) {
      CHECK(res.error == ClientError::kNone);
      if (++others < 300) {
        next();
        return;
      }
      OutboundRequest second = Get("/held/second");
      second.order_key = 7;
      client.Request(peer.address(), std::move(second), finish);
    });
  };
  next();
  l.Run();
  CHECK(others == 300);
  CHECK(done == 2);
  REQUIRE(held != nullptr);
  const std::vector<PeerConn*> conns = arrivals.ConnectionsOf("/held/");
  REQUIRE(conns.size() == 2);
  CHECK(conns[1] == held);
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
  // Reads share connections (4 a connection); each write has one of its own.
  CHECK(client.counters().connections_opened <= kConcurrent);
}

// A server whose PUTs are answered only once the test releases them (as a
// write waits for a group commit); everything else is answered at once with
// its target. Responses leave in request order, as HttpServer sends them.
struct HeldWrites {
  Loop l;
  bool released = false;
  std::vector<Responder> held;
  HttpServer server{&l.loop, ServerLimits{}, [this](HttpRequest& request, Responder responder) {
                      if (request.method == "PUT" && !released) {
                        held.push_back(std::move(responder));
                        return;
                      }
                      HttpResponse response;
                      response.body = request.target;
                      responder.Send(std::move(response));
                    }};
  std::string peer;
  HeldWrites() {
    REQUIRE(server.Listen("127.0.0.1", 0) == 0);
    peer = "127.0.0.1:" + std::to_string(server.port());
  }
  void Release() {
    released = true;
    for (Responder& r : held) r.Send(HttpResponse{});
    held.clear();
  }
  static OutboundRequest Request(std::string method, std::string target, uint64_t order_key) {
    OutboundRequest r = Get(std::move(target));
    r.method = std::move(method);
    if (r.method == "PUT") r.body = "value";
    r.order_key = order_key;
    r.timeout_ms = 10'000;  // a stuck request fails by this, long before the watchdog
    return r;
  }
};

TEST_CASE("a read is never pipelined behind a write that waits: it gets a connection of its own") {
  HeldWrites t;
  ClientOptions options;
  options.max_pipeline = 8;
  HttpClient client(&t.l.loop, options);
  std::vector<std::string> answered;
  client.Request(t.peer, Get("/warm"), [&](ClientResult& warm) {
    REQUIRE(warm.error == ClientError::kNone);
    // One idle connection now. The write takes it; the read, submitted in the
    // same loop turn, must not queue behind the write's answer.
    client.Request(t.peer, HeldWrites::Request("PUT", "/w", 1), [&](ClientResult& r) {
      CHECK(r.error == ClientError::kNone);
      answered.push_back("/w");
      client.Close();
      t.server.Shutdown([] {});
    });
    client.Request(t.peer, HeldWrites::Request("GET", "/r", 2), [&](ClientResult& r) {
      CHECK(r.error == ClientError::kNone);
      CHECK(r.response.body == "/r");
      answered.push_back("/r");
      t.Release();  // the write's commit completes only after the read was answered
    });
  });
  t.l.Run();
  CHECK(answered == std::vector<std::string>{"/r", "/w"});
  CHECK(client.counters().connections_opened == 2);
}

TEST_CASE(
    "a write never joins a busy connection, where a later read of that connection's client "
    "would queue behind it") {
  HeldWrites t;
  ClientOptions options;
  options.max_pipeline = 8;
  HttpClient client(&t.l.loop, options);
  std::vector<std::string> answered;
  client.Request(t.peer, Get("/warm"), [&](ClientResult& warm) {
    REQUIRE(warm.error == ClientError::kNone);
    // Client 7's first read takes the idle connection; client 8's write comes
    // next; then client 7's second read, which must follow its first.
    auto read = [&](std::string target) {
      client.Request(t.peer, HeldWrites::Request("GET", target, 7), [&, target](ClientResult& r) {
        CHECK(r.error == ClientError::kNone);
        answered.push_back(target);
        if (target == "/a2") t.Release();
      });
    };
    read("/a1");
    client.Request(t.peer, HeldWrites::Request("PUT", "/w", 8), [&](ClientResult& r) {
      CHECK(r.error == ClientError::kNone);
      answered.push_back("/w");
      client.Close();
      t.server.Shutdown([] {});
    });
    read("/a2");
  });
  t.l.Run();
  CHECK(answered == std::vector<std::string>{"/a1", "/a2", "/w"});
}

TEST_CASE("a write never follows a write already sent, nor one that waits for replicas") {
  HeldWrites t;
  ClientOptions options;
  options.max_pipeline = 8;
  HttpClient client(&t.l.loop, options);
  std::vector<std::string> answered;
  std::function<void(std::string, uint64_t, bool)> put = [&](std::string target, uint64_t key,
                                                             bool may_wait) {
    OutboundRequest r = HeldWrites::Request("PUT", target, key);
    r.may_wait = may_wait;
    client.Request(t.peer, std::move(r), [&, target](ClientResult& res) {
      CHECK(res.error == ClientError::kNone);
      answered.push_back(target);
      if (answered.size() == 3) {
        client.Close();
        t.server.Shutdown([] {});
      }
    });
  };
  // /slow waits for replicas; /w1, submitted in the same turn, must not
  // follow it. /w2 comes once the server holds both: /w1 has been sent, and
  // /w2 must not follow it either. All three are released together.
  put("/slow", 1, true);
  put("/w1", 2, false);
  uv_check_t poll;
  uv_check_init(&t.l.loop, &poll);
  struct PollState {
    HeldWrites* t;
    std::function<void(std::string, uint64_t, bool)>* put;
    bool sent_w2 = false;
  } state{&t, &put};
  poll.data = &state;
  uv_check_start(&poll, [](uv_check_t* c) {
    auto* st = static_cast<PollState*>(c->data);
    if (!st->sent_w2 && st->t->held.size() == 2) {
      st->sent_w2 = true;
      (*st->put)("/w2", 3, false);
    } else if (st->sent_w2 && st->t->held.size() == 3) {
      uv_check_stop(c);
      st->t->Release();
    }
  });
  uv_unref(reinterpret_cast<uv_handle_t*>(&poll));
  t.l.Run();
  uv_close(reinterpret_cast<uv_handle_t*>(&poll), nullptr);
  // Each came on a connection of its own (on a shared one, its answer could
  // not have left before the earlier write's).
  CHECK(client.counters().connections_opened == 3);
  CHECK(answered.size() == 3);
}

TEST_CASE("writes submitted in one loop turn share one connection; a read does not follow them") {
  HeldWrites t;
  ClientOptions options;
  options.max_pipeline = 8;
  HttpClient client(&t.l.loop, options);
  std::vector<std::string> answered;
  for (int i = 0; i < 4; ++i) {
    const std::string target = "/w" + std::to_string(i);
    client.Request(t.peer, HeldWrites::Request("PUT", target, 10 + i),
                   [&, target](ClientResult& r) {
                     CHECK(r.error == ClientError::kNone);
                     answered.push_back(target);
                     if (answered.size() == 5) {
                       client.Close();
                       t.server.Shutdown([] {});
                     }
                   });
  }
  client.Request(t.peer, HeldWrites::Request("GET", "/r", 20), [&](ClientResult& r) {
    CHECK(r.error == ClientError::kNone);
    answered.push_back("/r");
    t.Release();
  });
  t.l.Run();
  CHECK(client.counters().connections_opened == 2);
  CHECK(answered == std::vector<std::string>{"/r", "/w0", "/w1", "/w2", "/w3"});
}

TEST_CASE(
    "reads submitted in one loop turn share one connection and one write, though others "
    "are idle") {
  Loop l;
  TestPeer peer(&l.loop);
  Arrivals arrivals;
  peer.on_request = [&](PeerConn& c, const std::string& req) {
    arrivals.seen.emplace_back(&c, TargetOf(req));
    c.Write(Ok(TargetOf(req)));
  };
  ClientOptions options;
  options.max_pipeline = 8;
  HttpClient client(&l.loop, options);
  // Four requests on four connections (held apart by order keys and one
  // loop turn each), which then sit idle.
  int warm = 0;
  int done = 0;  // outlives the callback below, whose requests count it
  for (uint64_t i = 1; i <= 4; ++i) {
    OutboundRequest w = Get("/warm");
    w.method = "PUT";
    w.may_wait = true;  // a connection of its own
    client.Request(peer.address(), std::move(w), [&](ClientResult& r) {
      CHECK(r.error == ClientError::kNone);
      if (++warm < 4) return;
      for (int j = 0; j < 6; ++j) {
        client.Request(peer.address(), Get("/burst/" + std::to_string(j)), [&](ClientResult& res) {
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
  const std::vector<PeerConn*> conns = arrivals.ConnectionsOf("/burst/");
  REQUIRE(conns.size() == 6);
  for (PeerConn* c : conns) CHECK(c == conns[0]);
}


// The connection's queue of pending requests is a ring of reused slots: its
// head moves on with every answer, and it grows while requests are pending.
TEST_CASE(
    "pipelined answers match their requests in order across the pending ring's wrap and growth") {
  Loop l;
  TestPeer peer(&l.loop);
  std::vector<std::string> unanswered;
  int seen = 0;
  // Five answers once six requests are in (the sixth stays pending); the
  // other 21 once all 26 are.
  peer.on_request = [&](PeerConn& c, const std::string& req) {
    unanswered.push_back(TargetOf(req));
    const size_t answer = ++seen == 6 ? 5 : seen == 26 ? unanswered.size() : 0;
    std::string burst;
    for (size_t i = 0; i < answer; ++i) burst += Ok(unanswered[i]);
    unanswered.erase(unanswered.begin(), unanswered.begin() + static_cast<long>(answer));
    if (answer > 0) c.Write(burst);
  };
  auto conn = std::make_unique<ClientConnection>(&l.loop, "127.0.0.1", peer.port, ClientOptions{});
  std::vector<std::string> order;
  int submitted = 0;
  std::function<void(int)> submit = [&](int n) {
    for (int i = 0; i < n; ++i) {
      const std::string target = "/r/" + std::to_string(submitted++);
      conn->Submit(Get(target), [&, target](ClientResult& r) {
        REQUIRE(r.error == ClientError::kNone);
        CHECK(r.response.body == target);
        order.push_back(r.response.body);
        if (order.size() == 5) submit(20);  // the ring's head is at 5 of 8: wrap, then grow
        if (order.size() == 26) {
          conn->Close();
          peer.Close();
        }
      });
    }
  };
  submit(6);
  l.Run();
  REQUIRE(order.size() == 26);
  for (int i = 0; i < 26; ++i) CHECK(order[i] == "/r/" + std::to_string(i));
  CHECK(peer.accepted == 1);
}

TEST_CASE("a peer that fails fails exactly the requests pending on it, once each") {
  Loop l;
  TestPeer good(&l.loop);
  TestPeer bad(&l.loop);
  good.on_request = [](PeerConn& c, const std::string& req) { c.Write(Ok(TargetOf(req))); };
  // The failing peer answers the first two writes it holds, then drops the
  // connection with three more unanswered (writes are never resent).
  std::vector<std::string> held;
  bad.on_request = [&](PeerConn& c, const std::string& req) {
    held.push_back(TargetOf(req));
    if (held.size() == 5) {
      c.Write(Ok(held[0]) + Ok(held[1]));
      c.Close();
    }
  };
  ClientOptions options;
  options.max_pipeline = 8;
  HttpClient client(&l.loop, options);
  std::map<std::string, std::vector<ClientError>> outcomes;  // target -> every callback's error
  int done = 0;
  for (int i = 0; i < 5; ++i) {
    for (TestPeer* p : {&good, &bad}) {
      OutboundRequest put = Get((p == &good ? "/good/" : "/bad/") + std::to_string(i));
      put.method = "PUT";
      put.body = "v";
      const std::string target = put.target;
      client.Request(p->address(), std::move(put), [&, target](ClientResult& r) {
        outcomes[target].push_back(r.error);
        if (r.error == ClientError::kNone) CHECK(r.response.body == target);
        if (++done == 10) {
          client.Close();
          good.Close();
          bad.Close();
        }
      });
    }
  }
  l.Run();
  REQUIRE(outcomes.size() == 10);
  for (int i = 0; i < 5; ++i) {
    const std::string g = "/good/" + std::to_string(i);
    const std::string b = "/bad/" + std::to_string(i);
    REQUIRE(outcomes[g].size() == 1);
    REQUIRE(outcomes[b].size() == 1);
    CHECK(outcomes[g][0] == ClientError::kNone);
    CHECK(outcomes[b][0] == (i < 2 ? ClientError::kNone : ClientError::kConnectionLost));
  }
  CHECK(bad.accepted == 1);
}

}  // namespace distkv::net
