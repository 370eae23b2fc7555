// AdminCaller: how the operator commands (distkv reshard, rebalance, compact,
// status) talk to the nodes of a config: one request at a time on a private
// libuv loop, HTTPS verified against the config's CA when [tls] is on, and a
// bearer token on every request.
#pragma once

#include <uv.h>

#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "net/http_client.h"
#include "src/cluster/config.h"

namespace distkv {

class AdminCaller {
 public:
  AdminCaller(const ClusterConfig& config, std::string token);
  ~AdminCaller();
  AdminCaller(const AdminCaller&) = delete;
  AdminCaller& operator=(const AdminCaller&) = delete;

  // Sends one request and waits for its result.
  net::ClientResult Call(const std::string& address, const std::string& method,
                         const std::string& target, std::string body = "");
  // For requests of one's own on the same loop: the client, and a way to run
  // the loop until done turns true.
  net::HttpClient* client() { return client_.get(); }
  void RunUntil(const bool& done);

 private:
  std::string token_;
  uv_loop_t loop_;
  std::unique_ptr<net::HttpClient> client_;
};

// The token an operator command sends: the config's cluster secret when it
// has one (reading and pushing maps is node-to-node traffic), else the one
// given (--token, or $DISTKV_TOKEN).
std::string AdminToken(const ClusterConfig& config, const std::string& given);

// GET /cluster/status from the first node of the config that answers (each
// shard's primary, then the replicas): every node's /stats in one document.
// False with *error when no node answered.
bool FetchClusterStatus(AdminCaller* caller, const ClusterConfig& config, nlohmann::json* status,
                        std::string* error);

// Fields of a node's JSON answer, read leniently: 0 or "" when the field is
// missing or of another type (a node of another version may lack it).
uint64_t FieldUnsigned(const nlohmann::json& j, const char* name);
std::string FieldString(const nlohmann::json& j, const char* name);

// A long operation's entry of a node's /stats "progress" as one line:
// "12.0 MB of 26.6 MB (45%), 3 segments, copying".
std::string ProgressText(const nlohmann::json& entry);
// Its share done in [0, 1], or -1 when the total is not known.
double ProgressShare(const nlohmann::json& entry);

}  // namespace distkv
