// EtcdClient: the few etcd v3 calls the coordinator needs, over etcd's
// HTTP/JSON gateway (`/v3/...`, present in etcd 3.4), on the node's own
// pooled HTTP client — no gRPC, no blocking call on the loop.
//
// The gateway's JSON rules: keys and values are base64, 64-bit integers are
// JSON strings. Each call answers once, on the loop; `ok` false means etcd
// could not be asked or answered something unexpected (`error` says what).
// With several endpoints, a failed call moves on to the next one for the
// following calls.
//
// The calls are the ones Patroni uses against etcd 3: lease grant and
// keepalive, a ranged read of one key, and three compare-and-put
// transactions (key absent; key holding a value; key last changed at a
// revision).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "net/http_client.h"

namespace distkv {

struct EtcdKey {
  bool found = false;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

class EtcdClient {
 public:
  using Done = std::function<void(bool ok, const std::string& error)>;
  // ttl_s: what etcd granted; 0 when the lease no longer exists.
  using LeaseDone = std::function<void(bool ok, int64_t lease, int64_t ttl_s)>;
  using GetDone = std::function<void(bool ok, const EtcdKey& key)>;
  // succeeded: the transaction's comparison held and the put was made.
  using TxnDone = std::function<void(bool ok, bool succeeded)>;

  EtcdClient(net::HttpClient* client, std::vector<std::string> endpoints, uint64_t timeout_ms);

  void Grant(int64_t ttl_s, LeaseDone done);
  void KeepAlive(int64_t lease, LeaseDone done);
  void Get(const std::string& key, GetDone done);
  // Puts value (under lease when non-zero) if key does not exist.
  void PutIfAbsent(const std::string& key, const std::string& value, int64_t lease, TxnDone done);
  // Puts value (under lease) if key holds `expected`.
  void PutIfValue(const std::string& key, const std::string& expected, const std::string& value,
                  int64_t lease, TxnDone done);
  // Puts value if key was last modified at mod_revision (0: does not exist).
  void PutIfModRevision(const std::string& key, int64_t mod_revision, const std::string& value,
                        TxnDone done);
  // Deletes key if it holds `expected` (a primary stepping down).
  void DeleteIfValue(const std::string& key, const std::string& expected, TxnDone done);

  const std::string& last_error() const { return last_error_; }
  const std::string& endpoint() const { return endpoints_[current_]; }

 private:
  // POSTs body to path; parsed JSON object text to done, or ok = false.
  void Call(const std::string& path, std::string body,
            std::function<void(bool ok, const std::string& json)> done);
  void Txn(std::string compare, std::string success, TxnDone done);

  net::HttpClient* client_;
  std::vector<std::string> endpoints_;
  uint64_t timeout_ms_;
  size_t current_ = 0;
  std::string last_error_;
};

}  // namespace distkv
