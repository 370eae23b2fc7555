#include "src/client/slot_map.h"

#include <nlohmann/json.hpp>

#include "src/common/key_slot.h"

namespace distkv::client {

bool SlotMap::Parse(std::string_view text, std::string* error) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object() || !doc.contains("shards") ||
      !doc["shards"].is_array() || doc["shards"].empty()) {
    *error = "the /cluster answer is not a cluster map";
    return false;
  }
  std::vector<ShardInfo> shards;
  std::vector<uint16_t> owner(kSlotCount, UINT16_MAX);
  try {
    for (const auto& s : doc["shards"]) {
      ShardInfo info;
      info.name = s.at("name").get<std::string>();
      info.idx = s.value("idx", static_cast<int>(shards.size()));
      info.primary = s.at("primary").at("address").get<std::string>();
      if (s.contains("replicas")) {
        for (const auto& r : s["replicas"]) info.replicas.push_back(r.at("address"));
      }
      for (const auto& range : s.at("slots")) {
        const uint32_t first = range.at(0).get<uint32_t>();
        const uint32_t last = range.at(1).get<uint32_t>();
        if (first > last || last >= kSlotCount) {
          *error = "shard " + info.name + " has a bad slot range";
          return false;
        }
        for (uint32_t slot = first; slot <= last; ++slot)
          owner[slot] = static_cast<uint16_t>(shards.size());
      }
      shards.push_back(std::move(info));
    }
  } catch (const nlohmann::json::exception& e) {
    *error = std::string("the cluster map is malformed: ") + e.what();
    return false;
  }
  for (uint32_t slot = 0; slot < kSlotCount; ++slot) {
    if (owner[slot] == UINT16_MAX) {
      *error = "the cluster map leaves slot " + std::to_string(slot) + " without an owner";
      return false;
    }
  }
  epoch_ =
      doc.contains("epoch") && doc["epoch"].is_number_unsigned() ? doc["epoch"].get<uint64_t>() : 0;
  shards_ = std::move(shards);
  owner_ = std::move(owner);
  return true;
}

size_t SlotMap::OwnerOfKey(std::string_view key) const { return owner_[KeySlot(key)]; }

std::vector<std::string> SlotMap::AllNodes() const {
  std::vector<std::string> nodes;
  for (const ShardInfo& s : shards_) nodes.push_back(s.primary);
  for (const ShardInfo& s : shards_)
    nodes.insert(nodes.end(), s.replicas.begin(), s.replicas.end());
  return nodes;
}

}  // namespace distkv::client
