// Fuzz target: the cluster configuration loader (src/cluster/config.h).
//
// Arbitrary text goes through ParseConfig. It must either refuse it with a
// one-line message or accept a configuration that satisfies what the node
// relies on: at least one shard, shards sorted by idx with distinct names,
// idx and addresses, and the shards' slots covering 0..16383 exactly once.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>

#include "src/cluster/config.h"

namespace {

void Check(bool ok, const char* what, const std::string& text) {
  if (!ok) {
    fprintf(stderr, "check failed: %s\n--- config ---\n%s\n", what, text.c_str());
    abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  distkv::ClusterConfig config;
  std::string error;
  if (!distkv::ParseConfig(text, "fuzz.toml", &config, &error)) {
    Check(!error.empty(), "a refusal says why", text);
    Check(error.find('\n') == std::string::npos, "the message is one line", text);
    return 0;
  }
  Check(!config.shards.empty(), "at least one shard", text);
  std::set<std::string> names, addresses;
  std::vector<int> owner(distkv::kSlotCount, -1);
  for (size_t i = 0; i < config.shards.size(); ++i) {
    const distkv::ShardConfig& s = config.shards[i];
    Check(s.idx == static_cast<int>(i), "shards sorted by idx, 0..n-1", text);
    Check(names.insert(s.name).second, "distinct shard names", text);
    Check(addresses.insert(s.address).second, "distinct addresses", text);
    for (const std::string& r : s.replicas) {
      Check(addresses.insert(r).second, "a replica's address is its own", text);
    }
    for (const distkv::SlotRange& r : s.slots) {
      Check(r.first <= r.last && r.last < distkv::kSlotCount, "slot range in bounds", text);
      for (uint32_t slot = r.first; slot <= r.last; ++slot) {
        Check(owner[slot] == -1, "each slot owned once", text);
        owner[slot] = static_cast<int>(i);
      }
    }
  }
  for (int o : owner) Check(o != -1, "every slot owned", text);
  return 0;
}
