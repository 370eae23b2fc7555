// HTTP/1.1 pipelining against a real node, with raw sockets so the test
// controls the bytes: many requests in one write, requests cut at arbitrary
// byte boundaries, and writes (which wait for a group commit) mixed with
// reads (which do not) — answers must still leave in request order.
#include <cstdio>
#include <string>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/raw_http.h"

namespace distkv::clustertest {
namespace {

std::string PipeKey(size_t i) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "pipe-%04zu", i);
  return buf;
}
std::string PipeValue(size_t i) { return "value-of-" + PipeKey(i); }

// Writes keys 0..n-1 with values naming them.
void Preload(const std::string& addr, size_t n) {
  SyncHttp http;
  std::vector<Call> calls;
  for (size_t i = 0; i < n; ++i)
    calls.push_back(MakeCall(addr, "PUT", "/kv/" + PipeKey(i), PipeValue(i)));
  for (const Reply& r : http.SendAll(std::move(calls), 16)) REQUIRE_MESSAGE(Is2xx(r.status), r);
}

// Checks that answer i is a 200 whose body names key i; returns the count of mismatches.
size_t CountOutOfOrder(const std::vector<RawResponse>& responses, size_t n, std::string* first) {
  size_t bad = 0;
  for (size_t i = 0; i < n && i < responses.size(); ++i) {
    if (responses[i].status != 200 || responses[i].body != PipeValue(i)) {
      if (bad++ == 0) {
        *first = "answer " + std::to_string(i) + ": HTTP " + std::to_string(responses[i].status) +
                 " body '" + responses[i].body.substr(0, 80) + "'";
      }
    }
  }
  return bad;
}

TEST_CASE("pipelining: 1,000 GETs pipelined on one connection are answered in order") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  constexpr size_t kRequests = 1000;
  Preload(cluster.address(0), kRequests);

  std::string requests;
  for (size_t i = 0; i < kRequests; ++i) requests += RawRequest("GET", "/kv/" + PipeKey(i));
  RawConnection conn;
  REQUIRE_MESSAGE(conn.Connect(cluster.address(0)), conn.error());
  CHECK(conn.Exchange(requests, kRequests, 30'000));
  CHECK_FALSE(conn.parse_failed());
  REQUIRE_MESSAGE(conn.responses().size() == kRequests,
                  "got " << conn.responses().size() << " answers; " << conn.error());
  std::string first;
  CHECK_MESSAGE(CountOutOfOrder(conn.responses(), kRequests, &first) == 0, first);
  CHECK_FALSE(conn.peer_closed());  // keep-alive: the connection is still usable
}

TEST_CASE("pipelining: requests cut at arbitrary byte boundaries are parsed the same") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  constexpr size_t kRequests = 200;
  Preload(cluster.address(0), kRequests);

  // Extra headers and a body make the pieces cross every part of a request.
  std::string requests;
  for (size_t i = 0; i < kRequests; ++i) {
    requests += "GET /kv/" + PipeKey(i) +
                " HTTP/1.1\r\nHost: test\r\nX-Filler: " + std::string(i % 17, 'f') +
                "\r\nAccept: */*\r\n\r\n";
  }
  RawConnection conn;
  REQUIRE(conn.Connect(cluster.address(0)));
  CHECK(conn.Exchange(requests, kRequests, 30'000, /*chunk=*/7));  // pieces of 1..7 bytes
  CHECK_FALSE(conn.parse_failed());
  REQUIRE_MESSAGE(conn.responses().size() == kRequests,
                  "got " << conn.responses().size() << " answers");
  std::string first;
  CHECK_MESSAGE(CountOutOfOrder(conn.responses(), kRequests, &first) == 0, first);
}

TEST_CASE(
    "pipelining: writes and reads mixed on one connection answer in order, each read seeing the "
    "writes "
    "before it") {
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";  // writes wait for a group commit; reads could overtake them
  TestCluster cluster(spec);
  cluster.Start();

  // For each key: PUT v1, GET, PUT v2, GET, DELETE, GET (404).
  constexpr size_t kKeys = 100;
  std::string requests;
  struct Expect {
    int status;  // 0: any 2xx
    std::string body;
    bool check_body;
  };
  std::vector<Expect> expected;
  for (size_t i = 0; i < kKeys; ++i) {
    std::string target = "/kv/" + PipeKey(i);
    std::string v1 = PipeValue(i) + "-1", v2 = PipeValue(i) + "-2";
    requests += RawRequest("PUT", target, v1);
    expected.push_back({0, "", false});
    requests += RawRequest("GET", target);
    expected.push_back({200, v1, true});
    requests += RawRequest("PUT", target, v2);
    expected.push_back({0, "", false});
    requests += RawRequest("GET", target);
    expected.push_back({200, v2, true});
    requests += RawRequest("DELETE", target);
    expected.push_back({204, "", false});
    requests += RawRequest("GET", target);
    expected.push_back({404, "", false});
  }
  RawConnection conn;
  REQUIRE(conn.Connect(cluster.address(0)));
  CHECK(conn.Exchange(requests, expected.size(), 30'000));
  REQUIRE_MESSAGE(conn.responses().size() == expected.size(),
                  "got " << conn.responses().size() << " answers");
  size_t bad = 0;
  std::string first;
  for (size_t i = 0; i < expected.size(); ++i) {
    const RawResponse& r = conn.responses()[i];
    bool ok = expected[i].status == 0 ? (r.status >= 200 && r.status < 300)
                                      : r.status == expected[i].status;
    if (expected[i].check_body) ok = ok && r.body == expected[i].body;
    if (!ok && bad++ == 0) {
      first = "answer " + std::to_string(i) + ": HTTP " + std::to_string(r.status) + " '" +
              r.body.substr(0, 80) + "'";
    }
  }
  CHECK_MESSAGE(bad == 0, bad << " answers wrong or out of order; first: " << first);
}

}  // namespace
}  // namespace distkv::clustertest
