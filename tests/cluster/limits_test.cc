// Limits of a real node, set low in its config so the tests stay small:
// sizes (value, key, URL, headers, missing length), time (header and idle
// timeouts, a slow-loris client) and connection count. Each refusal must
// carry the status code that means it and must not stop the node serving
// everyone else.
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/raw_http.h"

namespace distkv::clustertest {
namespace {

constexpr int kMaxValue = 1024;
constexpr int kMaxKey = 64;
constexpr int kMaxUrl = 4096;
constexpr int kMaxHeader = 2048;

ClusterSpec LimitedSpec() {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  spec.Set("limits", "max_value_bytes", kMaxValue)
      .Set("limits", "max_key_bytes", kMaxKey)
      .Set("server", "max_url_bytes", kMaxUrl)
      .Set("server", "max_header_bytes", kMaxHeader)
      .Set("server", "header_timeout_ms", 1000);
  return spec;
}

struct LimitedNode {
  TestCluster cluster;
  SyncHttp http;
  std::string addr;
  explicit LimitedNode(ClusterSpec spec = LimitedSpec())
      : cluster(std::move(spec)), addr(cluster.address(0)) {
    cluster.Start();
  }
  // The node still answers an ordinary request.
  bool Serves() {
    Reply r = http.Send(addr, "PUT", "/kv/still-serving", "yes");
    return Is2xx(r.status) && http.Get(addr, "/kv/still-serving").body == "yes";
  }
};

TEST_CASE(
    "limits: a value over max_value_bytes is refused with 413 and not stored; one at the limit is "
    "stored") {
  LimitedNode n;
  Reply at = n.http.Send(n.addr, "PUT", "/kv/at-limit", std::string(kMaxValue, 'a'));
  CHECK_MESSAGE(Is2xx(at.status), at);
  CHECK(n.http.Get(n.addr, "/kv/at-limit").body.size() == static_cast<size_t>(kMaxValue));

  for (size_t size : {static_cast<size_t>(kMaxValue) + 1, size_t{64} * 1024}) {
    CAPTURE(size);
    SyncHttp fresh;  // the node may close a connection after a 413
    Reply over = fresh.Send(n.addr, "PUT", "/kv/over", std::string(size, 'b'));
    CHECK_MESSAGE(over.status == 413, over);
    CHECK(IsJsonError(over));
    CHECK(n.http.Get(n.addr, "/kv/over").status == 404);
  }
  // Through the seed API the value is in the query; the limit is the same.
  SyncHttp fresh;
  Reply query = fresh.Get(n.addr, "/set?key=over-q&value=" + std::string(kMaxValue + 1, 'c'));
  CHECK_MESSAGE(query.status == 413, query);
  CHECK(IsJsonError(query));
  CHECK(n.http.Get(n.addr, "/kv/over-q").status == 404);
  CHECK(n.Serves());
}

TEST_CASE("limits: a key over max_key_bytes is refused with a 4xx JSON error and not stored") {
  LimitedNode n;
  std::string at_limit(kMaxKey, 'k');
  CHECK(Is2xx(n.http.Send(n.addr, "PUT", "/kv/" + at_limit, "v").status));
  CHECK(n.http.Get(n.addr, "/kv/" + at_limit).body == "v");

  std::string over(kMaxKey + 1, 'k');
  Reply r = n.http.Send(n.addr, "PUT", "/kv/" + over, "v");
  CHECK_MESSAGE((r.status == 400 || r.status == 413 || r.status == 414), r);
  CHECK(IsJsonError(r));
  Reply q = n.http.Get(n.addr, "/set?key=" + over + "&value=v");
  CHECK_MESSAGE((q.status == 400 || q.status == 413 || q.status == 414), q);
  CHECK(JsonInt(GetJson(n.http, n.addr, "/stats"), "keys") == 1);
}

TEST_CASE("limits: a URL over max_url_bytes is refused with 414 and the node keeps serving") {
  LimitedNode n;
  SyncHttp fresh;
  Reply r = fresh.Get(n.addr, "/get?key=" + std::string(kMaxUrl + 100, 'u'));
  CHECK_MESSAGE(r.status == 414, r);
  CHECK(IsJsonError(r));
  CHECK(n.Serves());
}

TEST_CASE(
    "limits: a header block over max_header_bytes is refused with 431 and the node keeps serving") {
  LimitedNode n;
  SyncHttp fresh;
  Reply r = fresh.Get(n.addr, "/kv/x", {{"X-Big", std::string(kMaxHeader + 100, 'h')}});
  CHECK_MESSAGE(r.status == 431, r);
  CHECK(IsJsonError(r));
  CHECK(n.Serves());
}

TEST_CASE("limits: a PUT with neither Content-Length nor chunked encoding is refused with 411") {
  LimitedNode n;
  RawConnection conn;
  REQUIRE(conn.Connect(n.addr));
  conn.Exchange("PUT /kv/nolength HTTP/1.1\r\nHost: test\r\n\r\n", 1, 5'000);
  REQUIRE_MESSAGE(conn.responses().size() == 1, "no answer; " << conn.error());
  CHECK(conn.responses()[0].status == 411);
  CHECK(IsJsonError(conn.responses()[0].body));
  CHECK(n.http.Get(n.addr, "/kv/nolength").status == 404);
}

TEST_CASE(
    "limits: a slow-loris header (1 byte a second) is cut after header_timeout_ms while others are "
    "served") {
  LimitedNode n;  // header_timeout_ms = 1000
  REQUIRE(Is2xx(n.http.Send(n.addr, "PUT", "/kv/present", "here").status));

  const std::string head =
      "GET /kv/present HTTP/1.1\r\nHost: test\r\nX-Slow: " + std::string(64, 's') + "\r\n\r\n";
  // At most this many bytes (seconds): far past the 1 s timeout, far short of the header.
  constexpr size_t kMaxTrickle = 12;
  RawConnection loris;
  REQUIRE(loris.Connect(n.addr));
  bool cut = false;
  size_t trickled = 0;
  size_t served = 0;
  while (!cut && trickled < kMaxTrickle) {
    if (!loris.Send(head.substr(trickled, 1))) {
      cut = true;
      break;
    }
    ++trickled;
    Reply other = n.http.Get(n.addr, "/kv/present");  // another client, meanwhile
    CHECK_MESSAGE(other.status == 200, other);
    if (other.status == 200) ++served;
    cut = loris.WaitForClose(1'000);
  }
  CHECK_MESSAGE(cut, "the connection was still open after " << trickled << " bytes, one a second");
  CHECK(served >= 1);
  // The node may say why before closing (408); it must never answer the request.
  for (const RawResponse& r : loris.responses()) CHECK(r.status == 408);
  CHECK(n.Serves());
}

TEST_CASE(
    "limits: many connections stuck in their headers are all cut, and a normal client is served "
    "meanwhile") {
  LimitedNode n;
  constexpr size_t kStuck = 50;
  std::vector<std::unique_ptr<RawConnection>> stuck;
  for (size_t i = 0; i < kStuck; ++i) {
    stuck.push_back(std::make_unique<RawConnection>());
    REQUIRE(stuck.back()->Connect(n.addr));
    REQUIRE(stuck.back()->Send("GET /kv/present HTTP/1.1\r\nHost: te"));
  }
  CHECK(n.Serves());
  // One bounded wait for all of them (header_timeout_ms is 1 s).
  size_t closed = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  for (auto& conn : stuck) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (conn->WaitForClose(std::max<int>(0, static_cast<int>(left.count())))) ++closed;
  }
  CHECK(closed == kStuck);
  CHECK(n.Serves());
}

TEST_CASE("limits: an idle keep-alive connection is closed after idle_timeout_ms") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  spec.Set("server", "idle_timeout_ms", 500);
  TestCluster cluster(spec);
  cluster.Start();
  RawConnection conn;
  REQUIRE(conn.Connect(cluster.address(0)));
  conn.Exchange(RawRequest("GET", "/health"), 1, 5'000);
  REQUIRE(conn.responses().size() == 1);
  CHECK(conn.responses()[0].status == 200);
  CHECK_FALSE(conn.peer_closed());  // keep-alive: open after the answer
  CHECK_MESSAGE(conn.WaitForClose(10'000),
                "still open 10 s after its last request (idle_timeout_ms = 500)");
}

TEST_CASE(
    "limits: connections over max_connections are turned away while admitted ones keep working") {
  constexpr size_t kMaxConnections = 8;
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  spec.Set("server", "max_connections", kMaxConnections);
  TestCluster cluster(spec);
  cluster.Start();
  const std::string addr = cluster.address(0);

  // Open connections one at a time, each proving itself with a request, until
  // one is turned away (closed, or answered 503 instead of 200).
  std::vector<std::unique_ptr<RawConnection>> admitted;
  bool turned_away = false;
  for (size_t i = 0; i < kMaxConnections + 4 && !turned_away; ++i) {
    auto conn = std::make_unique<RawConnection>();
    REQUIRE(conn->Connect(addr));
    conn->Exchange(RawRequest("GET", "/health"), 1, 5'000);
    if (conn->responses().size() == 1 && conn->responses()[0].status == 200) {
      admitted.push_back(std::move(conn));
    } else {
      turned_away = true;
      if (!conn->responses().empty()) CHECK(conn->responses()[0].status == 503);
    }
  }
  CHECK(turned_away);
  CHECK(admitted.size() <= kMaxConnections);
  CHECK(admitted.size() >= 1);
  // The admitted ones are still served.
  for (auto& conn : admitted) {
    size_t before = conn->responses().size();
    conn->Exchange(RawRequest("GET", "/health"), before + 1, 5'000);
    REQUIRE(conn->responses().size() == before + 1);
    CHECK(conn->responses().back().status == 200);
  }
  // Freed slots are given to new clients.
  admitted.clear();
  bool served_again = WaitUntil(
      [&] {
        RawConnection conn;
        if (!conn.Connect(addr)) return false;
        conn.Exchange(RawRequest("GET", "/health"), 1, 2'000);
        return conn.responses().size() == 1 && conn.responses()[0].status == 200;
      },
      10'000, 50);
  CHECK(served_again);
}

}  // namespace
}  // namespace distkv::clustertest
