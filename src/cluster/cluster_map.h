// ClusterMap: the versioned answer to "who serves which slots".
//
// sharding.toml is the map's starting point, epoch 0. Failover (and, later,
// slot migration) changes it: every change produces a map with a higher
// epoch, and a node that learns a map with a higher epoch than its own
// switches to it. The epoch only grows, so two maps can always be ordered and
// a node never goes back to an older one. Who may create a new epoch is not
// decided here: an operator's `distkv promote`, or the etcd coordinator, whose
// leader key makes epochs unique.
//
// On the wire (the /internal/cluster-map endpoint) and on disk (the file
// cluster_map.toml in a node's data directory) a map is text in the format of
// sharding.toml's [[shards]] entries, preceded by its epoch:
//
//   epoch = 3
//   [[shards]]
//   name = "Delhi"
//   idx = 0
//   address = "127.0.0.22:8080"          # the primary
//   replicas = ["127.0.0.2:8080"]
//   slots = [[0, 4095]]
//
// so the config loader validates a received map exactly as it validates a
// config file (names, addresses, every slot owned exactly once). A shard that
// owns no slot (added, not yet given any; or drained) says `slots = []`.
//
// Slot migrations in progress follow the epoch line, one inline table each:
//
//   migrations = [{id = 7, slots = "0-1023", source = "Delhi", target = "Mumbai",
//                  state = "importing"}]
//
// While a migration is listed, its slots still belong to the source; the
// target holds what it has imported so far, invisible (see
// src/cluster/migration.h). The map that moves the slots to the target also
// drops the migration, so ownership changes in one epoch.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "src/cluster/config.h"

namespace distkv {

struct Migration {
  uint64_t id = 0;  // unique in the cluster: the epoch of the map that started it
  SlotRange slots;
  std::string source;  // shard names
  std::string target;
  std::string state = "importing";
};

struct ClusterMap {
  uint64_t epoch = 0;
  std::vector<ShardConfig> shards;  // sorted by idx, slots always explicit
  std::vector<Migration> migrations;
};

// Position in map.shards of the shard called name, or -1.
int FindShard(const ClusterMap& map, const std::string& name);
// The migration whose slot range holds slot, or nullptr.
const Migration* MigrationOfSlot(const ClusterMap& map, uint32_t slot);
// Whether `shard` owns slot in map.
bool OwnsSlot(const ShardConfig& shard, uint32_t slot);

// The map under epoch + 1 that starts moving `slots` from the shard owning
// them (all of them one shard's) to `target`. Refused while another migration
// is listed (one at a time), when a slot is already the target's, or the names
// are unknown.
bool StartedMigrationMap(const ClusterMap& current, SlotRange slots, const std::string& target,
                         ClusterMap* out, std::string* error);
// The map under epoch + 1 where migration id's slots belong to its target and
// the migration is gone (the cutover), or, with commit = false, where the
// migration is dropped and the slots stay with the source (a rollback).
bool FinishedMigrationMap(const ClusterMap& current, uint64_t id, bool commit, ClusterMap* out,
                          std::string* error);
// The map under epoch + 1 that adds `shard` (a new idx), owning no slot.
bool AddedShardMap(const ClusterMap& current, const ShardConfig& shard, ClusterMap* out,
                   std::string* error);
std::string EncodeClusterMap(const ClusterMap& map);
// False with *error (naming `source`) when the text is not a valid map.
bool DecodeClusterMap(const std::string& text, const std::string& source, ClusterMap* map,
                      std::string* error);

// The map after `replica` (an address listed among shard's replicas) takes
// over as the shard's primary under epoch + 1: the old primary becomes one of
// its replicas, so it rejoins as such when it comes back.
bool PromotedMap(const ClusterMap& current, const std::string& shard, const std::string& replica,
                 ClusterMap* out, std::string* error);

// Where `address` serves in `map`: the position of its shard and whether it
// is that shard's primary. False when the map does not name the address.
bool FindNode(const ClusterMap& map, const std::string& address, size_t* shard, bool* primary);

// A node's copy of the newest map it has adopted, in its data directory
// (replaced atomically: temp file, fsync, rename, fsync of the directory).
inline constexpr const char* kClusterMapFile = "cluster_map.toml";
bool SaveClusterMap(const std::string& dir, const ClusterMap& map, std::string* error);
// Replaces dir/name with text: temp file, fdatasync, rename, fsync of dir.
bool WriteFileAtomically(const std::string& dir, const std::string& name, const std::string& text,
                         std::string* error);
// True and *map when dir holds a valid map; false without error when there is
// none; false with *error when it is damaged.
bool LoadClusterMap(const std::string& dir, ClusterMap* map, std::string* error);

}  // namespace distkv
