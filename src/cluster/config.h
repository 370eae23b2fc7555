// Cluster configuration: what sharding.toml says, validated.
//
// The seed projects' format stays valid (name, idx, address, replicas or
// replica per [[shards]] entry); every other key is optional with a default.
// A bad file is refused with one line that names the file, the line and the
// field ("sharding.toml:12: shards[1].address: ..."), so the operator knows
// where to look.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/http_server.h"
#include "net/tls_context.h"
#include "src/api/auth.h"
#include "src/common/key_slot.h"
#include "storage/store.h"

namespace distkv {

struct SlotRange {
  uint32_t first = 0;  // inclusive
  uint32_t last = 0;   // inclusive
};

struct ShardConfig {
  std::string name;
  int idx = 0;
  std::string address;                // primary "host:port"
  std::vector<std::string> replicas;  // "host:port" each
  std::vector<SlotRange> slots;       // empty: the contiguous default range for idx
  // `slots = []` given: the shard owns no slot (a shard being added, or one
  // drained by a rebalance) and takes no part in the default split.
  bool owns_nothing = false;
};

enum class RoutingMode { kProxy, kRedirect };

struct ClusterConfig {
  std::string source;  // file it came from ("" for the built-in default)
  RoutingMode routing = RoutingMode::kProxy;
  uint64_t forward_timeout_ms = 2'000;
  uint64_t connect_timeout_ms = 500;
  // Pooled connections to each peer; a burst beyond them waits in a queue.
  size_t forward_max_connections = 64;

  storage::FsyncMode fsync = storage::FsyncMode::kAlways;
  // reads = "durable" (default): a primary's GET never answers a write whose
  // batch is not yet durable (it waits for it); "latest": it answers what is
  // staged at once, which a crash may then take back.
  bool reads_latest = false;
  uint64_t segment_bytes = 64ull << 20;
  // Automatic compaction: when the dead bytes of sealed segments pass this
  // share of them (0 turns it off) and compact_min_bytes.
  double compact_dead_ratio = 0.5;
  uint64_t compact_min_bytes = 64ull << 20;
  // The CPU priority of a compaction's merge (and of hint files): "idle"
  // (SCHED_IDLE, the default), "low" (nice 19) or "normal"
  // (src/shard/background_thread.h).
  enum class CompactPriority { kIdle, kLow, kNormal };
  CompactPriority compact_priority = CompactPriority::kIdle;
  // A compaction's reads and writes, in bytes per second; 0: unpaced.
  uint64_t compact_bytes_per_s = 0;
  // Tombstones a connected replica still needs are kept from compaction, but
  // never for a replica more than this many records behind (it then gets a
  // snapshot).
  uint64_t replica_keep_records = 1'000'000;
  // Replaced segments a replica's stream still reads stay on disk (its pin),
  // but never beyond this many bytes: past it those streams are ended, and
  // the replica resumes from what the log holds then (the compacted range,
  // or a snapshot). 0: none are kept for a stream.
  uint64_t replica_keep_bytes = 1ull << 30;

  size_t max_key_bytes = 4096;
  size_t max_value_bytes = 16u << 20;

  net::ServerLimits server;  // [server] section

  int min_acks = 0;  // [replication]: replicas that must hold a write
  // Below forward_timeout_ms, so that a forwarded write reports the replica
  // timeout itself; unset, it is 3/4 of forward_timeout_ms (1500 by default).
  uint64_t ack_timeout_ms = 1'500;
  // A replica stream that has not drained its queue for this long is ended.
  uint64_t stall_timeout_ms = 10'000;

  AuthConfig auth;  // [auth]: tokens, roles, the cluster secret (off when absent)

  // [tls]: when present, the node's port speaks HTTPS only and the nodes talk
  // to each other over TLS, verifying each other against the CA.
  bool tls = false;
  net::TlsFiles tls_files;          // paths resolved against the config's directory
  bool tls_verify_clients = false;  // mutual TLS: clients need a certificate from the CA too

  // [coordinator]: automatic failover through etcd when `etcd` lists endpoints.
  std::vector<std::string> etcd;
  std::string etcd_prefix = "/distkv";
  uint64_t lease_ttl_ms = 3'000;
  uint64_t max_lag_records = 100'000;  // a replica further behind does not run
  // primary_reads = "lease": a primary answers reads only while its lease is
  // confirmed, as it does writes ("always": also when it is not).
  bool primary_reads_need_lease = true;
  std::vector<ShardConfig> shards;  // sorted by idx
};

// Parses and validates a sharding.toml. On failure returns false and sets
// *error to a one-line message naming the file, line and field.
bool LoadConfig(const std::string& path, ClusterConfig* config, std::string* error);
// The same, from text (tests; name is used in messages).
bool ParseConfig(const std::string& text, const std::string& name, ClusterConfig* config,
                 std::string* error);

// The configuration `make run` uses: one shard "default" owning every slot.
ClusterConfig SingleNodeConfig(const std::string& address);

}  // namespace distkv
