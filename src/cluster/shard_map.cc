#include "src/cluster/shard_map.h"

namespace distkv {

uint32_t SlotOf(std::string_view key) { return KeySlot(key); }

ShardMap::ShardMap(const std::vector<ShardConfig>& shards)
    : shards_(shards), owner_(kSlotCount, 0) {
  // LoadConfig has checked that the ranges cover every slot exactly once.
  for (size_t i = 0; i < shards_.size(); ++i) {
    for (const SlotRange& r : shards_[i].slots) {
      for (uint32_t slot = r.first; slot <= r.last; ++slot) owner_[slot] = static_cast<uint16_t>(i);
    }
  }
}

int ShardMap::Find(std::string_view name) const {
  for (size_t i = 0; i < shards_.size(); ++i) {
    if (shards_[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace distkv
