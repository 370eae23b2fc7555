// Forwarder: answers a key-value request whose key another shard owns.
//
// In "proxy" mode the request is re-sent, in canonical form (/kv/{key}), to
// the owner's primary — or to one of its replicas for a read that asked for
// ?read=replica — over the pooled keep-alive connections of net::HttpClient,
// and the owner's answer comes back unchanged (status, ETag, Content-Type,
// X-Distkv-Shard, body). The forwarded request carries X-Distkv-Hop; a node
// that receives one for a key it does not own answers 421 rather than
// forwarding again, so two nodes that disagree about ownership cannot loop.
// The requests of one client connection carry its id as their order_key, so
// they reach the owner in the order the client sent them.
// An owner that cannot be reached gives 503 (refused), 504 (timed out) or
// 502 (broken answer), each naming the shard and address.
//
// In "redirect" mode the answer is 307 with Location on the owner instead.
#pragma once

#include <memory>
#include <string>

#include "net/http_client.h"
#include "net/inline_function.h"
#include "src/api/auth.h"
#include "src/api/kv_request.h"
#include "src/cluster/config.h"

namespace distkv {

inline constexpr std::string_view kHopHeader = "X-Distkv-Hop";

// The URL of target on the node at address: https:// when [tls] is on
// (every node's port then speaks HTTPS only), else http://. For Location.
std::string NodeUrl(const ClusterConfig& config, std::string_view address, std::string_view target);

class Forwarder {
 public:
  // Move-only, with room in place for the node's callback (a Responder, a
  // pointer and a start time): a forward allocates no callback.
  using Reply = net::InlineFunction<void(net::HttpResponse&& response), 32>;

  // auth adds the cluster secret and the client's role to forwarded requests.
  Forwarder(const ClusterConfig& config, net::HttpClient* client, const Authenticator* auth,
            std::string self_name);

  // original: the request as received (method, target); kv: what it asks
  // (its value is moved into the forwarded request). owner must outlive the
  // request: it is an entry of the node's shard map. role: the client's, which
  // the owner grants the forwarded request (no more).
  void Forward(const net::HttpRequest& original, KvRequest& kv, const ShardConfig& owner, Role role,
               Reply reply);
  // The 307 answer of redirect mode.
  net::HttpResponse Redirect(const net::HttpRequest& original, const ShardConfig& owner) const;

  struct Counters {
    uint64_t forwarded = 0;
    uint64_t to_replica = 0;
    uint64_t failed = 0;
  };
  const Counters& counters() const { return counters_; }

 private:
  void Send(const std::string& peer, const ShardConfig& owner, net::OutboundRequest&& request,
            Reply&& reply, bool fallback_to_primary);

  // The header lines every forward on behalf of a client of this role
  // carries (the hop header, the cluster credentials), built once.
  const std::shared_ptr<const std::string>& PeerHeaderLines(Role role);

  const ClusterConfig& config_;
  net::HttpClient* client_;
  const Authenticator* auth_;
  std::string self_name_;
  std::shared_ptr<const std::string> peer_lines_[static_cast<size_t>(Role::kNode) + 1];
  size_t next_replica_ = 0;
  Counters counters_;
};

// The error response for a peer that could not be reached.
net::HttpResponse UnreachableResponse(const net::ClientResult& result, const std::string& shard,
                                      const std::string& peer);

}  // namespace distkv
