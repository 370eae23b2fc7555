// Key -> slot -> shard, and why hash slots: growing 4 -> 5 shards moves about
// a fifth of the keys, where the seeds' hash % N moves about four fifths.
#include <doctest/doctest.h>
#include <xxhash.h>

#include "src/cluster/shard_map.h"

namespace {

std::vector<distkv::ShardConfig> DefaultShards(int n) {
  std::vector<distkv::ShardConfig> shards;
  for (int i = 0; i < n; ++i) {
    distkv::ShardConfig s;
    s.name = "s" + std::to_string(i);
    s.idx = i;
    s.address = "127.0.0.1:" + std::to_string(9000 + i);
    s.slots.push_back({static_cast<uint32_t>(i * distkv::kSlotCount / n),
                       static_cast<uint32_t>((i + 1) * distkv::kSlotCount / n - 1)});
    shards.push_back(s);
  }
  return shards;
}

}  // namespace

TEST_CASE("a key's slot is XXH3_64bits(key) % 16384") {
  for (const std::string& key :
       {std::string("a"), std::string("hello"), std::string("\0bin\xff", 5)}) {
    CHECK(distkv::SlotOf(key) == XXH3_64bits(key.data(), key.size()) % 16384);
  }
}

TEST_CASE("contiguous ranges by idx own every slot") {
  distkv::ShardMap map(DefaultShards(4));
  CHECK(map.OwnerOfSlot(0) == 0);
  CHECK(map.OwnerOfSlot(4095) == 0);
  CHECK(map.OwnerOfSlot(4096) == 1);
  CHECK(map.OwnerOfSlot(16383) == 3);
  CHECK(map.Find("s2") == 2);
  CHECK(map.Find("nope") == -1);
}

TEST_CASE("4 -> 5 shards: slots move about a fifth of the keys; hash % N about four fifths") {
  // The fifth shard takes the tail of each existing range (as an operator
  // would list in its `slots`), so every old shard gives up a fifth of its
  // keys and nothing else moves.
  std::vector<distkv::ShardConfig> grown = DefaultShards(4);
  distkv::ShardConfig fifth;
  fifth.name = "s4";
  fifth.idx = 4;
  fifth.address = "127.0.0.1:9004";
  for (auto& s : grown) {
    distkv::SlotRange& r = s.slots[0];
    const uint32_t give = (r.last - r.first + 1) / 5;
    fifth.slots.push_back({r.last - give + 1, r.last});
    r.last -= give;
  }
  grown.push_back(fifth);
  distkv::ShardMap four(DefaultShards(4)), five(grown), resplit(DefaultShards(5));

  const int kKeys = 100000;
  int moved_slots = 0, moved_resplit = 0, moved_modulo = 0, to_new = 0;
  for (int i = 0; i < kKeys; ++i) {
    std::string key = "key:" + std::to_string(i);
    const size_t before = four.OwnerOfKey(key), after = five.OwnerOfKey(key);
    if (before != after) {
      moved_slots++;
      if (after == 4) to_new++;
    }
    if (before != resplit.OwnerOfKey(key)) moved_resplit++;
    const uint64_t h = XXH3_64bits(key.data(), key.size());
    if (h % 4 != h % 5) moved_modulo++;
  }
  const double slots_fraction = double(moved_slots) / kKeys;
  const double resplit_fraction = double(moved_resplit) / kKeys;
  const double modulo_fraction = double(moved_modulo) / kKeys;
  MESSAGE("moved: slots " << slots_fraction << ", equal re-split " << resplit_fraction
                          << ", hash % N " << modulo_fraction);
  CHECK(to_new == moved_slots);  // keys only ever move to the new shard
  CHECK(slots_fraction == doctest::Approx(0.2).epsilon(0.05));
  CHECK(modulo_fraction == doctest::Approx(0.8).epsilon(0.05));
  // Re-splitting into five equal contiguous ranges by idx moves half.
  CHECK(resplit_fraction == doctest::Approx(0.5).epsilon(0.05));
}
