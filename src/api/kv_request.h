// Turning an HTTP request into what the node must do: which endpoint, and for
// key-value requests the operation, the (percent-decoded) key, the value and
// the conditions. Both APIs land here: /kv/{key} and the seed projects'
// /get /retrieve /set /store /delete with query strings.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_message.h"
#include "src/api/scan_request.h"
#include "src/common/etag.h"

namespace distkv {

enum class Endpoint {
  kKv,
  kHealth,
  kStats,
  kMetrics,
  kCluster,
  kClusterStatus,  // every node's state, gathered by this one
  kUi,             // the live cluster page
  kCompact,
  kDigest,
  kReplicate,
  kReplicaAck,
  kClusterMap,
  kPromote,
  kPurge,      // drop the keys of slots this shard does not own
  kMigrate,    // start (or look at) a slot migration into this shard
  kSlots,      // /internal/slots/*: the source's side of a migration
  kScan,       // GET /kv?prefix=&cursor=&limit=
  kShardScan,  // GET /internal/scan (one shard's page, node to node)
  kMget,       // POST /kv/_mget
  kMput,       // POST /kv/_mput
};

enum class KvOp { kGet, kPut, kDelete };

struct KvRequest {
  KvOp op = KvOp::kGet;
  std::string key;
  std::string value;
  std::string if_match;  // the ETag's LSN digits; empty when absent
  bool has_if_match = false;
  bool if_none_match_star = false;
  // GET/HEAD If-None-Match: the ETags (LSNs) the client holds; the answer is
  // 304 when the current one is among them (or with *, when the key exists).
  std::vector<uint64_t> if_none_match;
  bool read_replica = false;  // ?read=replica: a forwarded read may go to a replica
  bool ack_replica = false;   // ?ack=replica: answer once a replica holds the write
  // PUT ?ttl=S or X-Distkv-TTL: S — the key expires S seconds after the write
  // (0: never; a PUT without one also clears an earlier TTL).
  uint64_t ttl_s = 0;
};

// The largest TTL taken: about 100 years.
inline constexpr uint64_t kMaxTtlSeconds = 100ull * 366 * 24 * 3600;

struct ParsedRequest {
  Endpoint endpoint = Endpoint::kHealth;
  KvRequest kv;
  ScanRequest scan;  // kScan, kShardScan
};

struct KeyLimits {
  size_t max_key_bytes = 4096;
  size_t max_value_bytes = 16u << 20;
};

// Fills *out, or returns false with the error response to send (400 for a bad
// key or escape, 404 for an unknown path, 405 for a method the path does not
// take, 412 for a malformed If-Match, 413 for a value above the limit). The
// request's body may be moved into out->kv.value.
bool ParseRequest(net::HttpRequest& request, const KeyLimits& limits, ParsedRequest* out,
                  net::HttpResponse* error);

// Keys travel percent-encoded, the same way everywhere (net/http_message.h).
using net::PercentEncode;

// "\"<lsn>\"": the ETag of a record.
std::string MakeEtag(uint64_t lsn);
// Appends "ETag: \"<lsn>\"\r\n", the header line of a record's answer
// (HttpResponse::header_lines), at most kMaxEtagLineBytes long.
inline constexpr std::string_view kEtagLinePrefix = "ETag: ";
constexpr size_t kMaxEtagLineBytes = kEtagLinePrefix.size() + kMaxEtagBytes + 2;  // and CRLF
void AppendEtagLine(uint64_t lsn, std::string* lines);

}  // namespace distkv
