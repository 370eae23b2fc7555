// Slot migration with the etcd coordinator: a real etcd (Debian's
// etcd-server) holds the cluster map, and a migration's start and cutover
// are compare-and-puts on it. The checks read etcd's map itself, the truth
// the nodes follow: after a cutover it names the new owner under a higher
// epoch, and at every point each slot has exactly one owner.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

// Every slot of a map owned by exactly one shard.
size_t SlotsWithoutOneOwner(const MapView& view) {
  size_t bad = 0;
  for (const std::string& o : view.owner) bad += o.empty() || o == "*";
  return bad;
}

bool WritesAllowed(SyncHttp& http, const std::string& address) {
  Reply r = http.Get(address, "/health");
  Json j;
  if (r.status != 200 || !ParseJson(r.body, &j)) return false;
  const Json* c = JsonField(j, "coordinator");
  return c && c->value("writes_allowed", false);
}

// The phase of the migration the target's /admin/migrate lists ("none"
// when it lists none, "" when the node does not answer).
std::string PhaseOn(SyncHttp& http, const std::string& target) {
  Reply r = http.Get(target, "/admin/migrate");
  Json j;
  if (r.status != 200 || !ParseJson(r.body, &j)) return "";
  if (j.at("migrations").empty()) return "none";
  return j.at("migrations")[0].value("phase", "");
}

}  // namespace

TEST_CASE(
    "migration (etcd): distkv reshard under distkv-bench --verify; etcd's map names the new "
    "owner under a higher epoch and every key is on its owner once") {
  EtcdCluster ec(2, 0);
  TestCluster& cluster = *ec.cluster;
  const ClusterSpec& spec = cluster.spec();
  const std::string config = cluster.dir().Sub("sharding.toml");
  const std::string from = spec.shards[0].name, to = spec.shards[1].name;
  SyncHttp http;
  REQUIRE(WaitUntil([&] { return !EtcdMapText(http, ec.etcd.address()).empty(); }, 30'000));
  for (size_t i = 0; i < 2; ++i) {
    REQUIRE(WaitUntil([&] { return WritesAllowed(http, cluster.address(i)); }, 30'000));
  }
  const MapView before = ParseMapText(EtcdMapText(http, ec.etcd.address()));
  REQUIRE(before.owner[0] == from);

  const size_t kKeys = 3000;
  const std::string report = cluster.dir().Sub("bench.json");
  Process bench("distkv-bench", BenchBinary(),
                {"--config",
                 config,
                 "--connections",
                 "8",
                 "--pipeline",
                 "2",
                 "--requests",
                 "40000",
                 "--ratio",
                 "50:50",
                 "--keys",
                 std::to_string(kKeys),
                 "--value-bytes",
                 "64",
                 "--preload",
                 "--verify",
                 "--no-progress",
                 "--timeout-ms",
                 "10000",
                 "--seed",
                 "13",
                 "--json",
                 report},
                cluster.dir().Sub("bench.log"));
  bench.Start();
  REQUIRE_MESSAGE(WaitUntil(
                      [&] {
                        return KeysOn(http, cluster.address(0)) +
                                   KeysOn(http, cluster.address(1)) ==
                               static_cast<int64_t>(kKeys);
                      },
                      60'000),
                  bench.LogTail());
  CHECK(RunDistkv(cluster.dir(), "reshard",
                  {"reshard", "--config", config, "--slots", "0-4095", "--to", to}) == 0);
  // The premise: the bench was still loading the cluster when the slots moved.
  CHECK_MESSAGE(bench.running(), "the bench ended before the reshard did");
  const int code = bench.WaitForExit(180'000);
  CHECK_MESSAGE(code == 0, "distkv-bench exit code " << code << "\n" << bench.LogTail());
  const Json r = Json::parse(ReadFile(report));
  MESSAGE("during the reshard: 5xx " << r["all"]["status"]["5xx"] << ", 4xx "
                                     << r["all"]["status"]["4xx"] << ", errors "
                                     << r["all"]["status"]["errors"]);
  CHECK(r["verify"]["reads_checked"].get<int64_t>() > 1000);
  CHECK_MESSAGE(r["verify"]["mismatches"].get<int64_t>() == 0, ReadFile(report));
  CHECK(r["all"]["status"]["timeouts"].get<int64_t>() == 0);

  // etcd's map: the slots are the target's, under a higher epoch, each slot
  // owned once, no migration left.
  const MapView after = ParseMapText(EtcdMapText(http, ec.etcd.address()));
  CHECK(after.epoch > before.epoch);
  CHECK(after.migrations == 0);
  CHECK(SlotsWithoutOneOwner(after) == 0);
  CHECK(after.owner[0] == to);
  CHECK(after.owner[4095] == to);
  CHECK(after.owner[4096] == from);
  // The nodes follow it.
  for (size_t i = 0; i < 2; ++i) {
    CAPTURE(i);
    CHECK(WaitUntil([&] { return EpochOf(http, cluster.address(i)) == after.epoch; }, 30'000));
  }

  // Every key the bench wrote is readable through either node and stored
  // by its owner (per etcd's map) only.
  std::vector<Call> gets;
  for (size_t i = 0; i < kKeys; ++i) {
    gets.push_back(MakeCall(cluster.address(i % 2), "GET",
                            "/kv/" + PercentEncode("key:" + std::to_string(i))));
  }
  std::vector<Reply> replies = http.SendAll(std::move(gets), 16);
  std::map<std::string, int64_t> present;
  size_t moved = 0;
  for (size_t i = 0; i < kKeys; ++i) {
    CHECK_MESSAGE(replies[i].status == 200, "key:" << i << " " << replies[i]);
    const size_t slot = SlotOf("key:" + std::to_string(i));
    present[after.owner[slot]]++;
    moved += slot <= 4095;
  }
  CHECK(moved > kKeys / 8);
  for (size_t i = 0; i < 2; ++i) {
    CAPTURE(spec.shards[i].name);
    CHECK(WaitUntil(
        [&] { return KeysOn(http, cluster.address(i)) == present[spec.shards[i].name]; }, 30'000));
  }
}

TEST_CASE(
    "migration (etcd): the source, then the target, SIGKILLed mid-migration; etcd's map owns "
    "each slot once throughout, the migration completes, a second one meanwhile is refused") {
  EtcdCluster ec(2, 0);
  TestCluster& cluster = *ec.cluster;
  const std::string a = cluster.address(0), b = cluster.address(1);
  const std::string from = cluster.spec().shards[0].name, to = cluster.spec().shards[1].name;
  auto http_ptr = std::make_unique<SyncHttp>();
  auto ready = [&] {
    http_ptr = std::make_unique<SyncHttp>();  // a pooled connection to a dead process fails once
    for (const std::string& n : {a, b}) {
      REQUIRE(WaitUntil([&] { return WritesAllowed(*http_ptr, n); }, 30'000));
    }
  };
  ready();
  auto etcd_map = [&] { return ParseMapText(EtcdMapText(*http_ptr, ec.etcd.address())); };

  std::map<std::string, std::string> expect;  // "" = deleted
  std::vector<std::string> moving;
  for (int i = 0; moving.size() < 600; ++i) {
    const std::string key = "m" + std::to_string(i);
    if (SlotOf(key) < 2048) moving.push_back(key);
  }
  auto write = [&](size_t first, size_t last, const std::string& tag) {
    std::vector<Call> calls;
    for (size_t k = first; k < last; ++k) {
      calls.push_back(MakeCall(a, "PUT", "/kv/" + moving[k], tag + moving[k]));
      expect[moving[k]] = tag + moving[k];
    }
    std::vector<Reply> replies = http_ptr->SendAll(std::move(calls), 8);
    for (size_t k = first; k < last; ++k) {
      // A primary whose lease renewal is late on a loaded machine refuses
      // writes for a moment (503): the write is sent again.
      if (replies[k - first].status / 100 == 2) continue;
      REQUIRE_MESSAGE(
          WaitUntil(
              [&] {
                return http_ptr->Send(a, "PUT", "/kv/" + moving[k], tag + moving[k]).status / 100 ==
                       2;
              },
              30'000, 200),
          replies[k - first]);
    }
  };
  auto remove = [&](size_t first, size_t last) {
    for (size_t k = first; k < last; ++k) {
      int status = 0;  // 404 after a retry: the earlier attempt was applied
      REQUIRE(WaitUntil(
          [&] {
            status = http_ptr->Send(a, "DELETE", "/kv/" + moving[k]).status;
            return status == 204 || status == 404;
          },
          30'000, 200));
      expect[moving[k]] = "";
    }
  };
  write(0, 600, "one-");

  // Hold the cutover, so that "mid-migration" is a state, not a moment.
  Reply started = http_ptr->Send(b, "POST", "/admin/migrate?slots=0-2047&hold=1");
  REQUIRE_MESSAGE(started.status == 202, started);
  const MapView listed = etcd_map();
  CHECK(listed.migrations == 1);
  CHECK(listed.owner[0] == from);
  REQUIRE(WaitUntil([&] { return PhaseOn(*http_ptr, b) == "tail"; }, 30'000));

  // One migration at a time: another range, other direction, is refused.
  Reply second = http_ptr->Send(a, "POST", "/admin/migrate?slots=9000-9100");
  CHECK(second.status == 409);
  CHECK(IsJsonError(second));
  CHECK_MESSAGE(second.body.find("one migration at a time") != std::string::npos, second);
  CHECK(etcd_map().migrations == 1);

  write(0, 100, "two-");  // reaches the target through the tail
  remove(100, 150);

  // The source dies; etcd still gives the slots to it alone.
  cluster.primary(0).Kill();
  MapView down = etcd_map();
  CHECK(SlotsWithoutOneOwner(down) == 0);
  CHECK(down.owner[0] == from);
  CHECK(down.migrations == 1);
  cluster.primary(0).StartAndWait();
  ready();
  write(150, 250, "three-");
  REQUIRE(WaitUntil([&] { return PhaseOn(*http_ptr, b) == "tail"; }, 30'000));

  // The target dies holding imported keys; meanwhile some of them are
  // deleted on the source, so they must not come back with the target.
  cluster.primary(1).Kill();
  down = etcd_map();
  CHECK(SlotsWithoutOneOwner(down) == 0);
  CHECK(down.owner[0] == from);
  http_ptr = std::make_unique<SyncHttp>();
  remove(250, 300);
  write(300, 350, "four-");
  cluster.primary(1).StartAndWait();  // resumes the migration from the map, without the hold
  ready();

  REQUIRE(WaitUntil(
      [&] {
        const MapView m = etcd_map();
        return m.migrations == 0 && m.owner[0] == to && m.owner[2047] == to;
      },
      60'000));
  const MapView done = etcd_map();
  CHECK(done.epoch > listed.epoch);
  CHECK(SlotsWithoutOneOwner(done) == 0);
  CHECK(done.owner[2048] == from);
  for (const std::string& n : {a, b}) {
    CAPTURE(n);
    CHECK(WaitUntil([&] { return EpochOf(*http_ptr, n) == done.epoch; }, 30'000));
  }
  // The source's copies are purged; every key reads as last written, via
  // either node, and the target holds exactly the live ones.
  CHECK(WaitUntil([&] { return KeysOn(*http_ptr, a) == 0; }, 30'000));
  const size_t live = CheckReadsAsWritten(*http_ptr, expect, {a, b});
  CHECK(KeysOn(*http_ptr, b) == static_cast<int64_t>(live));
  // Writes to the moved slots land on the target.
  CHECK(http_ptr->Send(a, "PUT", "/kv/" + moving[0], "five").status / 100 == 2);
  CHECK(KeysOn(*http_ptr, a) == 0);
}

TEST_CASE(
    "migration (etcd): distkv rebalance adds a new shard to etcd's map and gives it a third of "
    "the slots; every key stays readable, on its owner once") {
  EtcdCluster ec(2, 0);
  TestCluster& cluster = *ec.cluster;
  SyncHttp http;
  for (size_t i = 0; i < 2; ++i) {
    REQUIRE(WaitUntil([&] { return WritesAllowed(http, cluster.address(i)); }, 30'000));
  }
  std::vector<Call> puts;
  for (int i = 0; i < 300; ++i) {
    puts.push_back(MakeCall(cluster.address(i % 2), "PUT", "/kv/r" + std::to_string(i),
                            "v" + std::to_string(i)));
  }
  for (const Reply& r : http.SendAll(std::move(puts), 8)) REQUIRE(r.status / 100 == 2);
  const MapView before = ParseMapText(EtcdMapText(http, ec.etcd.address()));

  // The new shard: in the config with slots = [], its node started with it.
  ClusterSpec three = ec.spec;
  three.shards.push_back(
      ShardSpec{"Hyderabad", 2, "127.0.0.1:" + std::to_string(FreePorts(1)[0]), {}});
  const std::string config = cluster.dir().Sub("three.toml");
  WriteFile(config, three.ToToml() + "slots = []\n");
  Node added("Hyderabad", "Hyderabad", three.shards[2].address,
             {"serve", "--config", config, "--shard", "Hyderabad", "--data",
              cluster.dir().Sub("data-Hyderabad"), "--listen", three.shards[2].address},
             cluster.dir().Sub("Hyderabad.log"));
  added.StartAndWait();
  REQUIRE(WaitUntil([&] { return WritesAllowed(http, added.address()); }, 30'000));

  CHECK(RunDistkv(cluster.dir(), "rebalance", {"rebalance", "--config", config}) == 0);
  const MapView after = ParseMapText(EtcdMapText(http, ec.etcd.address()));
  CHECK(after.epoch > before.epoch);
  CHECK(after.migrations == 0);
  CHECK(SlotsWithoutOneOwner(after) == 0);
  std::map<std::string, size_t> slots_of;
  for (const std::string& o : after.owner) slots_of[o]++;
  CHECK(slots_of["Hyderabad"] >= kSlots / 3 - 2);
  CHECK(slots_of["Hyderabad"] <= kSlots / 3 + 2);
  std::map<std::string, int64_t> present;
  for (int i = 0; i < 300; ++i) {
    const std::string key = "r" + std::to_string(i);
    Reply r = http.Get(cluster.address(0), "/kv/" + key);
    CAPTURE(key);
    CHECK(r.status == 200);
    CHECK(r.body == "v" + std::to_string(i));
    present[after.owner[SlotOf(key)]]++;
  }
  CHECK(present["Hyderabad"] > 50);
  const std::vector<std::pair<std::string, std::string>> nodes = {
      {cluster.spec().shards[0].name, cluster.address(0)},
      {cluster.spec().shards[1].name, cluster.address(1)},
      {"Hyderabad", added.address()}};
  for (const auto& [name, address] : nodes) {
    CAPTURE(name);
    CHECK(WaitUntil([&] { return KeysOn(http, address) == present[name]; }, 30'000));
  }
}

}  // namespace distkv::clustertest
