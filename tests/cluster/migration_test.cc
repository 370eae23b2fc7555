// Slot migration with real processes: /purge, a shard added and rebalanced
// under distkv-bench --verify, and migrations whose source or target is
// SIGKILLed halfway. Ownership is recomputed here from the slot ranges the
// nodes publish in /cluster and the harness's own XXH3 arithmetic, so the
// checks do not share the node's bugs.
#include <doctest/doctest.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "tests/cluster/harness.h"
#include "tests/cluster/http_sync.h"

namespace distkv::clustertest {
namespace {

// slot -> owner's name, from a node's /cluster; empty while a migration runs.
std::vector<std::string> SlotOwners(SyncHttp& http, const std::string& address,
                                    size_t* migrations = nullptr) {
  nlohmann::json c = GetJson(http, address, "/cluster");
  std::vector<std::string> owner(kSlots);
  for (const auto& s : c.at("shards")) {
    for (const auto& r : s.at("slots")) {
      for (size_t slot = r[0].get<size_t>(); slot <= r[1].get<size_t>(); ++slot)
        owner[slot] = s.at("name").get<std::string>();
    }
  }
  if (migrations) *migrations = c.at("migrations").size();
  return owner;
}

std::unique_ptr<Node> MakeNode(const TempDir& dir, const std::string& config,
                               const std::string& shard, const std::string& address,
                               bool replica = false) {
  const std::string label = shard + (replica ? "-replica" : "");
  std::vector<std::string> args = {
      "serve",    "--config", config, "--shard", shard, "--data", dir.Sub("data-" + label),
      "--listen", address};
  if (replica) args.push_back("--replica");
  return std::make_unique<Node>(label, shard, address, args, dir.Sub(label + ".log"));
}

int64_t Field(const nlohmann::json& j, std::initializer_list<const char*> path) {
  const nlohmann::json* at = &j;
  for (const char* name : path) at = &at->at(name);
  return at->get<int64_t>();
}

}  // namespace

TEST_CASE(
    "migration: /purge drops exactly the keys of slots the shard does not own, and its "
    "replica follows") {
  TempDir dir;
  ClusterSpec spec = LocalCluster(2, 1);
  // First Delhi owns every slot (Mumbai none); then the config splits them.
  const std::string all = dir.Sub("all.toml"), split = dir.Sub("split.toml");
  WriteFile(all, spec.ToToml() + "slots = []\n");
  WriteFile(split, spec.ToToml());
  const ShardSpec& delhi = spec.shards[0];
  auto primary = MakeNode(dir, all, delhi.name, delhi.address);
  auto replica = MakeNode(dir, all, delhi.name, delhi.replicas[0], true);
  primary->StartAndWait();
  replica->StartAndWait();

  SyncHttp http;
  std::vector<Call> puts;
  for (int i = 0; i < 400; ++i) {
    puts.push_back(
        MakeCall(delhi.address, "PUT", "/kv/p" + std::to_string(i), "v" + std::to_string(i)));
  }
  for (const Reply& r : http.SendAll(std::move(puts), 8)) REQUIRE(r.status == 201);
  size_t own = 0;
  for (int i = 0; i < 400; ++i) own += spec.OwnerOf("p" + std::to_string(i)) == 0;
  REQUIRE(own > 100);
  REQUIRE(own < 300);
  REQUIRE(WaitUntil([&] { return KeysOn(http, delhi.replicas[0]) == 400; }, 30'000));

  // Restarted with the split config, Delhi still holds Mumbai's keys.
  for (auto* n : {primary.get(), replica.get()}) {
    CHECK(n->Stop() == 0);
    n->args()[2] = split;
  }
  primary->StartAndWait();
  replica->StartAndWait();
  CHECK(KeysOn(http, delhi.address) == 400);

  Reply denied = http.Send(delhi.replicas[0], "POST", "/purge");
  CHECK(denied.status == 403);
  nlohmann::json purged = GetJson(http, delhi.address, "/purge");
  CHECK(purged.at("purged").get<size_t>() == 400 - own);
  CHECK(purged.at("keys").get<size_t>() == own);
  CHECK(KeysOn(http, delhi.address) == static_cast<int64_t>(own));
  CHECK(WaitUntil([&] { return KeysOn(http, delhi.replicas[0]) == static_cast<int64_t>(own); },
                  30'000));
  // What stays is exactly Delhi's keys, with their values.
  for (int i = 0; i < 400; ++i) {
    const std::string key = "p" + std::to_string(i);
    if (spec.OwnerOf(key) != 0) continue;
    Reply r = http.Get(delhi.address, "/kv/" + key);
    CHECK_MESSAGE(r.status == 200, key);
    CHECK(r.body == "v" + std::to_string(i));
  }
  // A second purge finds nothing.
  CHECK(GetJson(http, delhi.address, "/purge").at("purged").get<size_t>() == 0);
  // The migration endpoints refuse a number that is not one, instead of reading it as 0.
  for (const std::string query : {"after=12x", "after=-1", "after="}) {
    Reply bad = http.Get(delhi.address, "/internal/slots/tail?slots=0-9&" + query);
    CHECK_MESSAGE(bad.status == 400, query, " ", bad.body);
  }
  for (const std::string path :
       {"/internal/slots/pause?slots=0-9&id=", "/internal/slots/cutover-check?id=z"}) {
    Reply bad = http.Send(delhi.address, "POST", path);
    CHECK_MESSAGE(bad.status == 400, path, " ", bad.body);
  }
  CHECK(http.Get(delhi.address, "/internal/slots/tail?slots=0-9&after=0").status == 200);
  CHECK(primary->Stop() == 0);
  CHECK(replica->Stop() == 0);
}

TEST_CASE(
    "migration: a 4th shard added and rebalanced under distkv-bench --verify; every key "
    "ends on its owner exactly once") {
  TempDir dir;
  ClusterSpec spec = LocalCluster(4);
  spec.fsync = "never";
  const std::string replica_address = "127.0.0.1:" + std::to_string(FreePorts(1)[0]);
  spec.shards[3].replicas.push_back(replica_address);
  ClusterSpec three = spec;
  three.shards.resize(3);
  const std::string config3 = dir.Sub("three.toml"), config4 = dir.Sub("four.toml");
  WriteFile(config3, three.ToToml());
  WriteFile(config4, spec.ToToml() + "slots = []\n");  // the new shard owns nothing yet
  std::vector<std::unique_ptr<Node>> nodes;
  for (size_t i = 0; i < 3; ++i) {
    nodes.push_back(MakeNode(dir, config3, spec.shards[i].name, spec.shards[i].address));
  }
  nodes.push_back(MakeNode(dir, config4, spec.shards[3].name, spec.shards[3].address));
  nodes.push_back(MakeNode(dir, config4, spec.shards[3].name, replica_address, true));
  for (auto& n : nodes) n->StartAndWait();

  const size_t kKeys = 3000;
  const std::string report = dir.Sub("bench.json");
  Process bench("distkv-bench", BenchBinary(),
                {"--config",
                 config4,
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
                 "11",
                 "--json",
                 report},
                dir.Sub("bench.log"));
  bench.Start();
  SyncHttp http;
  // Start once the preload has written every key.
  REQUIRE_MESSAGE(WaitUntil(
                      [&] {
                        int64_t sum = 0;
                        for (size_t i = 0; i < 3; ++i) sum += KeysOn(http, spec.shards[i].address);
                        return sum == static_cast<int64_t>(kKeys);
                      },
                      60'000),
                  bench.LogTail());
  CHECK(RunDistkv(dir, "rebalance", {"rebalance", "--config", config4}) == 0);
  {
    // Its output is not a terminal: plain lines (no bar, no carriage
    // return), one per phase of each move, a line per move done, a summary.
    const std::string out = ReadFile(dir.Sub("rebalance.log"));
    size_t progress_lines = 0, done_lines = 0;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      if (line.rfind("slots ", 0) != 0 || line.find(" -> ") == std::string::npos) continue;
      if (line.find(": done, ") != std::string::npos) {
        done_lines++;
      } else if (line.find(" keys, ") != std::string::npos) {
        progress_lines++;
      }
    }
    CHECK_MESSAGE(progress_lines >= 3, out);  // at least one per move (as it starts)
    CHECK_MESSAGE(done_lines == 3, out);      // three shards each give the new one a range
    CHECK(out.find("moved 4096 slots in 3 migration(s)") != std::string::npos);
    CHECK(out.find('\r') == std::string::npos);
  }
  // The premise: the bench was still loading the cluster when the slots moved.
  CHECK_MESSAGE(bench.running(), "the bench ended before the rebalance did");
  const int code = bench.WaitForExit(180'000);
  CHECK_MESSAGE(code == 0, "distkv-bench exit code " << code << "\n" << bench.LogTail());
  const nlohmann::json r = nlohmann::json::parse(ReadFile(report));
  MESSAGE("during the rebalance: 5xx " << Field(r, {"all", "status", "5xx"}) << ", 4xx "
                                       << Field(r, {"all", "status", "4xx"}) << ", errors "
                                       << Field(r, {"all", "status", "errors"}));
  CHECK(Field(r, {"verify", "reads_checked"}) > 1000);
  CHECK_MESSAGE(Field(r, {"verify", "mismatches"}) == 0, ReadFile(report));
  CHECK(Field(r, {"all", "status", "timeouts"}) == 0);

  // The new map: the new shard owns a quarter of the slots, taken from each.
  size_t migrations = 1;
  std::vector<std::string> owner = SlotOwners(http, spec.shards[0].address, &migrations);
  CHECK(migrations == 0);
  std::map<std::string, size_t> slots_of;
  for (const std::string& o : owner) slots_of[o]++;
  CHECK(slots_of[spec.shards[3].name] == kSlots / 4);

  // Every key the bench wrote is readable, and held by its owner only.
  std::vector<Call> gets;
  for (size_t i = 0; i < kKeys; ++i)
    gets.push_back(MakeCall(spec.shards[i % 4].address, "GET",
                            "/kv/" + PercentEncode("key:" + std::to_string(i))));
  std::vector<Reply> replies = http.SendAll(std::move(gets), 16);
  std::map<std::string, int64_t> present;
  size_t moved = 0;
  for (size_t i = 0; i < kKeys; ++i) {
    CHECK_MESSAGE(replies[i].status == 200, "key:" << i << " " << replies[i]);
    const std::string& o = owner[SlotOf("key:" + std::to_string(i))];
    present[o]++;
    moved += o == spec.shards[3].name;
  }
  for (const ShardSpec& s : spec.shards) {
    CAPTURE(s.name);
    CHECK(WaitUntil([&] { return KeysOn(http, s.address) == present[s.name]; }, 30'000));
  }
  const double fraction = static_cast<double>(moved) / kKeys;
  MESSAGE("moved fraction " << fraction);
  CHECK(fraction > 0.2);
  CHECK(fraction < 0.3);
  // The new shard's replica received the imported records through its stream.
  CHECK(WaitUntil(
      [&] { return DigestOf(http, replica_address) == DigestOf(http, spec.shards[3].address); },
      30'000));
}

TEST_CASE(
    "migration: the source, then the target, SIGKILLed mid-migration; it completes and "
    "every key is on its owner once") {
  TempDir dir;
  ClusterSpec spec = LocalCluster(2);
  const std::string config = dir.Sub("sharding.toml");
  WriteFile(config, spec.ToToml());
  const std::string a = spec.shards[0].address, b = spec.shards[1].address;
  auto source = MakeNode(dir, config, spec.shards[0].name, a);
  auto target = MakeNode(dir, config, spec.shards[1].name, b);
  source->StartAndWait();
  target->StartAndWait();

  // The keys of slots 0-2047 (the source's), and what each should hold.
  // A fresh client after each kill: a pooled connection to the dead process fails once.
  auto http_ptr = std::make_unique<SyncHttp>();
  std::map<std::string, std::string> expect;  // "" = deleted
  std::vector<std::string> moving;
  for (int i = 0; moving.size() < 600; ++i) {
    const std::string key = "m" + std::to_string(i);
    if (SlotOf(key) < 2048) moving.push_back(key);
  }
  auto write = [&](size_t from, size_t to, const std::string& tag) {
    std::vector<Call> calls;
    for (size_t k = from; k < to; ++k) {
      calls.push_back(MakeCall(a, "PUT", "/kv/" + moving[k], tag + moving[k]));
      expect[moving[k]] = tag + moving[k];
    }
    for (const Reply& r : http_ptr->SendAll(std::move(calls), 8)) REQUIRE(r.status / 100 == 2);
  };
  auto remove = [&](size_t from, size_t to) {
    for (size_t k = from; k < to; ++k) {
      REQUIRE(http_ptr->Send(a, "DELETE", "/kv/" + moving[k]).status == 204);
      expect[moving[k]] = "";
    }
  };
  write(0, 600, "one-");

  // Hold the cutover, so that "mid-migration" is a state, not a moment.
  Reply started = http_ptr->Send(b, "POST", "/admin/migrate?slots=0-2047&hold=1");
  REQUIRE_MESSAGE(started.status == 202, started);
  auto phase = [&]() -> std::string {
    Reply r = http_ptr->Get(b, "/admin/migrate");
    if (r.status != 200) return "";
    nlohmann::json j = nlohmann::json::parse(r.body);
    if (j.at("migrations").empty()) return "none";
    return j.at("migrations")[0].value("phase", "");
  };
  REQUIRE(WaitUntil([&] { return phase() == "tail"; }, 30'000));
  write(0, 100, "two-");  // reaches the target through the tail
  remove(100, 150);

  // The source dies and comes back; it still owns the slots.
  source->Kill();
  source->StartAndWait();
  http_ptr = std::make_unique<SyncHttp>();
  write(150, 250, "three-");
  REQUIRE(WaitUntil([&] { return phase() == "tail"; }, 30'000));

  // The target dies holding imported keys; meanwhile some of them are
  // deleted on the source, so they must not come back with the target.
  target->Kill();
  http_ptr = std::make_unique<SyncHttp>();
  remove(250, 300);
  write(300, 350, "four-");
  target->StartAndWait();  // resumes the migration from the map, without the hold
  http_ptr = std::make_unique<SyncHttp>();

  REQUIRE(WaitUntil(
      [&] {
        size_t m = 1;
        std::vector<std::string> owner = SlotOwners(*http_ptr, b, &m);
        return m == 0 && owner[0] == spec.shards[1].name && owner[2047] == spec.shards[1].name;
      },
      60'000));
  // The source learns the map and forwards; its copies are purged.
  REQUIRE(WaitUntil([&] { return SlotOwners(*http_ptr, a)[0] == spec.shards[1].name; }, 30'000));
  CHECK(WaitUntil([&] { return KeysOn(*http_ptr, a) == 0; }, 30'000));
  const size_t live = CheckReadsAsWritten(*http_ptr, expect, {a, b});
  CHECK(KeysOn(*http_ptr, b) == static_cast<int64_t>(live));
  // Writes to the moved slots now land on the target.
  CHECK(http_ptr->Send(a, "PUT", "/kv/" + moving[0], "five").status / 100 == 2);
  CHECK(KeysOn(*http_ptr, a) == 0);
  CHECK(source->Stop() == 0);
  CHECK(target->Stop() == 0);
}

}  // namespace distkv::clustertest
