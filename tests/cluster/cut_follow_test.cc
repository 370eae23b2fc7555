// A deposed primary that cuts its diverged tail follows the primary of the
// newest map, even when the map changes again while it resyncs.
//
// The old primary comes back after a promotion with a write nobody else has,
// learns epoch 1 and starts following the promoted node: it cuts that write
// into lost/ and takes a snapshot (slowly: its disk is throttled). Meanwhile
// the promoted node is paused and the other replica is promoted under
// epoch 2. The old primary must end up following the epoch-2 primary with
// its data, not keep asking the deposed epoch-1 primary (which, once awake,
// would refuse it for its newer epoch forever).
#include <doctest/doctest.h>

#include <signal.h>

#include <cstdio>
#include <string>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"
#include "tests/cluster/json.h"

namespace distkv::clustertest {
namespace {

// The primary a replica follows ("" for a primary or an unreachable node).
std::string FollowedBy(SyncHttp& http, const std::string& address) {
  Reply r = http.Get(address, "/stats");
  if (r.status != 200) return "";
  const Json j = Json::parse(r.body);
  const Json& repl = j.at("replication");
  if (!repl.contains("primary") || !repl.at("primary").is_string()) return "";
  return repl.at("primary").get<std::string>();
}

}  // namespace

TEST_CASE(
    "failover: a deposed primary that cuts its tail follows the primary of the newest map, also "
    "when the map changes during its resync") {
  TestCluster cluster(LocalCluster(1, 2));
  cluster.Start();
  SyncHttp http;
  Node& old_primary = cluster.primary(0);
  Node& first = cluster.replica(0, 0);   // promoted under epoch 1
  Node& second = cluster.replica(0, 1);  // promoted under epoch 2
  const std::string data_dir = cluster.dir().Sub("data-" + cluster.spec().shards[0].name);

  // Epoch 1 while the old primary was down; it is back on epoch 0 (everyone
  // else paused) with a write of its own, on a slow disk. Enough data that
  // the resync's snapshot takes a while on that disk.
  DeposePrimaryWhileDown(cluster, http, 150, std::string(4096, 'v'), {"--slow-disk", "200000"});

  // It learns epoch 1 from the promoted node and cuts its tail following it.
  REQUIRE(::kill(first.pid(), SIGCONT) == 0);
  REQUIRE(WaitUntil([&] { return LostText(data_dir).find("deposed-write") != std::string::npos; },
                    30'000));

  // While it resyncs, the epoch-1 primary pauses and the other replica is
  // promoted under epoch 2 (forced: it cannot reach its primary).
  REQUIRE(::kill(first.pid(), SIGSTOP) == 0);
  REQUIRE(::kill(second.pid(), SIGCONT) == 0);
  Reply promote2 = http.Send(second.address(), "POST", "/admin/promote?force=true");
  REQUIRE_MESSAGE(Is2xx(promote2.status), promote2);
  CHECK(EpochOf(http, second.address()) == 2);
  REQUIRE(Is2xx(http.Send(second.address(), "PUT", "/kv/epoch-2", "two").status));

  CHECK(WaitUntil([&] { return EpochOf(http, old_primary.address()) == 2; }, 30'000));
  CHECK(WaitUntil([&] { return FollowedBy(http, old_primary.address()) == second.address(); },
                  30'000));
  CHECK(WaitUntil(
      [&] { return DigestOf(http, old_primary.address()) == DigestOf(http, second.address()); },
      60'000, 100));
  CHECK(http.Get(old_primary.address(), "/kv/epoch-2").status == 200);
  CHECK(http.Get(old_primary.address(), "/kv/deposed-write").status == 404);

  // The epoch-1 primary wakes, is deposed in turn and follows too.
  REQUIRE(::kill(first.pid(), SIGCONT) == 0);
  CHECK(WaitUntil([&] { return FollowedBy(http, first.address()) == second.address(); }, 30'000));
  CHECK(
      WaitUntil([&] { return DigestOf(http, first.address()) == DigestOf(http, second.address()); },
                60'000, 100));
  CHECK(JsonText(GetJson(http, old_primary.address(), "/health"), "role") == "replica");
}

}  // namespace distkv::clustertest
