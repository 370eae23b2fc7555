// The cluster map's slot migrations: their text form, the maps that start,
// finish and roll them back, shards that own nothing, and the planner behind
// `distkv reshard` and `distkv rebalance`.
#include <doctest/doctest.h>

#include <string>

#include "src/cluster/cluster_map.h"
#include "src/cluster/migration.h"
#include "src/cluster/rebalance.h"

namespace distkv {
namespace {

ClusterMap Shards(const std::string& extra = "") {
  ClusterConfig config;
  std::string error;
  REQUIRE_MESSAGE(ParseConfig(R"(
[[shards]]
name = "Delhi"
idx = 0
address = "127.0.0.2:8080"
[[shards]]
name = "Mumbai"
idx = 1
address = "127.0.0.3:8080"
[[shards]]
name = "Hyderabad"
idx = 2
address = "127.0.0.4:8080"
)" + extra,
                              "test.toml", &config, &error),
                  error);
  return ClusterMap{0, config.shards, {}};
}

uint64_t SlotsOf(const ShardConfig& s) {
  uint64_t n = 0;
  for (const SlotRange& r : s.slots) n += r.last - r.first + 1;
  return n;
}

}  // namespace

TEST_CASE("config: a shard with slots = [] owns nothing and the others split the slots as before") {
  ClusterMap map = Shards(
      "[[shards]]\nname = \"Chennai\"\nidx = 3\naddress = \"127.0.0.5:8080\"\n"
      "slots = []\n");
  REQUIRE(map.shards.size() == 4);
  CHECK(map.shards[3].slots.empty());
  CHECK(map.shards[3].owns_nothing);
  CHECK(map.shards[0].slots[0].first == 0);
  CHECK(map.shards[0].slots[0].last == 5460);
  CHECK(map.shards[2].slots[0].last == kSlotCount - 1);
}

TEST_CASE("cluster map: migrations and empty shards survive encode and decode") {
  ClusterMap map;
  std::string error;
  REQUIRE(StartedMigrationMap(Shards(), SlotRange{100, 200}, "Mumbai", &map, &error));
  map.shards[2].slots.clear();  // (not a valid map, only the field's form is checked below)
  ClusterMap moved;
  REQUIRE(StartedMigrationMap(Shards(), SlotRange{0, 99}, "Hyderabad", &moved, &error));
  REQUIRE(FinishedMigrationMap(moved, moved.migrations[0].id, true, &map, &error));
  REQUIRE(StartedMigrationMap(map, SlotRange{5461, 5470}, "Hyderabad", &map, &error));
  ClusterMap back;
  REQUIRE_MESSAGE(DecodeClusterMap(EncodeClusterMap(map), "wire", &back, &error), error);
  CHECK(back.epoch == map.epoch);
  REQUIRE(back.migrations.size() == 1);
  CHECK(back.migrations[0].id == map.migrations[0].id);
  CHECK(back.migrations[0].slots.first == 5461);
  CHECK(back.migrations[0].slots.last == 5470);
  CHECK(back.migrations[0].source == "Mumbai");
  CHECK(back.migrations[0].target == "Hyderabad");
  CHECK(back.migrations[0].state == "importing");
  CHECK(EncodeClusterMap(back) == EncodeClusterMap(map));

  // A drained shard says slots = [] and stays empty.
  ClusterMap drained = Shards();
  drained.shards[1].slots.clear();
  drained.shards[1].owns_nothing = true;
  drained.shards[0].slots = {SlotRange{0, 10921}};
  REQUIRE_MESSAGE(DecodeClusterMap(EncodeClusterMap(drained), "wire", &back, &error), error);
  CHECK(back.shards[1].slots.empty());
  CHECK(back.shards[0].slots[0].last == 10921);
}

TEST_CASE("cluster map: a damaged migration line is refused with the source named") {
  ClusterMap map;
  std::string error;
  const std::string shards =
      EncodeClusterMap(Shards()).substr(EncodeClusterMap(Shards()).find('\n'));
  CHECK_FALSE(
      DecodeClusterMap("epoch = 3\nmigrations = [{id = 1, slots = \"9-2\", source = "
                       "\"Delhi\", target = \"Mumbai\", state = \"importing\"}]" +
                           shards,
                       "peer", &map, &error));
  CHECK(error.find("peer") != std::string::npos);
  CHECK_FALSE(
      DecodeClusterMap("epoch = 3\nmigrations = [{id = 1, slots = \"1-2\", source = "
                       "\"Delhi\", target = \"Nowhere\", state = \"importing\"}]" +
                           shards,
                       "peer", &map, &error));
  CHECK_FALSE(DecodeClusterMap("epoch = 3\nfrobnicate = 1" + shards, "peer", &map, &error));
}

TEST_CASE("cluster map: starting a migration checks the slots; finishing moves them in one epoch") {
  ClusterMap base = Shards(), started, done, back;
  std::string error;
  CHECK_FALSE(StartedMigrationMap(base, SlotRange{5000, 6000}, "Hyderabad", &started, &error));
  CHECK(error.find("more than one shard") != std::string::npos);
  CHECK_FALSE(StartedMigrationMap(base, SlotRange{0, 10}, "Delhi", &started, &error));
  CHECK_FALSE(StartedMigrationMap(base, SlotRange{0, 10}, "Nowhere", &started, &error));
  REQUIRE(StartedMigrationMap(base, SlotRange{1000, 1999}, "Hyderabad", &started, &error));
  CHECK(started.epoch == 1);
  CHECK(started.migrations[0].source == "Delhi");
  CHECK(SlotsOf(started.shards[0]) == 5461);  // still the source's
  CHECK(MigrationOfSlot(started, 1500) != nullptr);
  CHECK(MigrationOfSlot(started, 999) == nullptr);
  CHECK_FALSE(StartedMigrationMap(started, SlotRange{1999, 2000}, "Mumbai", &back, &error));
  // One migration at a time, also of other slots to another shard.
  CHECK_FALSE(StartedMigrationMap(started, SlotRange{6000, 6100}, "Delhi", &back, &error));
  CHECK(error.find("one migration at a time") != std::string::npos);
  CHECK(error.find("1000-1999") != std::string::npos);

  REQUIRE(FinishedMigrationMap(started, started.migrations[0].id, true, &done, &error));
  CHECK(done.epoch == 2);
  CHECK(done.migrations.empty());
  CHECK(SlotsOf(done.shards[0]) == 5461 - 1000);
  CHECK(SlotsOf(done.shards[2]) == 5462 + 1000);
  CHECK(OwnsSlot(done.shards[2], 1500));
  CHECK_FALSE(OwnsSlot(done.shards[0], 1500));
  CHECK(OwnsSlot(done.shards[0], 999));
  CHECK(OwnsSlot(done.shards[0], 2000));
  // The result is a valid map: every slot owned once.
  REQUIRE_MESSAGE(DecodeClusterMap(EncodeClusterMap(done), "wire", &back, &error), error);

  REQUIRE(FinishedMigrationMap(started, started.migrations[0].id, false, &back, &error));
  CHECK(back.migrations.empty());
  CHECK(SlotsOf(back.shards[0]) == 5461);
  CHECK_FALSE(FinishedMigrationMap(done, 12345, true, &back, &error));
}

TEST_CASE("rebalance plan: a 4th shard takes a quarter of the slots, some from each shard") {
  ClusterMap map;
  std::string error;
  ShardConfig chennai;
  chennai.name = "Chennai";
  chennai.idx = 3;
  chennai.address = "127.0.0.5:8080";
  REQUIRE(AddedShardMap(Shards(), chennai, &map, &error));
  CHECK(map.shards[3].slots.empty());
  std::vector<SlotMove> moves = PlanRebalance(map, {});
  REQUIRE(moves.size() == 3);
  uint64_t moved = 0;
  for (const SlotMove& m : moves) {
    CHECK(m.target == "Chennai");
    moved += m.slots.last - m.slots.first + 1;
    ClusterMap next;
    REQUIRE(StartedMigrationMap(map, m.slots, m.target, &next, &error));
    REQUIRE(FinishedMigrationMap(next, next.migrations[0].id, true, &map, &error));
  }
  CHECK(moved == kSlotCount / 4);
  for (const ShardConfig& s : map.shards) CHECK(SlotsOf(s) == kSlotCount / 4);
  CHECK(PlanRebalance(map, {}).empty());  // balanced: nothing left to do

  // Draining a shard gives its slots to the others, evenly.
  moves = PlanRebalance(map, {"Mumbai"});
  for (const SlotMove& m : moves) {
    CHECK(m.source == "Mumbai");
    CHECK(m.target != "Mumbai");
  }
  for (const SlotMove& m : moves) {
    ClusterMap next;
    REQUIRE(StartedMigrationMap(map, m.slots, m.target, &next, &error));
    REQUIRE(FinishedMigrationMap(next, next.migrations[0].id, true, &map, &error));
  }
  CHECK(SlotsOf(map.shards[1]) == 0);
  CHECK(SlotsOf(map.shards[0]) == 5462);
  CHECK(SlotsOf(map.shards[3]) == 5461);
}

TEST_CASE("reshard plan: only the parts the target does not own, split by owner") {
  ClusterMap map = Shards();
  std::vector<SlotMove> moves = PlanReshard(map, SlotRange{5000, 11000}, "Mumbai");
  REQUIRE(moves.size() == 2);
  CHECK(moves[0].source == "Delhi");
  CHECK(moves[0].slots.first == 5000);
  CHECK(moves[0].slots.last == 5460);
  CHECK(moves[1].source == "Hyderabad");
  CHECK(moves[1].slots.first == 10922);
  CHECK(moves[1].slots.last == 11000);
}

TEST_CASE("migration pause file and slot range text") {
  MigrationPause p{true, 7, SlotRange{10, 20}, "New Delhi", 99}, back;
  REQUIRE(DecodeMigrationPause(EncodeMigrationPause(p), &back));
  CHECK(back.active);
  CHECK(back.id == 7);
  CHECK(back.slots.last == 20);
  CHECK(back.target == "New Delhi");
  CHECK(back.lsn == 99);
  CHECK_FALSE(DecodeMigrationPause("7 20 10 1 x", &back));
  SlotRange r;
  CHECK(ParseSlotRangeText("0-1023", &r));
  CHECK(r.last == 1023);
  CHECK(ParseSlotRangeText("17", &r));
  CHECK(r.first == 17);
  CHECK_FALSE(ParseSlotRangeText("5-1", &r));
  CHECK_FALSE(ParseSlotRangeText("0-16384", &r));
  CHECK_FALSE(ParseSlotRangeText("-1", &r));
  CHECK_FALSE(ParseSlotRangeText("", &r));
}

}  // namespace distkv
