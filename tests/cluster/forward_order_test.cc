// Order of pipelined requests forwarded to another shard (RFC 9112 §9.3.2:
// a client connection's requests take effect in the order sent). Twelve
// clients at once, each pipelining a write, a second write (or a DELETE) and
// a GET of its own key in one write to a node that does not own the key: the
// GET must see the second write, and so must the owner afterwards. With
// requests spread over whichever pooled connection is idle, about half of
// the keys ended wrong.
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/raw_http.h"

namespace distkv::clustertest {
namespace {

// The i-th key of the form "order-N" that the shard at position owner owns.
std::vector<std::string> KeysOwnedBy(const ClusterSpec& spec, size_t owner, size_t n) {
  std::vector<std::string> keys;
  for (size_t i = 0; keys.size() < n; ++i) {
    std::string key = "order-" + std::to_string(i);
    if (spec.OwnerOf(key) == owner) keys.push_back(std::move(key));
  }
  return keys;
}

struct ClientRun {
  bool deletes = false;  // the second request is DELETE instead of PUT v2
  std::vector<RawResponse> responses;
  std::string error;
};

TEST_CASE(
    "forward order: pipelined PUT, PUT/DELETE, GET through a non-owner take effect in order") {
  ClusterSpec spec = LocalCluster(2);
  spec.fsync = "never";
  TestCluster cluster(spec);
  cluster.Start();
  constexpr size_t kClients = 12;
  constexpr size_t kRounds = 8;
  const std::vector<std::string> keys = KeysOwnedBy(spec, 1, kClients * kRounds);

  size_t wrong = 0;
  std::string first_wrong;
  auto note = [&](const std::string& what) {
    if (wrong++ == 0) first_wrong = what;
  };
  for (size_t round = 0; round < kRounds; ++round) {
    std::vector<ClientRun> runs(kClients);
    std::vector<std::thread> threads;
    for (size_t c = 0; c < kClients; ++c) {
      runs[c].deletes = c % 2 == 1;
      threads.emplace_back([&, c] {
        const std::string target = "/kv/" + keys[round * kClients + c];
        std::string bytes = RawRequest("PUT", target, "v1");
        bytes += runs[c].deletes ? RawRequest("DELETE", target) : RawRequest("PUT", target, "v2");
        bytes += RawRequest("GET", target);
        RawConnection conn;
        if (!conn.Connect(cluster.address(0))) {
          runs[c].error = conn.error();
          return;
        }
        conn.Exchange(bytes, 3, 20'000);
        runs[c].responses = conn.responses();
      });
    }
    for (std::thread& t : threads) t.join();

    SyncHttp http;
    for (size_t c = 0; c < kClients; ++c) {
      const ClientRun& run = runs[c];
      const std::string& key = keys[round * kClients + c];
      REQUIRE_MESSAGE(run.responses.size() == 3,
                      key << ": " << run.responses.size() << " answers " << run.error);
      CHECK_MESSAGE(Is2xx(run.responses[0].status), key << " PUT v1: " << run.responses[0].status);
      CHECK_MESSAGE(Is2xx(run.responses[1].status), key << " second: " << run.responses[1].status);
      const RawResponse& get = run.responses[2];
      const Reply at_owner = http.Get(cluster.address(1), "/kv/" + key);
      if (run.deletes) {
        if (get.status != 404)
          note(key + ": GET after DELETE answered " + std::to_string(get.status));
        if (at_owner.status != 404) note(key + ": survived its DELETE at the owner");
      } else {
        if (get.status != 200 || get.body != "v2") {
          note(key + ": GET after PUT v2 answered " + std::to_string(get.status) + " '" + get.body +
               "'");
        }
        if (at_owner.body != "v2") note(key + ": the owner holds '" + at_owner.body + "'");
      }
    }
  }
  CHECK_MESSAGE(wrong == 0, wrong << " wrong outcomes of " << kClients * kRounds
                                  << " clients; first: " << first_wrong);
}

}  // namespace
}  // namespace distkv::clustertest
