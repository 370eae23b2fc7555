// Cursor scans: `GET /kv?prefix=P&cursor=C&limit=N&values=true`.
//
// A scan covers the whole cluster from any node. Each shard's keys are
// visited in the order of their 64-bit XXH3 hash (storage/key_index.h), so a
// position inside a shard is one number that means the same on every node
// of that shard and survives index growth, compaction and restarts. The
// cluster cursor names the shard (its position in the shard map, ordered by
// idx), that number and a fingerprint of the slot ownership the scan relied
// on: "<shard>-<16 hex digits>-<16 hex digits>"; "" starts and ends a scan.
// A slot migration that may have moved keys behind the cursor (into a shard
// already scanned, or into the current shard) changes the fingerprint, and
// the node then starts the scan over (src/node/scan.cc): keys of moved slots
// may then come twice, but none present throughout is missed. A node answers a page by asking the
// shard of the cursor for up to `limit` keys (GET /internal/scan, below), and moves on to the next
// shard in the same page when that one is exhausted.
//
// /internal/scan?shard=NAME&hash=<hex>&limit=N[&prefix=P][&values=1] is
// answered by any node of the shard (421 from a node of another shard) with a binary page (keys are
// bytes):
//   "<next hex> <end 0|1> <count>\n" then, per key,
//   "<key bytes> <value bytes> <lsn>\n" <key> <value>
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/http_message.h"

namespace distkv {

inline constexpr size_t kScanDefaultLimit = 100;
inline constexpr size_t kScanMaxLimit = 10000;

struct ScanRequest {
  std::string prefix;
  size_t limit = kScanDefaultLimit;
  bool values = false;
  size_t shard = 0;        // position in the shard map
  uint64_t hash = 0;       // position inside the shard
  uint64_t owners = 0;     // the cursor's slot ownership fingerprint (0: none yet)
  std::string shard_name;  // /internal/scan: the shard the sender means
};

using QueryParams = std::vector<std::pair<std::string, std::string>>;

// The public request (/kv?...). False with a 400 in *error for a bad limit or
// cursor.
bool ParseScanRequest(const QueryParams& params, ScanRequest* out, net::HttpResponse* error);
// The shard-local request (/internal/scan?...): hash instead of cursor.
bool ParseShardScanRequest(const QueryParams& params, ScanRequest* out, net::HttpResponse* error);
// The target of the shard-local request for the given position and limit.
std::string ShardScanTarget(const ScanRequest& scan, std::string_view shard_name, size_t limit);

std::string FormatScanCursor(size_t shard, uint64_t hash, uint64_t owners);
bool ParseScanCursor(std::string_view text, size_t* shard, uint64_t* hash, uint64_t* owners);

struct ShardScanEntry {
  std::string key;
  std::string value;
  uint64_t lsn = 0;
};
struct ShardScanPage {
  std::vector<ShardScanEntry> entries;
  uint64_t next = 0;
  bool end = false;
};

std::string EncodeShardScanPage(const ShardScanPage& page);
bool DecodeShardScanPage(std::string_view body, ShardScanPage* page);

// The public answer: {"keys":[...],"cursor":"..."} (+ "values":[...]).
void AppendScanJson(std::string* out, const std::vector<ShardScanEntry>& entries, bool values,
                    std::string_view cursor);

}  // namespace distkv
