#include "src/cluster/forwarder.h"

#include <memory>

namespace distkv {

namespace {
// Headers of the owner's answer that the client must see.
constexpr std::string_view kPassedBack[] = {"ETag",        "Content-Type", "X-Distkv-Shard",
                                            "Location",    "Allow",        "X-Distkv-Expires",
                                            "X-Distkv-TTL"};

// The filter of the relayed answer (OutboundRequest::relay_header): the
// owner's response reaches the client with only these of its headers, kept
// as the wire lines they came in.
bool IsPassedBack(std::string_view name) {
  for (std::string_view p : kPassedBack) {
    if (name.size() == p.size() && net::EqualsIgnoreCase(name, p)) return true;
  }
  return false;
}
}  // namespace

net::HttpResponse UnreachableResponse(const net::ClientResult& result, const std::string& shard,
                                      const std::string& peer) {
  const std::string who = "shard " + shard + " at " + peer;
  switch (result.error) {
    case net::ClientError::kConnectFailed:
      return net::MakeErrorResponse(
          503, "shard_unavailable",
          who + " refused the connection (" + result.detail + "); retry once it is back");
    case net::ClientError::kBusy:
      return net::MakeErrorResponse(
          503, "shard_busy",
          who + " is busy (" + result.detail + "); the request was not applied: retry later");
    case net::ClientError::kConnectTimeout:
    case net::ClientError::kTimeout:
      return net::MakeErrorResponse(504, "shard_timeout",
                                    who +
                                        " did not answer in time; the request may or may not "
                                        "have been applied there");
    default:
      return net::MakeErrorResponse(502, "bad_gateway",
                                    who + " gave no valid answer (" +
                                        std::string(net::ClientErrorName(result.error)) + ": " +
                                        result.detail + ")");
  }
}

Forwarder::Forwarder(const ClusterConfig& config, net::HttpClient* client,
                     const Authenticator* auth, std::string self_name)
    : config_(config), client_(client), auth_(auth), self_name_(std::move(self_name)) {}

std::string NodeUrl(const ClusterConfig& config, std::string_view address,
                    std::string_view target) {
  std::string url = config.tls ? "https://" : "http://";
  url.append(address).append(target);
  return url;
}

net::HttpResponse Forwarder::Redirect(const net::HttpRequest& original,
                                      const ShardConfig& owner) const {
  net::HttpResponse resp =
      net::MakeErrorResponse(307, "redirect",
                             "the key belongs to shard " + owner.name + " at " + owner.address +
                                 "; repeat the request there");
  resp.SetHeader("Location", NodeUrl(config_, owner.address, original.target));
  return resp;
}

void Forwarder::Forward(const net::HttpRequest& original, KvRequest& kv, const ShardConfig& owner,
                        Role role, Reply reply) {
  net::OutboundRequest out;
  switch (kv.op) {
    case KvOp::kGet:
      out.method = "GET";
      break;
    case KvOp::kPut:
      out.method = "PUT";
      out.body = std::move(kv.value);
      break;
    case KvOp::kDelete:
      out.method = "DELETE";
      break;
  }
  // A write that waits for a replica's acknowledgement may be answered long
  // after it arrives: nothing is pipelined behind it.
  out.may_wait = kv.op != KvOp::kGet && (kv.ack_replica || config_.min_acks > 0);
  out.target = "/kv/";
  net::AppendPercentEncoded(&out.target, kv.key);
  if (kv.ack_replica) out.target += "?ack=replica";
  for (std::string_view name : {"If-Match", "If-None-Match", "X-Distkv-TTL"}) {
    if (const std::string* v = original.header(name))
      out.headers.push_back({std::string(name), *v});
  }
  out.header_lines = PeerHeaderLines(role);
  out.timeout_ms = config_.forward_timeout_ms;
  out.relay_header = &IsPassedBack;
  // One client connection's requests reach the owner in the order sent, on
  // one pooled connection (RFC 9112 9.3.2: pipelined requests take effect
  // in order); different client connections still spread over the pool.
  out.order_key = original.connection_id;
  counters_.forwarded++;

  if (kv.op == KvOp::kGet && kv.read_replica && !owner.replicas.empty()) {
    counters_.to_replica++;
    const std::string& peer = owner.replicas[next_replica_++ % owner.replicas.size()];
    Send(peer, owner, std::move(out), std::move(reply), /*fallback_to_primary=*/true);
    return;
  }
  Send(owner.address, owner, std::move(out), std::move(reply), false);
}

const std::shared_ptr<const std::string>& Forwarder::PeerHeaderLines(Role role) {
  std::shared_ptr<const std::string>& lines = peer_lines_[static_cast<size_t>(role)];
  if (lines == nullptr) {
    std::vector<net::Header> headers = {{std::string(kHopHeader), self_name_}};
    auth_->AddPeerCredentials(&headers, role);
    std::string text;
    for (const net::Header& h : headers) text.append(h.name).append(": ").append(h.value) += "\r\n";
    lines = std::make_shared<const std::string>(std::move(text));
  }
  return lines;
}

void Forwarder::Send(const std::string& peer, const ShardConfig& owner,
                     net::OutboundRequest&& request, Reply&& reply, bool fallback_to_primary) {
  // A copy is kept only when a second attempt may need it. The callback
  // holds pointers to peer and owner: both live in the shard map, which
  // outlives every request. It fits the pool's callback in place (no
  // allocation; checked below).
  std::unique_ptr<net::OutboundRequest> retry;
  if (fallback_to_primary) retry = std::make_unique<net::OutboundRequest>(request);
  auto done = [this, peer = &peer, owner = &owner, reply = std::move(reply),
               retry = std::move(retry)](net::ClientResult& result) mutable {
    // A replica that is down, or not yet accepted by its primary (503): the
    // primary can answer the read.
    const bool failed = result.error != net::ClientError::kNone;
    if (retry && (failed || result.response.status == 503)) {
      Send(owner->address, *owner, std::move(*retry), std::move(reply), false);
      return;
    }
    if (failed) {
      counters_.failed++;
      reply(UnreachableResponse(result, owner->name, *peer));
      return;
    }
    reply(std::move(result.response));
  };
  static_assert(net::ResponseCallback::kFitsInline<decltype(done)>,
                "a forward's callback must not allocate: widen net::ResponseCallback");
  client_->Request(peer, std::move(request), std::move(done));
}

}  // namespace distkv
