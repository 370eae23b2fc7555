// HttpClient's pool and the ClientConnection facade; the connection itself
// is OutboundConnection (net/outbound_connection.h).
//
// The pool keeps, per peer, every open connection and a stack of the idle
// ones. A request joins the connection the previous one went to while that
// connection's outbox still waits for this loop turn's write (so a burst of
// forwards costs one write here and one read at the peer), else takes the
// most recently idled connection (LIFO keeps the working set small and
// warm), else — a read, when pipelining is allowed — a busy connection with
// room, else opens a new one. Nothing waits behind a slower request: HTTP
// answers in order, and a write's answer may wait for the peer's group
// commit (or its replicas), so a read is never pipelined behind a write or a
// stream, and a write only behind writes that leave in the same write as it
// (the peer commits them together) — except behind requests of its own
// order_key, below. A connection returns to the
// idle stack when its last pending response completes, before the caller's
// callback runs, so a caller that sends its next request from the callback
// reuses the same connection. Beyond max_idle_per_peer idle connections are
// closed. A GET or HEAD that fails because the peer closed a reused idle
// connection before answering, or that was pipelined behind a request that
// timed out, is resent once on a new connection.
//
// Order. Requests with the same order_key (a client connection's, when the
// node forwards) go where the earlier unanswered ones of that key went, so
// the peer reads them in the order they were submitted; a Binding counts
// them and lets go of the connection when the last is answered. Different keys spread over
// the pool as before.
//
// Cap. At most max_connections_per_peer connections are open to a peer.
// When none has room, requests wait in the peer's FIFO queue and are sent
// as responses free room; a request whose key has requests in the queue
// queues behind them, so the queue keeps the order too. One timer fails
// requests that waited longer than their timeout (kBusy: never sent).
#include "net/http_client.h"

#include "net/address.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <unordered_map>
#include <vector>

#include "net/client_request.h"
#include "net/outbound_connection.h"
#include "net/uv_handle.h"

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
    case ClientError::kBusy:
      return "busy";
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
               [callback = std::move(callback)](ClientResult& result, OutboundRequest*) mutable {
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
  static constexpr size_t kMinSweep = 256;  // bindings kept before empty ones are swept
  // The connection that carries the unanswered requests of one order_key.
  struct Binding {
    std::shared_ptr<OutboundConnection> conn;  // null while its requests wait in the queue
    size_t outstanding = 0;                    // submitted on conn, not yet called back
    size_t queued = 0;                         // waiting in the peer's queue
  };
  // A request waiting for a connection (the peer has max_connections_per_peer
  // open, each carrying max_pipeline requests).
  struct Waiting {
    OutboundRequest request;
    ResponseCallback callback;
    bool resent = false;
    uint64_t deadline = 0;  // loop time: its timeout counts from when it was asked for
  };
  struct Peer {
    std::string host;
    int port = 0;
    std::vector<std::shared_ptr<OutboundConnection>> open;
    std::vector<OutboundConnection*> idle;  // subset of open with nothing in flight
    OutboundConnection* last = nullptr;     // where the latest request went (one of open)
    // A key's entry stays, empty, once its requests are answered: a client
    // connection that forwards one request at a time would otherwise cost
    // an allocation each. Empty entries are swept when the map has doubled.
    std::unordered_map<uint64_t, Binding> bindings;
    size_t sweep_at = kMinSweep;
    std::deque<Waiting> queue;
  };

  uv_loop_t* loop;
  ClientOptions options;
  Counters counters;
  bool closed = false;
  std::unordered_map<std::string, Peer> peers;  // node-based: Peer* stays valid
  uv_timer_t* queue_timer = nullptr;            // the earliest deadline of a waiting request
  uint64_t queue_timer_due = 0;

  Peer* FindPeer(const std::string& name) {
    auto it = peers.find(name);
    if (it != peers.end()) return &it->second;
    Peer peer;
    if (!SplitHostPort(name, &peer.host, &peer.port)) return nullptr;
    return &peers.emplace(name, std::move(peer)).first->second;
  }

  bool AtCap(const Peer* peer) const {
    return options.max_connections_per_peer != 0 &&
           peer->open.size() >= options.max_connections_per_peer;
  }

  // Whether a request may be pipelined behind conn's pending ones without
  // waiting for anything slower than itself. A read may follow reads. A write
  // may follow only writes that are still in this turn's outbox: the peer
  // reads them together and commits them in one group commit, so they are
  // answered together (and a read of their clients bound to conn later waits
  // for its own client's write anyway). Nothing follows a stream or a
  // may_wait request.
  bool CanJoin(const OutboundConnection* conn, bool write) const {
    if (!conn->usable() || conn->exclusive() || conn->in_flight() >= options.max_pipeline)
      return false;
    if (write) return conn->nothing_sent() && conn->carries_only_writes();
    return !conn->carries_write();
  }

  // The connection for a request that has no binding: the connection the
  // previous request went to, while its outbox still waits for this loop
  // turn's write and the request may join it (one write here and one read at
  // the peer for the lot); else an idle one; else, for a read, any
  // connection it may join. A stream or a may_wait request always gets a
  // connection of its own.
  OutboundConnection* Pick(Peer* peer, const OutboundRequest& request) {
    const bool exclusive = request.on_body || request.may_wait;
    const bool write = !IsRetryableMethod(request.method);
    const bool pipeline = options.max_pipeline > 1 && !exclusive;
    if (pipeline && peer->last != nullptr && peer->last->outbox_waiting() &&
        CanJoin(peer->last, write)) {
      return peer->last;
    }
    while (!peer->idle.empty()) {
      OutboundConnection* conn = peer->idle.back();
      peer->idle.pop_back();
      if (conn->usable() && conn->in_flight() == 0) return conn;
    }
    if (pipeline && !write) {
      for (const auto& conn : peer->open) {
        if (CanJoin(conn.get(), false)) return conn.get();
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
    if (peer->last == conn) peer->last = nullptr;
    peer->idle.erase(std::remove(peer->idle.begin(), peer->idle.end(), conn), peer->idle.end());
    auto open = std::find_if(peer->open.begin(), peer->open.end(),
                             [conn](const auto& c) { return c.get() == conn; });
    if (open != peer->open.end()) peer->open.erase(open);
  }

  void Release(Peer* peer, OutboundConnection* conn) {
    // A connection an order_key went to directly may still be on the stack.
    if (std::find(peer->idle.begin(), peer->idle.end(), conn) != peer->idle.end()) return;
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

  // The connection for a request, or nullptr when it must wait in the queue.
  // A request of a bound order_key goes where the earlier ones went (or
  // behind them in the queue); a resent one gets a new connection, since the
  // idle ones may be as stale as the one that failed.
  std::shared_ptr<OutboundConnection> Choose(Peer* peer, const OutboundRequest& request,
                                             bool resent) {
    if (request.order_key != 0) {
      auto it = peer->bindings.find(request.order_key);
      if (it != peer->bindings.end()) {
        if (it->second.queued > 0) return nullptr;
        if (it->second.conn != nullptr && it->second.conn->usable() && !resent)
          return it->second.conn;
      }
    }
    if (!resent) {
      if (OutboundConnection* conn = Pick(peer, request)) return conn->shared_from_this();
    }
    if (AtCap(peer)) return nullptr;
    return Open(peer);
  }

  // Requests and callbacks are passed down by reference and moved once, into
  // the connection's pending entry: each layer taking them by value cost a
  // move and a destruction of a few hundred bytes.
  void Send(Peer* peer, OutboundRequest&& request, ResponseCallback&& callback, bool resent) {
    std::shared_ptr<OutboundConnection> conn = Choose(peer, request, resent);
    if (conn == nullptr) {
      Enqueue(peer, std::move(request), std::move(callback), resent);
      return;
    }
    Submit(peer, std::move(conn), std::move(request), std::move(callback), resent);
  }

  void Submit(Peer* peer, std::shared_ptr<OutboundConnection> conn, OutboundRequest&& request,
              ResponseCallback&& callback, bool resent) {
    const uint64_t key = request.order_key;
    OutboundConnection* raw = conn.get();
    if (raw->usable()) peer->last = raw;  // usable: pooled, and Forget clears it on close
    if (key != 0) {
      Binding& binding = BindingOf(peer, key);
      binding.conn = std::move(conn);
      ++binding.outstanding;
    }
    // The pool's bookkeeping wraps the caller's callback, in place: see
    // kFitsInline below.
    auto done = [this, peer, raw, key, callback = std::move(callback), resent](
                    ClientResult& result, OutboundRequest* resend) mutable {
      if (key != 0) Unbind(peer, key);
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
      } else if (!closed && raw->usable() && raw->in_flight() == 0) {
        Release(peer, raw);
      }
      // A connection has room again: waiting requests go first.
      if (!closed && !peer->queue.empty()) ServeQueue(peer);
      callback(result);
    };
    static_assert(OutboundConnection::Callback::kFitsInline<decltype(done)>,
                  "the pool's callback must not allocate: widen OutboundConnection::Callback");
    raw->Submit(std::move(request), std::move(done));
  }

  static bool Empty(const Binding& b) { return b.outstanding == 0 && b.queued == 0; }

  Binding& BindingOf(Peer* peer, uint64_t key) {
    auto it = peer->bindings.find(key);
    if (it != peer->bindings.end()) return it->second;
    if (peer->bindings.size() >= peer->sweep_at) {
      std::erase_if(peer->bindings, [](const auto& entry) { return Empty(entry.second); });
      peer->sweep_at = std::max(kMinSweep, 2 * peer->bindings.size());
    }
    return peer->bindings[key];
  }

  // The key's requests are all answered: its entry stays, empty (see Peer).
  void Unbind(Peer* peer, uint64_t key) {
    auto it = peer->bindings.find(key);
    if (it == peer->bindings.end()) return;
    --it->second.outstanding;
    if (Empty(it->second)) it->second.conn.reset();
  }

  void Enqueue(Peer* peer, OutboundRequest&& request, ResponseCallback&& callback, bool resent) {
    ++counters.queued;
    if (request.order_key != 0) ++BindingOf(peer, request.order_key).queued;
    const uint64_t timeout =
        request.timeout_ms != 0 ? request.timeout_ms : options.request_timeout_ms;
    Waiting w;
    w.deadline = uv_now(loop) + timeout;
    w.request = std::move(request);
    w.callback = std::move(callback);
    w.resent = resent;
    peer->queue.push_back(std::move(w));
    ArmQueueTimer(peer->queue.back().deadline);
  }

  // Sends waiting requests, oldest first, while connections have room.
  void ServeQueue(Peer* peer) {
    while (!closed && !peer->queue.empty()) {
      Waiting& front = peer->queue.front();
      const uint64_t key = front.request.order_key;
      Binding* binding = nullptr;
      if (key != 0) {
        binding = &BindingOf(peer, key);
        --binding->queued;  // so that Choose does not send it back to the queue
      }
      std::shared_ptr<OutboundConnection> conn = Choose(peer, front.request, front.resent);
      if (conn == nullptr) {
        if (binding != nullptr) ++binding->queued;
        return;
      }
      Waiting w = std::move(front);
      peer->queue.pop_front();
      Submit(peer, std::move(conn), std::move(w.request), std::move(w.callback), w.resent);
    }
  }

  void ArmQueueTimer(uint64_t due) {
    if (queue_timer == nullptr) {
      queue_timer = new uv_timer_t;
      uv_timer_init(loop, queue_timer);
      queue_timer->data = this;
    } else if (uv_is_active(reinterpret_cast<uv_handle_t*>(queue_timer)) &&
               queue_timer_due <= due) {
      return;
    }
    const uint64_t now = uv_now(loop);
    queue_timer_due = due;
    uv_timer_start(
        queue_timer, [](uv_timer_t* t) { static_cast<Impl*>(t->data)->ExpireWaiting(); },
        due > now ? due - now : 0, 0);
  }

  // Requests that waited for a connection longer than their timeout fail:
  // they were never sent, so any method may be retried by the caller.
  void ExpireWaiting() {
    const uint64_t now = uv_now(loop);
    uint64_t next = 0;
    std::vector<std::pair<const std::string*, Waiting>> expired;
    for (auto& [name, peer] : peers) {
      for (auto it = peer.queue.begin(); it != peer.queue.end();) {
        if (it->deadline > now) {
          if (next == 0 || it->deadline < next) next = it->deadline;
          ++it;
          continue;
        }
        const uint64_t key = it->request.order_key;
        if (key != 0) {
          auto b = peer.bindings.find(key);
          if (b != peer.bindings.end() && --b->second.queued == 0 && b->second.outstanding == 0)
            b->second.conn.reset();
        }
        expired.emplace_back(&name, std::move(*it));
        it = peer.queue.erase(it);
      }
    }
    if (next != 0) ArmQueueTimer(next);
    for (auto& [name, w] : expired) {
      ++counters.errors;
      Fail(w.callback, ClientError::kBusy,
           "none of the " + std::to_string(options.max_connections_per_peer) + " connections to " +
               *name + " became free within " +
               std::to_string(w.request.timeout_ms != 0 ? w.request.timeout_ms
                                                        : options.request_timeout_ms) +
               " ms; the request was not sent");
    }
  }
};

HttpClient::HttpClient(uv_loop_t* loop, const ClientOptions& options)
    : impl_(std::make_unique<Impl>()) {
  impl_->loop = loop;
  impl_->options = options;
  if (impl_->options.max_pipeline == 0) impl_->options.max_pipeline = 1;
}

HttpClient::~HttpClient() { Close(); }

void HttpClient::Request(const std::string& peer, OutboundRequest&& request,
                         ResponseCallback&& callback) {
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
  std::vector<Impl::Waiting> waiting;
  for (auto& [name, peer] : impl_->peers) {
    for (Impl::Waiting& w : peer.queue) waiting.push_back(std::move(w));
  }
  impl_->peers.clear();
  if (impl_->queue_timer != nullptr) {
    impl_->queue_timer->data = nullptr;
    CloseAndDelete(impl_->queue_timer);
    impl_->queue_timer = nullptr;
  }
  for (Impl::Waiting& w : waiting) {
    ++impl_->counters.errors;
    Impl::Fail(w.callback, ClientError::kShutdown, "the client was closed");
  }
}

const HttpClient::Counters& HttpClient::counters() const { return impl_->counters; }

}  // namespace distkv::net
