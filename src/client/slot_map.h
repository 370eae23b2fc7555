// SlotMap: the client's copy of the cluster map, read from GET /cluster.
//
// It knows each shard's primary and replicas and which shard owns each of the
// 16384 slots, so the client sends a key straight to its owner (no forwarding
// hop). The map carries the cluster's epoch when the node reports one; a
// node that answers with a newer epoch (X-Distkv-Epoch), a 421, or a 307
// makes the client fetch the map again.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace distkv::client {

struct ShardInfo {
  std::string name;
  int idx = 0;
  std::string primary;                // host:port
  std::vector<std::string> replicas;  // host:port each
};

class SlotMap {
 public:
  // Parses the body of GET /cluster. False with *error when it is not one.
  bool Parse(std::string_view json, std::string* error);

  bool empty() const { return shards_.empty(); }
  uint64_t epoch() const { return epoch_; }
  const std::vector<ShardInfo>& shards() const { return shards_; }
  // Position in shards() of the shard owning key.
  size_t OwnerOfKey(std::string_view key) const;
  // Every node of the map, primaries first.
  std::vector<std::string> AllNodes() const;

 private:
  uint64_t epoch_ = 0;
  std::vector<ShardInfo> shards_;
  std::vector<uint16_t> owner_;  // slot -> position in shards_
};

}  // namespace distkv::client
