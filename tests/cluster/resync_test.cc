// Full resync through real processes: a replica kept down while its primary
// overwrites, deletes and compacts past its position comes back by snapshot
// and ends with the primary's data; a replica killed while it receives a
// snapshot restarts on its old data, intact, and the next start completes
// the resync. (The divergence case is in history_test.cc.)
#include <doctest/doctest.h>

#include <signal.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

namespace fs = std::filesystem;

Json ReplicationOf(SyncHttp& http, const std::string& address) {
  return GetJson(http, address, "/stats")["replication"];
}

void Write(SyncHttp& http, const std::string& addr, int keys, int round, size_t value_bytes) {
  std::vector<Call> calls;
  for (int i = 0; i < keys; i++) {
    calls.push_back(MakeCall(addr, "PUT", "/kv/key-" + std::to_string(i),
                             std::to_string(round) + std::string(value_bytes, 'v')));
  }
  for (const Reply& r : http.SendAll(std::move(calls), 32)) REQUIRE(Is2xx(r.status));
}

// While the replica is down the primary overwrites everything, deletes some
// keys and compacts: the replica's position is no longer in its log.
void MovePastReplica(SyncHttp& http, const std::string& addr, int keys, size_t value_bytes) {
  for (int round = 1; round <= 2; round++) Write(http, addr, keys, round, value_bytes);
  std::vector<Call> deletes;
  for (int i = 0; i < keys; i += 7)
    deletes.push_back(MakeCall(addr, "DELETE", "/kv/key-" + std::to_string(i)));
  for (const Reply& r : http.SendAll(std::move(deletes), 32)) REQUIRE(r.status == 204);
  Reply r = http.Send(addr, "POST", "/admin/compact");
  REQUIRE_MESSAGE(r.status == 202, r);
  REQUIRE(WaitUntil(
      [&] {
        Json c = GetJson(http, addr, "/stats")["compaction"];
        return !c["running"].get<bool>() && c["compactions"].get<int64_t>() >= 1;
      },
      60'000, 50));
}

ClusterSpec ResyncSpec() {
  ClusterSpec spec = LocalCluster(1, 1);
  spec.Set("storage", "segment_bytes", 1 << 20);
  spec.Set("storage", "compact_dead_ratio", 0);  // only when asked
  return spec;
}

bool StagingHasSegment(const std::string& data) {
  std::error_code ec;
  for (const auto& f : fs::directory_iterator(data + "/staging", ec)) {
    if (f.path().extension() == ".seg") return true;
  }
  return false;
}

}  // namespace

TEST_CASE(
    "resync: a replica kept down across a compaction comes back by snapshot, equal to its "
    "primary") {
  ClusterSpec spec = ResyncSpec();
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string raddr = c.replica(0).address();
  SyncHttp http;
  Write(http, addr, 2000, 0, 200);
  REQUIRE(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 30'000));

  c.replica(0).Kill();
  MovePastReplica(http, addr, 2000, 200);
  c.replica(0).StartAndWait();

  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 60'000, 50));
  Json rrep = ReplicationOf(http, raddr);
  CHECK(JsonInt(rrep, "resyncs_completed") == 1);
  CHECK(JsonInt(rrep, "resyncs_failed") == 0);
  CHECK(JsonInt(rrep, "last_resync_bytes") > 0);
  MESSAGE("snapshot: " << JsonInt(rrep, "last_resync_bytes") << " bytes in "
                       << JsonInt(rrep, "last_resync_ms") << " ms");
  Json prep = ReplicationOf(http, addr);
  CHECK(JsonInt(prep, "resyncs_sent") == 1);
  CHECK(JsonInt(prep, "streams_gone") >= 1);
  CHECK(http.Get(raddr, "/metrics").body.find("distkv_replication_resyncs_total 1") !=
        std::string::npos);
  // After the snapshot the replica follows the log on the same stream: a
  // new write and a new delete reach it without another resync.
  REQUIRE(Is2xx(http.Send(addr, "PUT", "/kv/after-resync", "a").status));
  REQUIRE(http.Send(addr, "DELETE", "/kv/key-1").status == 204);
  CHECK(WaitUntil([&] { return http.Get(raddr, "/kv/after-resync").status == 200; }, 30'000));
  CHECK(WaitUntil([&] { return http.Get(raddr, "/kv/key-1").status == 404; }, 30'000));
  CHECK(http.Get(raddr, "/kv/key-0").status == 404);  // a delete it never streamed
  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 30'000, 50));
  CHECK(JsonInt(ReplicationOf(http, raddr), "resyncs_started") == 1);
  // The replica's store restarts from the snapshot and the log after it.
  c.replica(0).Stop();
  c.replica(0).StartAndWait();
  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 30'000, 50));
  CHECK(JsonInt(ReplicationOf(http, raddr), "resyncs_started") == 0);
}

TEST_CASE(
    "resync: a replica killed while it receives a snapshot restarts on its old data, and the "
    "next start completes the resync") {
  ClusterSpec spec = ResyncSpec();
  TestCluster c(spec);
  c.Start();
  const std::string addr = c.address(0);
  const std::string raddr = c.replica(0).address();
  const std::string rdata = c.dir().Sub("data-" + spec.shards[0].name + "-replica-0");
  SyncHttp http;
  constexpr int kKeys = 6000;
  Write(http, addr, kKeys, 0, 2000);
  REQUIRE(WaitUntil([&] { return DigestOf(http, raddr) == DigestOf(http, addr); }, 60'000));
  const std::string old_digest = DigestOf(http, raddr);

  c.replica(0).Kill();
  MovePastReplica(http, addr, kKeys, 2000);
  const std::string new_digest = DigestOf(http, addr);
  REQUIRE(new_digest != old_digest);
  c.replica(0).Start();
  // The moment the snapshot is being staged, the primary is frozen (so the
  // snapshot cannot finish) and the replica is killed.
  const bool staging = WaitUntil([&] { return StagingHasSegment(rdata); }, 60'000, 1);
  ::kill(c.primary(0).pid(), SIGSTOP);
  struct Thaw {
    pid_t pid;
    ~Thaw() { ::kill(pid, SIGCONT); }  // also when a check below ends the test
  } thaw{c.primary(0).pid()};
  c.replica(0).Kill();
  REQUIRE_MESSAGE(staging, "the snapshot was never seen being staged");
  REQUIRE(!fs::exists(rdata + "/staging/COMPLETE"));

  // Restarted while the primary cannot answer: the unfinished snapshot is
  // discarded and the old data serves, whole.
  c.replica(0).StartAndWait();
  CHECK(DigestOf(http, raddr) == old_digest);
  CHECK(http.Get(raddr, "/kv/key-5").body == "0" + std::string(2000, 'v'));
  CHECK(!StagingHasSegment(rdata));

  ::kill(c.primary(0).pid(), SIGCONT);
  CHECK(WaitUntil([&] { return DigestOf(http, raddr) == new_digest; }, 60'000, 50));
  Json rrep = ReplicationOf(http, raddr);
  CHECK(JsonInt(rrep, "resyncs_completed") == 1);
  CHECK(JsonInt(rrep, "last_resync_bytes") > 0);
  CHECK(http.Get(raddr, "/kv/key-5").body == "2" + std::string(2000, 'v'));
  CHECK(http.Get(raddr, "/kv/key-7").status == 404);
}

}  // namespace distkv::clustertest
