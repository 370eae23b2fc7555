#include "src/cluster/rebalance.h"

#include <algorithm>

namespace distkv {
namespace {

// slot -> position of its owner in map.shards.
std::vector<int> Owners(const ClusterMap& map) {
  std::vector<int> owner(kSlotCount, -1);
  for (size_t i = 0; i < map.shards.size(); ++i) {
    for (const SlotRange& r : map.shards[i].slots) {
      for (uint32_t s = r.first; s <= r.last; ++s) owner[s] = static_cast<int>(i);
    }
  }
  return owner;
}

// Runs of consecutive slots with the same source and target become one move.
void Append(std::vector<SlotMove>* moves, uint32_t slot, const std::string& source,
            const std::string& target) {
  if (!moves->empty()) {
    SlotMove& last = moves->back();
    if (last.slots.last + 1 == slot && last.source == source && last.target == target) {
      last.slots.last = slot;
      return;
    }
  }
  moves->push_back(SlotMove{SlotRange{slot, slot}, source, target});
}

}  // namespace

std::vector<SlotMove> PlanReshard(const ClusterMap& map, SlotRange slots,
                                  const std::string& target) {
  const std::vector<int> owner = Owners(map);
  std::vector<SlotMove> moves;
  for (uint32_t s = slots.first; s <= slots.last && s < kSlotCount; ++s) {
    if (owner[s] < 0 || map.shards[owner[s]].name == target) continue;
    Append(&moves, s, map.shards[owner[s]].name, target);
  }
  return moves;
}

std::vector<SlotMove> PlanRebalance(const ClusterMap& map, const std::vector<std::string>& drain) {
  const size_t n = map.shards.size();
  std::vector<bool> drained(n, false);
  size_t keeping = 0;
  for (size_t i = 0; i < n; ++i) {
    drained[i] = std::find(drain.begin(), drain.end(), map.shards[i].name) != drain.end();
    if (!drained[i]) keeping++;
  }
  if (keeping == 0) return {};
  std::vector<uint32_t> quota(n, 0);
  size_t rank = 0;
  for (size_t i = 0; i < n; ++i) {
    if (drained[i]) continue;
    quota[i] = static_cast<uint32_t>(kSlotCount / keeping + (rank < kSlotCount % keeping ? 1 : 0));
    rank++;
  }
  const std::vector<int> owner = Owners(map);
  std::vector<std::vector<uint32_t>> owned(n);
  for (uint32_t s = 0; s < kSlotCount; ++s) {
    if (owner[s] >= 0) owned[owner[s]].push_back(s);
  }
  // (slot, source) given up, in slot order.
  std::vector<std::pair<uint32_t, int>> spare;
  for (size_t i = 0; i < n; ++i) {
    for (size_t k = quota[i]; k < owned[i].size(); ++k) {
      spare.emplace_back(owned[i][k], static_cast<int>(i));
    }
  }
  std::sort(spare.begin(), spare.end());
  std::vector<SlotMove> moves;
  size_t next = 0;
  for (size_t i = 0; i < n && next < spare.size(); ++i) {
    for (size_t have = owned[i].size(); have < quota[i] && next < spare.size(); ++have) {
      Append(&moves, spare[next].first, map.shards[spare[next].second].name, map.shards[i].name);
      next++;
    }
  }
  return moves;
}

}  // namespace distkv
