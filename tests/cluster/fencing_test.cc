// Epoch fencing of the replication stream with real processes: a primary
// that was down during a manual promotion comes back with the old map, and a
// replica that holds the new epoch asks it for its log. The deposed node
// must refuse (409 stale_epoch) without sending a record: the writes it
// acknowledged after it was deposed exist nowhere but in its own log, and
// end up in its lost/ directory once it learns the new map.
//
// The replica's side of the handshake is played by the test (with the
// replica's own name, LSN and history) while every other node is paused: a
// node of the cluster only ever follows the primary its own map names, and
// the deposed node must not learn the new map from anyone before it answers.
#include <doctest/doctest.h>

#include <signal.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {}  // namespace

TEST_CASE(
    "fencing: a primary deposed while down refuses to stream to a replica of the new epoch "
    "(409 stale_epoch, no record); its late writes are cut into lost/, never replicated") {
  TestCluster cluster(LocalCluster(1, 2));
  cluster.Start();
  SyncHttp http;
  Node& old_primary = cluster.primary(0);
  Node& promoted = cluster.replica(0, 0);
  Node& replica = cluster.replica(0, 1);
  const std::string shard = cluster.spec().shards[0].name;

  // Promoted under epoch 1 while the old primary was down; it is back on
  // epoch 0 with a write of its own, the others paused. A replica of epoch 1
  // asks it for its log.
  const uint64_t lsn = DeposePrimaryWhileDown(cluster, http, 20, "e");
  CHECK(EpochOf(http, old_primary.address()) == 0);
  const std::string history =
      GetJson(http, old_primary.address(), "/stats").at("history_id").get<std::string>();
  Reply stream = http.Get(old_primary.address(), "/internal/replicate?from=" + std::to_string(lsn) +
                                                     "&history=" + history + "&replica=" +
                                                     PercentEncode(replica.address()) +
                                                     "&shard=" + PercentEncode(shard) + "&epoch=1");
  // An accepted stream never ends: the request would time out (status 0).
  CHECK_MESSAGE(stream.status == 409, stream);
  CHECK(stream.body.find("\"stale_epoch\"") != std::string::npos);
  CHECK(stream.Header("X-Distkv-Epoch") == "0");

  // Once the others wake, the old primary learns epoch 1, rejoins as a
  // replica and cuts its late write into lost/; no other node ever holds it.
  REQUIRE(::kill(promoted.pid(), SIGCONT) == 0);
  REQUIRE(::kill(replica.pid(), SIGCONT) == 0);
  CHECK(WaitUntil([&] { return EpochOf(http, old_primary.address()) == 1; }, 20'000));
  CHECK(WaitUntil(
      [&] {
        return DigestOf(http, old_primary.address()) == DigestOf(http, promoted.address()) &&
               DigestOf(http, replica.address()) == DigestOf(http, promoted.address());
      },
      30'000));
  CHECK(GetJson(http, old_primary.address(), "/health")["role"] == "replica");
  for (Node* n : {&old_primary, &promoted, &replica}) {
    CHECK_MESSAGE(http.Get(n->address(), "/kv/deposed-write").status == 404, n->address());
    CHECK_MESSAGE(http.Get(n->address(), "/kv/epoch-1").status == 200, n->address());
  }
  CHECK(LostText(cluster.dir().Sub("data-" + shard)).find("deposed-write") != std::string::npos);
}

}  // namespace distkv::clustertest
