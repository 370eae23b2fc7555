// ShardMap: which shard owns a key.
//
// A key's slot is XXH3_64bits(key) % 16384. Slots are split into contiguous,
// equal ranges by shard idx unless a shard lists its own `slots`. Growing the
// cluster from N to N+1 shards with the default split therefore moves about
// 1/(N+1) of the keys, where `hash % N` would move nearly all of them.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "src/cluster/config.h"

namespace distkv {

uint32_t SlotOf(std::string_view key);

class ShardMap {
 public:
  explicit ShardMap(const std::vector<ShardConfig>& shards);

  // Position in shards() of the shard owning slot / key.
  size_t OwnerOfSlot(uint32_t slot) const { return owner_[slot]; }
  size_t OwnerOfKey(std::string_view key) const { return owner_[SlotOf(key)]; }

  const std::vector<ShardConfig>& shards() const { return shards_; }
  // Position of the shard called name, or -1.
  int Find(std::string_view name) const;

 private:
  std::vector<ShardConfig> shards_;
  std::vector<uint16_t> owner_;  // slot -> position in shards_
};

}  // namespace distkv
