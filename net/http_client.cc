// HttpClient's pool and the ClientConnection facade; the connection itself
// is OutboundConnection (net/outbound_connection.h).
//
// The pool keeps, per peer, every open connection and a stack of the idle
// ones. A request takes the most recently idled connection (LIFO keeps the
// working set small and warm), else — when pipelining is allowed — a busy
// connection with room (never one carrying a stream), else opens a new one.
// So at light load every request has a connection to itself, and under
// saturation requests share connections: several go out in one write and
// come back in one read, which is what keeps forwarding cheap. A connection returns to the
// idle stack when its last pending response completes, before the caller's
// callback runs, so a caller that sends its next request from the callback
// reuses the same connection. Beyond max_idle_per_peer idle connections are
// closed. A GET or HEAD that fails because the peer closed a reused idle
// connection before answering is resent once on a new connection.
#include "net/http_client.h"

#include "net/address.h"

#include <algorithm>
#include <charconv>
#include <unordered_map>
#include <vector>

#include "net/outbound_connection.h"

namespace distkv::net {

std::string_view ClientErrorName(ClientError error) {
  switch (error) {
    case ClientError::kNone:
      return "none";
    case ClientError::kConnectFailed:
      return "connect_failed";
    case ClientError::kConnectTimeout:
      return "connect_timeout";
    case ClientError::kTimeout:
      return "timeout";
    case ClientError::kConnectionLost:
      return "connection_lost";
    case ClientError::kProtocol:
      return "protocol_error";
    case ClientError::kShutdown:
      return "shutdown";
  }
  return "unknown";
}

bool SplitHostPort(std::string_view peer, std::string* host, int* port) {
  HostPort parsed;
  std::string error;
  if (!ParseHostPort(std::string(peer), &parsed, &error)) return false;
  *host = std::move(parsed.host);
  *port = parsed.port;
  return true;
}

// --- ClientConnection -------------------------------------------------------

struct ClientConnection::Impl {
  std::shared_ptr<OutboundConnection> conn;
};

ClientConnection::ClientConnection(uv_loop_t* loop, const std::string& host, int port,
                                   const ClientOptions& options)
    : impl_(std::make_shared<Impl>()) {
  impl_->conn = OutboundConnection::Create(loop, host, port, options);
}

ClientConnection::~ClientConnection() { Close(); }

void ClientConnection::Submit(OutboundRequest request, ResponseCallback callback) {
  // A local reference: the callback may run at once and destroy this facade.
  std::shared_ptr<OutboundConnection> conn = impl_->conn;
  conn->Submit(std::move(request),
               [callback = std::move(callback)](ClientResult& result, OutboundRequest*) {
                 callback(result);
               });
}

size_t ClientConnection::in_flight() const { return impl_->conn->in_flight(); }
bool ClientConnection::usable() const { return impl_->conn->usable(); }
void ClientConnection::OnClose(std::function<void()> fn) { impl_->conn->OnClose(std::move(fn)); }
void ClientConnection::Close() {
  impl_->conn->Close(ClientError::kShutdown, "connection closed by its owner");
}

// --- HttpClient ---------------------------------------------------------------

struct HttpClient::Impl {
  struct Peer {
    std::string host;
    int port = 0;
    std::vector<std::shared_ptr<OutboundConnection>> open;
    std::vector<OutboundConnection*> idle;  // subset of open with nothing in flight
  };

  uv_loop_t* loop;
  ClientOptions options;
  Counters counters;
  bool closed = false;
  std::unordered_map<std::string, Peer> peers;  // node-based: Peer* stays valid

  Peer* FindPeer(const std::string& name) {
    auto it = peers.find(name);
    if (it != peers.end()) return &it->second;
    Peer peer;
    if (!SplitHostPort(name, &peer.host, &peer.port)) return nullptr;
    return &peers.emplace(name, std::move(peer)).first->second;
  }

  // A stream gets a connection of its own: it would hold up whatever is
  // pipelined behind it, and it would wait for whatever is ahead of it.
  OutboundConnection* Pick(Peer* peer, bool stream) {
    while (!peer->idle.empty()) {
      OutboundConnection* conn = peer->idle.back();
      peer->idle.pop_back();
      if (conn->usable() && conn->in_flight() == 0) return conn;
    }
    if (options.max_pipeline > 1 && !stream) {
      for (const auto& conn : peer->open) {
        if (conn->usable() && !conn->streaming() && conn->in_flight() < options.max_pipeline)
          return conn.get();
      }
    }
    return nullptr;
  }

  // Returns the new connection; it is pooled only if it has not already failed.
  std::shared_ptr<OutboundConnection> Open(Peer* peer) {
    ++counters.connections_opened;
    std::shared_ptr<OutboundConnection> conn =
        OutboundConnection::Create(loop, peer->host, peer->port, options);
    if (conn->usable()) {
      OutboundConnection* raw = conn.get();
      conn->OnClose([this, peer, raw] { Forget(peer, raw); });
      peer->open.push_back(conn);
    }
    return conn;
  }

  void Forget(Peer* peer, OutboundConnection* conn) {
    auto idle = std::find(peer->idle.begin(), peer->idle.end(), conn);
    if (idle != peer->idle.end()) peer->idle.erase(idle);
    auto open = std::find_if(peer->open.begin(), peer->open.end(),
                             [conn](const auto& c) { return c.get() == conn; });
    if (open != peer->open.end()) peer->open.erase(open);
  }

  void Release(Peer* peer, OutboundConnection* conn) {
    if (peer->idle.size() >= options.max_idle_per_peer) {
      conn->Close(ClientError::kShutdown, "idle connection beyond max_idle_per_peer");
      return;
    }
    peer->idle.push_back(conn);
  }

  static void Fail(ResponseCallback& callback, ClientError error, std::string detail) {
    ClientResult result;
    result.error = error;
    result.detail = std::move(detail);
    callback(result);
  }

  void Send(Peer* peer, OutboundRequest request, ResponseCallback callback, bool resent) {
    std::shared_ptr<OutboundConnection> fresh;
    OutboundConnection* conn = resent ? nullptr : Pick(peer, static_cast<bool>(request.on_body));
    if (conn == nullptr) {
      fresh = Open(peer);
      conn = fresh.get();
    }
    conn->Submit(std::move(request), [this, peer, conn, resent, callback = std::move(callback)](
                                         ClientResult& result, OutboundRequest* resend) mutable {
      if (resend != nullptr && !resent && !closed) {
        ++counters.resent;
        Send(peer, std::move(*resend), std::move(callback), true);
        return;
      }
      if (result.error != ClientError::kNone) {
        ++counters.errors;
        if (result.error == ClientError::kTimeout || result.error == ClientError::kConnectTimeout) {
          ++counters.timeouts;
        }
      } else if (!closed && conn->usable() && conn->in_flight() == 0) {
        Release(peer, conn);
      }
      callback(result);
    });
  }
};

HttpClient::HttpClient(uv_loop_t* loop, const ClientOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->loop = loop;
  impl_->options = options;
  if (impl_->options.max_pipeline == 0) impl_->options.max_pipeline = 1;
}

HttpClient::~HttpClient() { Close(); }

void HttpClient::Request(const std::string& peer, OutboundRequest request,
                         ResponseCallback callback) {
  ++impl_->counters.requests;
  if (impl_->closed) {
    ++impl_->counters.errors;
    Impl::Fail(callback, ClientError::kShutdown, "the client is closed");
    return;
  }
  Impl::Peer* p = impl_->FindPeer(peer);
  if (p == nullptr) {
    ++impl_->counters.errors;
    Impl::Fail(callback, ClientError::kConnectFailed,
               "bad peer address \"" + peer + "\" (want host:port)");
    return;
  }
  impl_->Send(p, std::move(request), std::move(callback), false);
}

void HttpClient::Close() {
  if (impl_->closed) return;
  impl_->closed = true;
  std::vector<std::shared_ptr<OutboundConnection>> all;
  for (auto& [name, peer] : impl_->peers) {
    all.insert(all.end(), peer.open.begin(), peer.open.end());
  }
  for (auto& conn : all) conn->Close(ClientError::kShutdown, "the client was closed");
  impl_->peers.clear();
}

const HttpClient::Counters& HttpClient::counters() const { return impl_->counters; }

}  // namespace distkv::net
