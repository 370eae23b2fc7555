// The distkv C++ client library.
//
//   uv_loop_t* loop = uv_default_loop();
//   distkv::client::Client db(loop, {.seeds = {"127.0.0.2:8080"}});
//   db.Put("greeting", "hello", {}, [](distkv::client::Response& r) { ... });
//   uv_run(loop, UV_RUN_DEFAULT);
//
// or, without a loop of your own, distkv::client::SyncClient (sync_client.h).
//
// Routing. The client reads the cluster map from GET /cluster on one of its
// seeds, computes each key's slot (XXH3_64bits(key) % 16384, the same
// function the nodes use: src/common/key_slot.h) and sends the request
// straight to the owning shard's primary (a read that asks for a replica goes
// to one of the shard's replicas). Connections are pooled and kept alive per
// node (net::HttpClient), with connect and request timeouts.
//
// When the map is stale: a 307 is followed to its Location, a 421 or an
// answer carrying a newer X-Distkv-Epoch than the map's makes the client
// fetch the map again, and the request is repeated (at most max_attempts
// sends in all). When a node cannot be reached, a read (GET, scan, _mget) is
// retried on the shard's other nodes and then on any node (every node
// forwards); a write is retried only when it surely was not sent (the
// connection was refused), after refreshing the map — a failover may have
// moved the primary. A write that timed out is reported, never repeated: it
// may have been applied.
//
// Everything runs on the loop's thread; callbacks run there exactly once.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "net/http_message.h"
#include "src/client/slot_map.h"

namespace distkv::client {

struct Options {
  std::vector<std::string> seeds;  // host:port of any nodes of the cluster
  uint64_t connect_timeout_ms = 1'000;
  uint64_t request_timeout_ms = 5'000;
  int max_attempts = 3;              // sends per request, retries included
  std::vector<net::Header> headers;  // added to every request (e.g. Authorization)
};

// The answer to one request.
struct Response {
  int status = 0;            // HTTP status; 0 when no node could be reached
  std::string error;         // the error code of a JSON error body, or the transport error
  std::string message;       // what happened, for people
  std::string body;          // the value of a GET; the raw body otherwise
  uint64_t etag = 0;         // the record's LSN (ETag), when the answer has one
  int64_t expires_ms = -1;   // X-Distkv-Expires (unix ms), -1 when the key does not expire
  int64_t ttl_seconds = -1;  // X-Distkv-TTL: seconds left by the server's clock, -1: none
  std::string node;          // host:port of the node that answered
  std::string shard;         // X-Distkv-Shard
  bool ok() const { return status >= 200 && status < 300; }
  bool not_found() const { return status == 404; }
};

struct ReadOptions {
  bool replica = false;  // may be served by one of the shard's replicas (possibly stale)
};

struct WriteOptions {
  uint64_t if_match = 0;       // nonzero: only if the key's ETag is this LSN
  bool if_none_match = false;  // only if the key does not exist
  int64_t ttl_seconds = -1;    // >= 0 sends ?ttl= (0 removes a TTL)
};

struct ScanRequest {
  std::string prefix;
  std::string cursor;  // "" starts
  size_t limit = 100;
  bool values = false;
};

struct ScanPage {
  std::vector<std::string> keys;
  std::vector<std::string> values;  // with ScanRequest::values
  std::string cursor;               // "" when the scan is complete
};

// One key of a batch.
struct KeyResult {
  std::string key;
  int status = 0;  // as a single request would have answered
  std::string value;
  uint64_t etag = 0;
  std::string error;    // error code when status is not 2xx
  std::string message;  // and what happened (e.g. whether a failed write may be stored)
};

class Client {
 public:
  using Callback = std::function<void(Response& response)>;
  using ScanCallback = std::function<void(Response& response, ScanPage& page)>;
  using BatchCallback = std::function<void(Response& response, std::vector<KeyResult>& results)>;

  Client(uv_loop_t* loop, Options options);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void Get(const std::string& key, const ReadOptions& options, Callback done);
  void Put(const std::string& key, std::string value, const WriteOptions& options, Callback done);
  void Delete(const std::string& key, const WriteOptions& options, Callback done);
  // One page of a cluster-wide scan.
  void Scan(const ScanRequest& request, ScanCallback done);
  // Many keys in one request per shard, sent to the owners in parallel;
  // results come back in the order of keys.
  void MGet(const std::vector<std::string>& keys, BatchCallback done);
  // Many writes, one request per shard (each shard's part is atomic); results
  // in the order of pairs.
  void MPut(const std::vector<std::pair<std::string, std::string>>& pairs, BatchCallback done);
  // GET target on one node (any node when node is ""), e.g. "/stats".
  void NodeGet(const std::string& node, const std::string& target, Callback done);
  // Fetches the cluster map now.
  void RefreshMap(std::function<void(bool ok, const std::string& error)> done);

  const SlotMap& map() const;
  struct Counters {
    uint64_t requests = 0;
    uint64_t retries = 0;
    uint64_t redirects = 0;
    uint64_t map_refreshes = 0;
  };
  const Counters& counters() const;

  // Fails what is pending and closes every connection.
  void Close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace distkv::client
