// Replication histories through real processes: a primary that lost an
// unsynced tail (fsync = "never", killed, its newest segment cut back) and
// then took new writes must not go on streaming to, or counting the acks
// of, a replica that holds the records it lost: the replica cuts them into
// lost/ and takes a snapshot of the primary (a full resync, resync_test.cc
// has the other cases), ending with the primary's data.
#include <doctest/doctest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

namespace fs = std::filesystem;

Json ReplicationOf(SyncHttp& http, const std::string& address) {
  Json stats = GetJson(http, address, "/stats");
  REQUIRE(stats.contains("replication"));
  return stats["replication"];
}

void PutAll(SyncHttp& http, const std::string& addr, const std::string& prefix, int n) {
  std::vector<Call> calls;
  for (int i = 0; i < n; i++) {
    calls.push_back(MakeCall(addr, "PUT", "/kv/" + prefix + std::to_string(i),
                             prefix + std::to_string(i) + std::string(100, 'x')));
  }
  for (const Reply& r : http.SendAll(std::move(calls), 16)) REQUIRE(Is2xx(r.status));
}

}  // namespace

TEST_CASE(
    "replication history: a primary cut back behind its replica refuses the diverged replica, "
    "does not count its acks, and the replica resyncs to the primary's data") {
  ClusterSpec spec = LocalCluster(1, 1);
  spec.fsync = "never";
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string raddr = spec.shards[0].replicas[0];
  SyncHttp http;
  PutAll(http, addr, "first-", 300);
  const int64_t durable = JsonInt(GetJson(http, addr, "/stats"), "durable_lsn");
  REQUIRE(WaitUntil([&] { return JsonInt(ReplicationOf(http, raddr), "applied_lsn") == durable; },
                    30'000));

  // The crash loses the primary's unsynced tail: cut its newest segment back.
  c.primary(0).Kill();
  const std::string data = c.dir().Sub("data-" + spec.shards[0].name);
  const std::string newest = NewestSegmentOf(data);
  REQUIRE(!newest.empty());
  fs::resize_file(newest, RecordBytesOf(newest) / 2);
  c.primary(0).Restart();
  const int64_t restarted_at = JsonInt(GetJson(http, addr, "/stats"), "last_lsn");
  REQUIRE(restarted_at < durable);
  // A write that asks for a replica's ack, while the replica still holds
  // the lost records: it may only be acknowledged once the replica holds it.
  Reply acked = http.Send(addr, "PUT", "/kv/needs-a-replica?ack=replica", "v");
  if (Is2xx(acked.status)) CHECK(http.Get(raddr, "/kv/needs-a-replica").status == 200);
  PutAll(http, addr, "second-", 300);

  // The replica is told its history diverged, keeps the records only the
  // old history had in lost/, and takes a snapshot: it ends with the
  // primary's data.
  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 60'000, 50));
  CHECK(JsonInt(ReplicationOf(http, addr), "streams_diverged") >= 1);
  CHECK(JsonInt(ReplicationOf(http, addr), "resyncs_sent") >= 1);
  Json rstats = GetJson(http, raddr, "/stats");
  CHECK(rstats["failover"]["tails_cut"].get<int>() >= 1);
  CHECK(rstats["failover"]["lost_bytes"].get<int>() > 0);
  CHECK(JsonInt(rstats["replication"], "resyncs_completed") >= 1);
  CHECK(JsonInt(rstats["replication"], "tails_cut") >= 1);
  CHECK(http.Get(raddr, "/kv/second-299").status == 200);
  CHECK(http.Get(raddr, "/kv/first-299").status == http.Get(addr, "/kv/first-299").status);
  // Now acknowledged, and held by the replica.
  Reply again = http.Send(addr, "PUT", "/kv/needs-a-replica?ack=replica", "w");
  CHECK_MESSAGE(Is2xx(again.status), again);
  CHECK(http.Get(raddr, "/kv/needs-a-replica").body == "w");
}

}  // namespace distkv::clustertest
