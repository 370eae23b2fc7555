// Failover with real processes: manual promotion of a replica (distkv
// promote), the cluster map's epoch reaching every node (pushed, or fetched
// by a node that was down), and the old primary rejoining as a replica.
#include <doctest/doctest.h>

#include <signal.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {}  // namespace

TEST_CASE(
    "failover: distkv promote makes a replica primary under epoch 1; writes go on through any "
    "node, a node that was down learns the map, the old primary rejoins as a replica") {
  TestCluster cluster(LocalCluster(2, 1));
  cluster.Start();
  SyncHttp http;
  const std::string old_primary = cluster.primary(0).address();
  const std::string promoted = cluster.replica(0).address();

  // Acknowledged writes to shard 0, sent through shard 1's primary.
  std::vector<std::string> before = cluster.KeysOf(0, 50, "before-");
  for (const std::string& k : before) {
    Reply r = http.Send(cluster.address(1), "PUT", "/kv/" + k, "v-" + k);
    REQUIRE_MESSAGE(Is2xx(r.status), r);
  }
  REQUIRE(
      WaitUntil([&] { return DigestOf(http, promoted) == DigestOf(http, old_primary); }, 10'000));

  // Shard 1's replica is down during the promotion; the old primary dies.
  cluster.replica(1).Stop();
  cluster.primary(0).Kill();

  REQUIRE(RunDistkv(cluster.dir(), "promote",
                    {"promote", "--config", cluster.dir().Sub("sharding.toml"), "--shard",
                     cluster.spec().shards[0].name}) == 0);

  // The promoted node and the nodes that were up hold epoch 1 at once (pushed).
  CHECK(EpochOf(http, promoted) == 1);
  CHECK(EpochOf(http, cluster.address(1)) == 1);
  nlohmann::json map = GetJson(http, cluster.address(1), "/cluster");
  CHECK(map["shards"][0]["primary"]["address"] == promoted);
  CHECK(GetJson(http, promoted, "/health")["role"] == "primary");

  // Writes to shard 0 succeed through any node: the new primary, and shard 1
  // forwarding to it.
  std::vector<std::string> after = cluster.KeysOf(0, 50, "after-");
  for (size_t i = 0; i < after.size(); ++i) {
    const std::string& via = i % 2 ? promoted : cluster.address(1);
    Reply r = http.Send(via, "PUT", "/kv/" + after[i], "v-" + after[i]);
    CHECK_MESSAGE(Is2xx(r.status), "via " << via << ": " << r);
  }

  // A node that was down during the promotion learns epoch 1 from a peer.
  cluster.replica(1).StartAndWait();
  CHECK(WaitUntil([&] { return EpochOf(http, cluster.replica(1).address()) == 1; }, 10'000));

  // The old primary comes back with its old command line: the map makes it a
  // replica of the promoted node; it refuses writes and catches up.
  cluster.primary(0).StartAndWait();
  CHECK(WaitUntil([&] { return EpochOf(http, old_primary) == 1; }, 10'000));
  CHECK(GetJson(http, old_primary, "/health")["role"] == "replica");
  Reply refused = http.Send(old_primary, "PUT", "/kv/" + after[0], "late");
  CHECK_MESSAGE(refused.status == 403, refused);
  CHECK(refused.body.find(promoted) != std::string::npos);
  CHECK(WaitUntil([&] { return DigestOf(http, old_primary) == DigestOf(http, promoted); }, 10'000));

  // Every acknowledged write reads back, through every node.
  std::vector<std::string> all = before;
  all.insert(all.end(), after.begin(), after.end());
  for (const std::string& via :
       {promoted, old_primary, cluster.address(1), cluster.replica(1).address()}) {
    for (const std::string& k : all) {
      Reply r = http.Get(via, "/kv/" + k);
      CHECK_MESSAGE((r.status == 200 && r.body == "v-" + k),
                    "via " << via << " " << k << ": " << r);
    }
  }
}

TEST_CASE(
    "failover: a deposed primary's writes that never reached the new primary are cut into lost/, "
    "not merged; it then holds exactly the new primary's data") {
  TestCluster cluster(LocalCluster(1, 1));
  cluster.Start();
  SyncHttp http;
  const std::string old_primary = cluster.address(0);
  const std::string promoted = cluster.replica(0).address();
  for (int i = 0; i < 10; ++i) {
    REQUIRE(Is2xx(http.Send(old_primary, "PUT", "/kv/early-" + std::to_string(i), "e").status));
  }
  // The replica holds all of it durably (a SIGKILL loses what it only staged).
  REQUIRE(WaitUntil(
      [&] {
        return GetJson(http, promoted, "/stats")["durable_lsn"] ==
               GetJson(http, old_primary, "/stats")["last_lsn"];
      },
      10'000));
  // The replica is down; the primary acknowledges five more writes.
  cluster.replica(0).Kill();
  for (int i = 0; i < 5; ++i) {
    REQUIRE(
        Is2xx(http.Send(old_primary, "PUT", "/kv/unreplicated-" + std::to_string(i), "u").status));
  }
  cluster.primary(0).Kill();
  cluster.replica(0).StartAndWait();
  REQUIRE(RunDistkv(cluster.dir(), "promote-force",
                    {"promote", "--config", cluster.dir().Sub("sharding.toml"), "--shard",
                     cluster.spec().shards[0].name, "--force"}) == 0);
  for (int i = 0; i < 3; ++i) {
    REQUIRE(Is2xx(http.Send(promoted, "PUT", "/kv/later-" + std::to_string(i), "l").status));
  }

  cluster.primary(0).StartAndWait();
  CHECK(WaitUntil([&] { return DigestOf(http, old_primary) == DigestOf(http, promoted); }, 15'000));
  CHECK(http.Get(old_primary, "/kv/unreplicated-0").status == 404);
  CHECK(http.Get(old_primary, "/kv/later-2").status == 200);
  nlohmann::json stats = GetJson(http, old_primary, "/stats");
  CHECK(stats["failover"]["tails_cut"] == 1);
  CHECK(stats["failover"]["lost_bytes"].get<uint64_t>() > 0);
  // The cut records are in lost/, in the log's record format.
  std::string lost;
  const std::string cmd =
      "cat " + cluster.dir().Sub("data-" + cluster.spec().shards[0].name) + "/lost/*.log";
  FILE* f = popen(cmd.c_str(), "r");
  REQUIRE(f != nullptr);
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) lost.append(buf, n);
  pclose(f);
  for (int i = 0; i < 5; ++i) {
    CHECK(lost.find("unreplicated-" + std::to_string(i)) != std::string::npos);
  }
  CHECK(lost.find("early-") == std::string::npos);
}

TEST_CASE("failover: promoting a primary, or a node of another shard, is refused") {
  TestCluster cluster(LocalCluster(1, 1));
  cluster.Start();
  SyncHttp http;
  Reply r = http.Send(cluster.address(0), "POST", "/admin/promote");
  CHECK_MESSAGE(r.status == 409, r);
  CHECK(r.body.find("already_primary") != std::string::npos);
  CHECK(EpochOf(http, cluster.address(0)) == 0);
  CHECK(RunDistkv(cluster.dir(), "promote-unknown",
                  {"promote", "--config", cluster.dir().Sub("sharding.toml"), "--shard",
                   "no-such-shard"}) == 1);
}

TEST_CASE("failover: a pushed cluster map with a lower epoch or bad content changes nothing") {
  TestCluster cluster(LocalCluster(1, 1));
  cluster.Start();
  SyncHttp http;
  Reply bad = http.Send(cluster.address(0), "POST", "/internal/cluster-map", "epoch = x\n");
  CHECK_MESSAGE(bad.status == 400, bad);
  Reply mine = http.Get(cluster.address(0), "/internal/cluster-map");
  REQUIRE(mine.status == 200);
  CHECK(mine.body.rfind("epoch = 0\n", 0) == 0);
  // A map that drops the shard's replica, at the same epoch: ignored.
  Reply same = http.Send(cluster.address(0), "POST", "/internal/cluster-map", mine.body);
  CHECK(same.status == 200);
  CHECK(EpochOf(http, cluster.address(0)) == 0);
}

}  // namespace distkv::clustertest
