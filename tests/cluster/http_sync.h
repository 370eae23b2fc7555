// SyncHttp: blocking HTTP calls for the cluster tests, on top of the
// project's own outbound client (net::HttpClient).
//
// A SyncHttp owns a private libuv loop and an HttpClient on it. Each call
// submits its request(s) and runs the loop until every callback has fired,
// so a test reads like a script while the bytes on the wire are exactly what
// the node's peers and distkv-bench send. The client's connect and request
// timeouts bound every call; a guard timer on top of them turns a client that
// never calls back into a clear test failure instead of a hang.
//
// Reply differs from net::ClientResult in one way that matters to tests:
// status is 0 unless an HTTP response really arrived, so `status == 200`
// cannot pass on a transport error.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "net/http_client.h"
#include "net/http_message.h"

namespace distkv::clustertest {

struct Reply {
  int status = 0;  // 0 when no response arrived (see error)
  net::ClientError error = net::ClientError::kNone;
  std::string detail;  // the client's reason when error != kNone
  std::vector<net::Header> headers;
  std::string body;

  bool answered() const { return error == net::ClientError::kNone; }
  // The header's value, or "" when it is absent.
  std::string Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
};

// "HTTP 404 {...body...}" or "no response (kTimeout: ...)", for check messages.
std::ostream& operator<<(std::ostream& out, const Reply& reply);

// One request of a batch, and the node ("host:port") it goes to.
struct Call {
  std::string peer;
  net::OutboundRequest request;
};

Call MakeCall(std::string peer, std::string method, std::string target, std::string body = "",
              std::vector<net::Header> headers = {});

// The tests encode keys exactly as the node's own forwarder does.
using net::PercentEncode;

class SyncHttp {
 public:
  // Runs once per reply of SendAll, on the test's thread, in arrival order.
  using ReplyHook = std::function<void(size_t index, const Reply& reply)>;

  SyncHttp();
  explicit SyncHttp(const net::ClientOptions& options);
  ~SyncHttp();
  SyncHttp(const SyncHttp&) = delete;
  SyncHttp& operator=(const SyncHttp&) = delete;

  Reply Send(const std::string& peer, std::string method, std::string target, std::string body = "",
             std::vector<net::Header> headers = {});
  Reply Get(const std::string& peer, std::string target, std::vector<net::Header> headers = {});

  // Sends every call with at most `concurrency` requests in flight (the
  // client's pool spreads them over as many connections) and returns the
  // replies in the order of `calls`.
  std::vector<Reply> SendAll(std::vector<Call> calls, size_t concurrency, ReplyHook on_reply = {});

  static net::ClientOptions DefaultOptions();

 private:
  struct Batch;
  void RunUntilDone(const std::shared_ptr<Batch>& batch);
  void SubmitNext(const std::shared_ptr<Batch>& batch);

  uv_loop_t loop_;
  uv_timer_t guard_;
  std::unique_ptr<net::HttpClient> client_;
  uint64_t guard_ms_per_round_ = 0;  // longest a request can take, with slack
};

}  // namespace distkv::clustertest
