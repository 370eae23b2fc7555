// The hash slot of a key: XXH3_64bits(key) % 16384. One definition for the
// node's shard map (src/cluster) and the client library (src/client), which
// must agree on it byte for byte. Header only, depends on xxHash alone.
#pragma once

#include <xxhash.h>

#include <cstdint>
#include <string_view>

namespace distkv {

inline constexpr uint32_t kSlotCount = 16384;

inline uint32_t KeySlot(std::string_view key) {
  return static_cast<uint32_t>(XXH3_64bits(key.data(), key.size()) % kSlotCount);
}

}  // namespace distkv
