// Write faults around replication and a full disk: a primary's failed sync
// seen from its replica, a replica whose own sync fails, and _mput and reads
// held on a real full tmpfs (tests/cluster/small_disk.h). The helpers and the
// failing disk (--fail-sync-after, --slow-disk) are described in
// write_faults.h and write_faults_test.cc.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include <doctest/doctest.h>

#include "tests/cluster/small_disk.h"
#include "tests/cluster/write_faults.h"

namespace distkv::clustertest {
namespace {

TEST_CASE(
    "write faults: a replica never receives the writes of its primary's failed sync; after the "
    "primary's restart both hold the same data") {
  ClusterSpec spec = LocalCluster(1, 1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  Node& primary = cluster.primary(0);
  cluster.Start();
  const std::string node = cluster.address(0);
  const std::string replica = cluster.replica(0).address();
  SyncHttp http(Patient());

  std::map<std::string, int64_t> etag;
  for (int i = 0; i < 4; ++i) {
    const std::string key = "r-" + std::to_string(i);
    const Reply r = http.Send(node, "PUT", "/kv/" + key, "v" + std::to_string(i));
    REQUIRE_MESSAGE(r.status == 201, r);
    uint64_t lsn = 0;
    REQUIRE(ParseEtag(r.Header("ETag"), &lsn));
    etag[key] = static_cast<int64_t>(lsn);
  }
  REQUIRE(WaitUntil([&] { return DigestOf(http, replica) == DigestOf(http, node); }, 30'000));
  const std::string digest_before = DigestOf(http, node);

  CHECK(primary.Stop() == 0);
  FailSyncsAfter(primary, kReopenSyncs);  // the first batch after the restart fails
  primary.Restart();
  auto replication = [&] {
    const Json stats = GetJson(http, replica, "/stats");
    const Json* r = JsonField(stats, "replication");
    REQUIRE(r != nullptr);
    return *r;
  };
  REQUIRE(WaitUntil(
      [&] {
        const Json r = replication();
        const Json* connected = JsonField(r, "connected");
        return connected && connected->is_boolean() && connected->get<bool>();
      },
      30'000));
  const int64_t base = StatOf(http, node, "last_lsn");

  Background kept({MakeCall(node, "PUT", "/kv/big", kBig)});
  WaitStaged(http, node, base + 1);
  Background undone({MakeCall(node, "DELETE", "/kv/r-0"), MakeCall(node, "PUT", "/kv/r-1", "new"),
                     MakeCall(node, "PUT", "/kv/fresh", "f")});
  WaitStaged(http, node, base + 3);
  REQUIRE(CommitStat(http, node, "failures") == 0);
  CheckMayOrMayNot(kept.Join()[0]);
  for (const Reply& r : undone.Join()) CheckBatchError(r);
  CheckFailedOnce(http, node, base, base + 1);

  // The stream stays up (heartbeats come) and carries nothing: the kept
  // write was never durable on the primary.
  const int64_t heartbeats = JsonInt(replication(), "heartbeats_received");
  REQUIRE(WaitUntil([&] { return JsonInt(replication(), "heartbeats_received") >= heartbeats + 2; },
                    30'000));
  const Json r = replication();
  CHECK(JsonInt(r, "received_lsn") == base);
  CHECK(JsonInt(r, "applied_lsn") == base);
  CHECK(DigestOf(http, replica) == digest_before);
  CheckAbsent(http, replica, "big");
  CheckValue(http, node, "big", kBig, base + 1);
  for (const std::string& via : {node, replica}) {
    CheckValue(http, via, "r-0", "v0", etag["r-0"]);
    CheckValue(http, via, "r-1", "v1", etag["r-1"]);
    CheckAbsent(http, via, "fresh");
  }

  // The restarted primary recovers the kept write from its disk, and the
  // replica catches up to exactly its data.
  RestartHealed(primary);
  CHECK(WaitUntil([&] { return DigestOf(http, replica) == DigestOf(http, node); }, 30'000));
  for (const std::string& via : {node, replica}) {
    CheckValue(http, via, "big", kBig, base + 1);
    CheckValue(http, via, "r-0", "v0", etag["r-0"]);
    CheckValue(http, via, "r-1", "v1", etag["r-1"]);
    CheckAbsent(http, via, "fresh");
  }
  REQUIRE(http.Send(node, "PUT", "/kv/after", "a").status == 201);
  CHECK(WaitUntil([&] { return DigestOf(http, replica) == DigestOf(http, node); }, 30'000));
  CHECK(http.Get(replica, "/kv/after").body == "a");
}

TEST_CASE(
    "write faults: a replica whose own sync fails stops applying, says why, keeps serving what it "
    "holds; its primary goes on, and after its restart the replica catches up") {
  ClusterSpec spec = LocalCluster(1, 1);
  spec.fsync = "always";
  TestCluster cluster(spec);
  Node& replica_node = cluster.replica(0);
  FailSyncsAfter(replica_node, kFreshOpenSyncs, /*slow=*/false);  // its first batch fails
  cluster.Start();
  const std::string node = cluster.address(0);
  const std::string replica = replica_node.address();
  SyncHttp http(Patient());
  auto replication = [&] {
    const Json stats = GetJson(http, replica, "/stats");
    const Json* r = JsonField(stats, "replication");
    REQUIRE(r != nullptr);
    return *r;
  };

  REQUIRE(http.Send(node, "PUT", "/kv/a", "1").status == 201);
  REQUIRE(WaitUntil([&] { return JsonInt(replication(), "commit_errors") >= 1; }, 30'000));
  const Json stats = GetJson(http, replica, "/stats");
  CHECK(JsonInt(stats, "read_only") == 1);
  CHECK_MESSAGE(JsonText(stats, "read_only_reason").find("fdatasync") != std::string::npos,
                stats.dump());
  CHECK(JsonInt(*JsonField(stats, "commit"), "failures") == 1);
  const Json r = replication();
  CHECK_MESSAGE(JsonText(r, "last_error").find("fdatasync") != std::string::npos, r.dump());
  CHECK(JsonInt(r, "applied_lsn") == 0);
  const Reply health = http.Get(replica, "/health");
  CHECK(health.status == 200);
  CHECK_MESSAGE(health.body.find("\"status\":\"read_only\"") != std::string::npos, health);
  // It serves what its store kept (durable on the primary, so never taken
  // back), and the primary takes writes without it.
  CheckValue(http, replica, "a", "1", 1);
  REQUIRE(http.Send(node, "PUT", "/kv/b", "2").status == 201);
  CheckAbsent(http, replica, "b");
  CHECK(JsonInt(replication(), "commit_errors") == 1);
  // It says it waits for a restart, and does not pretend to reconnect (a
  // reconnect would wait forever for the failed batch).
  CHECK(WaitUntil(
      [&] { return replica_node.LogTail(400).find("not reconnecting") != std::string::npos; },
      10'000));
  // Before its failure it may have retried (its primary not listening yet);
  // after it, never: a reconnect would have been logged within this second.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  const std::string log = replica_node.LogTail(400);
  const size_t stopped = log.find("not reconnecting");
  CHECK_MESSAGE(
      (stopped != std::string::npos && log.find("reconnecting in", stopped) == std::string::npos),
      log);

  RestartHealed(replica_node);
  CHECK(WaitUntil([&] { return DigestOf(http, replica) == DigestOf(http, node); }, 30'000));
  CheckValue(http, replica, "a", "1", 1);
  CheckValue(http, replica, "b", "2", 2);
  CHECK(JsonInt(GetJson(http, replica, "/stats"), "read_only") == 0);
}

// Whether any file of the directory holds needle.
bool AnyFileHolds(const std::string& dir, const std::string& needle) {
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (bytes.find(needle) != std::string::npos) return true;
  }
  return false;
}

TEST_CASE(
    "write faults: an _mput part that does not fit on a full disk is 507 for each of its keys, "
    "local or forwarded, and leaves no trace, not even after a crash") {
  TempDir scratch;
  SmallDisk disk(scratch.Sub("disk"), 4 << 20);
  ClusterSpec spec = LocalCluster(2);
  spec.fsync = "always";
  spec.Set("storage", "segment_bytes", 64 << 10);  // little pre-allocated space to give up
  TestCluster cluster(spec);
  PutDataOn(cluster, spec.shards[0].name, disk);
  cluster.Start();
  const std::string node0 = cluster.address(0), node1 = cluster.address(1);
  const std::string data0 = cluster.dir().Sub("data-" + spec.shards[0].name);
  const std::vector<std::string> full = cluster.KeysOf(0, 16, "full-");
  const std::vector<std::string> ok1 = cluster.KeysOf(1, 4, "ok-");
  const std::vector<std::string> early = cluster.KeysOf(0, 4, "early-");
  SyncHttp http(Patient());

  Items before;
  for (const std::string& key : early) before.emplace_back(key, "e:" + key);
  for (const Json& item : Results(http.Send(node1, "POST", "/kv/_mput", MputBody(before)), before))
    ItemWritten(item, 201);

  disk.Fill(256 << 10);
  const int64_t failures = CommitStat(http, node0, "failures");
  // 8 values of 64 KiB each: 512 KiB, one atomic group on shard 0.
  auto refused_value = [](const std::string& key) {
    std::string v = "REFUSED:" + key + ":";
    v.resize(64 << 10, 'r');
    return v;
  };
  // Forwarded by node 1, then node 0's own part.
  for (size_t round = 0; round < 2; ++round) {
    const std::string via = round == 0 ? node1 : node0;
    Items items;
    for (size_t i = 0; i < 8; ++i) {
      const std::string& key = full[round * 8 + i];
      items.emplace_back(key, refused_value(key));
      if (i % 4 == 0) items.emplace_back(ok1[round * 2 + i / 4], "ok");
    }
    const Json results = Results(http.Send(via, "POST", "/kv/_mput", MputBody(items)), items);
    for (size_t i = 0; i < items.size(); ++i) {
      INFO("round " << round << ", " << items[i].first);
      if (cluster.OwnerOf(items[i].first) == 0) {
        CheckItemRefused(results[i], 507, "disk_full");
      } else {
        ItemWritten(results[i], 201);
      }
    }
  }
  // Two batches failed, and the shard stays writable (a full disk is not a
  // failed sync).
  const Json stats = GetJson(http, node0, "/stats");
  CHECK(JsonInt(*JsonField(stats, "commit"), "failures") == failures + 2);
  CHECK(JsonInt(stats, "read_only") == 0);
  CHECK(JsonInt(stats, "keys") == 4);
  for (const std::string& key : full) {
    CheckAbsent(http, node0, key);
    CheckAbsent(http, node1, key);
  }
  for (const std::string& key : ok1) CHECK(http.Get(node0, "/kv/" + key).body == "ok");
  CHECK_MESSAGE(!AnyFileHolds(data0, "REFUSED:"), "a refused value is in a file of " << data0);

  // A part that fits goes in at once, no restart: a refused key is created
  // anew (201), as it never existed.
  const Items fits = {{full[0], "small"}, {early[0], "e2"}};
  const Json fits_results = Results(http.Send(node0, "POST", "/kv/_mput", MputBody(fits)), fits);
  ItemWritten(fits_results[0], 201);
  ItemWritten(fits_results[1], 200);

  // A crash, and a restart on the full disk: no refused write comes back.
  cluster.primary(0).Kill();
  cluster.primary(0).Restart();
  CHECK(StatOf(http, node0, "keys") == 5);
  CHECK(http.Get(node0, "/kv/" + full[0]).body == "small");
  CHECK(http.Get(node1, "/kv/" + early[0]).body == "e2");
  for (size_t i = 1; i < early.size(); ++i) {
    CHECK(http.Get(node1, "/kv/" + early[i]).body == "e:" + early[i]);
  }
  for (size_t i = 1; i < full.size(); ++i) CheckAbsent(http, node1, full[i]);
  CHECK_MESSAGE(!AnyFileHolds(data0, "REFUSED:"), "a refused value is in a file of " << data0);
}

TEST_CASE(
    "write faults: on a full disk a batch that does not fit is cut off with the writes staged "
    "behind it; reads and refusals held for it answer from the store as it was") {
  TempDir scratch;
  SmallDisk disk(scratch.Sub("disk"), 4 << 20);
  ClusterSpec spec = LocalCluster(1);
  spec.fsync = "always";
  spec.Set("storage", "segment_bytes", 64 << 10);
  TestCluster cluster(spec);
  PutDataOn(cluster, spec.shards[0].name, disk);
  Node& primary = cluster.primary(0);
  // 100 KB/s: the 256 KiB that fit of the big write below keep its batch in
  // flight for seconds before the disk refuses the rest.
  primary.args().push_back("--slow-disk");
  primary.args().push_back("100000");
  cluster.Start();
  const std::string node = cluster.address(0);
  const std::string data = cluster.dir().Sub("data-" + spec.shards[0].name);
  SyncHttp http(Patient());

  std::map<std::string, int64_t> etag;
  for (const std::string key : {"k", "gone"}) {
    const Reply r = http.Send(node, "PUT", "/kv/" + key, "old:" + key);
    REQUIRE_MESSAGE(r.status == 201, r);
    uint64_t lsn = 0;
    REQUIRE(ParseEtag(r.Header("ETag"), &lsn));
    etag[key] = static_cast<int64_t>(lsn);
  }
  disk.Fill(256 << 10);
  const int64_t failures = CommitStat(http, node, "failures");
  const int64_t base = StatOf(http, node, "last_lsn");

  std::string big = "NEW:";
  big.resize(512 << 10, 'n');
  Background put_big({MakeCall(node, "PUT", "/kv/k", big)});
  WaitStaged(http, node, base + 1);
  // Behind it: a PUT that alone would fit, and a DELETE.
  Background behind(
      {MakeCall(node, "PUT", "/kv/small", "s"), MakeCall(node, "DELETE", "/kv/gone")});
  WaitStaged(http, node, base + 3);
  const int64_t held_before = CommitStat(http, node, "reads_held");
  // Each rests on a write not yet durable: the big one (k), or every staged
  // one (an absence: small, gone, a page).
  Background reads({MakeCall(node, "GET", "/kv/k"), MakeCall(node, "GET", "/kv/gone"),
                    MakeCall(node, "POST", "/kv/_mget", "[\"k\",\"small\",\"gone\"]"),
                    MakeCall(node, "GET", "/kv?values=true"),
                    MakeCall(node, "DELETE", "/kv/none")});
  REQUIRE(
      WaitUntil([&] { return CommitStat(http, node, "reads_held") >= held_before + 5; }, 30'000));
  REQUIRE(CommitStat(http, node, "failures") == failures);  // still in flight

  CheckError(put_big.Join()[0], 507, "disk_full");
  for (const Reply& r : behind.Join()) CheckError(r, 507, "disk_full");
  const std::vector<Reply>& got = reads.Join();
  const Json stats = GetJson(http, node, "/stats");
  CHECK(JsonInt(*JsonField(stats, "commit"), "failures") == failures + 1);
  CHECK(JsonInt(*JsonField(stats, "commit"), "reads_held") == held_before + 5);
  CHECK(JsonInt(stats, "read_only") == 0);
  CHECK(JsonInt(stats, "last_lsn") == base);  // all three undone
  CHECK(JsonInt(stats, "durable_lsn") == base);

  // Read again after the failure: the store as before the big write.
  CHECK_MESSAGE(got[0].status == 200, got[0]);
  CHECK(got[0].body == "old:k");
  CHECK(got[0].Header("ETag") == Etag(etag["k"]));
  CHECK_MESSAGE(got[1].status == 200, got[1]);
  CHECK(got[1].body == "old:gone");
  const Items mget = {{"k", ""}, {"small", ""}, {"gone", ""}};
  const Json results = Results(got[2], mget);
  CHECK(JsonInt(results[0], "status") == 200);
  CHECK(JsonText(results[0], "value") == "old:k");
  CHECK(JsonText(results[0], "etag") == Etag(etag["k"]));
  CheckItemRefused(results[1], 404, "not_found");
  CHECK(JsonInt(results[2], "status") == 200);
  CHECK(JsonText(results[2], "value") == "old:gone");
  CHECK_MESSAGE(got[3].status == 200, got[3]);
  Json page;
  REQUIRE(ParseJson(got[3].body, &page));
  std::map<std::string, std::string> listed;
  const Json* keys = JsonField(page, "keys");
  const Json* values = JsonField(page, "values");
  REQUIRE((keys && values && keys->size() == values->size()));
  for (size_t i = 0; i < keys->size(); ++i) {
    listed[(*keys)[i].get<std::string>()] = (*values)[i].get<std::string>();
  }
  CHECK(listed == std::map<std::string, std::string>{{"gone", "old:gone"}, {"k", "old:k"}});
  // A refusal held for the batch answers its error (the state it read may
  // have been taken back).
  CheckError(got[4], 507, "disk_full");
  CHECK_MESSAGE(!AnyFileHolds(data, "NEW:"), "the refused value is in a file of " << data);

  // The write that fits goes in when sent again, without a restart; the
  // others stay as they were, also after a crash.
  const Reply again = http.Send(node, "PUT", "/kv/small", "s");
  CHECK_MESSAGE(again.status == 201, again);
  uint64_t lsn = 0;
  CHECK(ParseEtag(again.Header("ETag"), &lsn));
  CHECK(lsn > static_cast<uint64_t>(base + 3));  // the undone LSNs are never handed out again
  primary.Kill();
  primary.Restart();
  CheckValue(http, node, "k", "old:k", etag["k"]);
  CheckValue(http, node, "gone", "old:gone", etag["gone"]);
  CheckValue(http, node, "small", "s", static_cast<int64_t>(lsn));
  CHECK(StatOf(http, node, "keys") == 3);
  CHECK_MESSAGE(!AnyFileHolds(data, "NEW:"), "the refused value is in a file of " << data);
}

}  // namespace
}  // namespace distkv::clustertest
