// Planning slot moves: which ranges `distkv reshard` and `distkv rebalance`
// hand to which shard. Pure functions of the cluster map, so a command that
// was interrupted plans again from the map it finds and only the moves not
// yet done remain.
#pragma once

#include <string>
#include <vector>

#include "src/cluster/cluster_map.h"

namespace distkv {

struct SlotMove {
  SlotRange slots;
  std::string source;
  std::string target;
};

// The parts of `slots` that `target` does not own yet, one move per
// contiguous run with a single owner, in slot order.
std::vector<SlotMove> PlanReshard(const ClusterMap& map, SlotRange slots,
                                  const std::string& target);

// Moves that leave every shard not in `drain` with an equal share of the
// slots (16384 / N, the first 16384 % N shards by idx one more) and drained
// shards with none. Each shard over its share gives up its highest slots;
// each shard under it receives them in slot order, so a shard added to N
// equal shards takes about 1/(N+1) of every other shard's slots and nothing
// else moves.
std::vector<SlotMove> PlanRebalance(const ClusterMap& map, const std::vector<std::string>& drain);

}  // namespace distkv
