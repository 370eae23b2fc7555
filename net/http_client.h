// The outbound HTTP/1.1 client: used by the node to forward requests to
// other shards and to follow a primary, and by distkv-bench.
//
// ClientConnection is one keep-alive TCP connection that pipelines: requests
// are written as they are submitted, responses (parsed with llhttp) complete
// their callbacks in order. HttpClient keeps a pool of such connections per
// peer ("host:port") and reuses idle ones, so a forward costs no new TCP
// connection. Every request has a connect timeout and a response timeout; a
// dead or silent peer ends in an error callback, never a hang.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "net/http_message.h"
#include "net/inline_function.h"

namespace distkv::net {

enum class ClientError {
  kNone = 0,
  kConnectFailed,  // refused, unreachable, bad address
  kConnectTimeout,
  kTimeout,         // connected, but no complete response in time
  kConnectionLost,  // closed or reset before the response was complete
  kProtocol,        // the peer's bytes are not valid HTTP
  kShutdown,        // the client was closed with the request pending
  kBusy,            // waited for a free connection (max_connections_per_peer) in vain; not sent
};
std::string_view ClientErrorName(ClientError error);

struct ClientResult {
  ClientError error = ClientError::kNone;
  std::string detail;     // human-readable reason when error != kNone
  HttpResponse response;  // valid when error == kNone
};

struct OutboundRequest {
  std::string method = "GET";
  std::string target = "/";     // path and query, already encoded
  std::vector<Header> headers;  // Host and Content-Length are added
  // More headers, as complete "Name: value\r\n" lines written after those
  // above, shared by many requests: the forwarder builds its hop header and
  // cluster credentials once, instead of a header list to build, serialize
  // and free a request. Never Host, framing or Connection headers.
  std::shared_ptr<const std::string> header_lines;
  std::string body;
  // Optional streaming: when set, body bytes are delivered here as they
  // arrive instead of being collected in ClientResult::response.body
  // (used for long-lived replication streams). Return false to abort.
  std::function<bool(std::string_view chunk)> on_body;
  // Called with the status and headers as soon as they are parsed (streaming).
  std::function<void(const HttpResponse& head)> on_head;
  uint64_t timeout_ms = 0;  // 0: the client's default; for streams, idle time allowed between bytes
  // Requests to one peer with the same non-zero order_key reach the peer in
  // the order they were submitted: they share one connection while any of
  // them is unanswered (see HttpClient). 0: any connection will do.
  uint64_t order_key = 0;
  // The answer may come long after the request arrives (a write that waits
  // for a replica's acknowledgement): HttpClient pipelines nothing behind it.
  bool may_wait = false;
  // Relaying: when set, the response's headers this accepts are kept as
  // wire lines in ClientResult::response.header_lines, all others dropped
  // (framing and Connection always), and response.headers stays empty —
  // for an answer passed on unchanged, no header list is built.
  bool (*relay_header)(std::string_view name) = nullptr;
};

class TlsContext;

struct ClientOptions {
  uint64_t connect_timeout_ms = 1'000;
  uint64_t request_timeout_ms = 5'000;
  size_t max_idle_per_peer = 64;  // idle connections kept per peer
  // Requests in flight per pooled connection. Idle connections are used
  // first; pipelining only sets in when every connection is busy (and never
  // behind a streaming request).
  size_t max_pipeline = 8;
  // HTTPS: every connection starts with a TLS handshake that verifies the
  // peer against the context's CA (net/tls_context.h).
  std::shared_ptr<TlsContext> tls;
  // Told why a TLS handshake failed (the request's error detail says it too).
  std::function<void(std::string_view line)> log;
  // Connections per peer (0: no cap). When all are open and each carries
  // max_pipeline requests, further requests wait in a queue, oldest first,
  // for at most their timeout (then kBusy: never sent).
  size_t max_connections_per_peer = 64;
};

// Move-only, with room in place for the forwarder's callback (which holds
// the node's): a forwarded request allocates no callback (inline_function.h).
using ResponseCallback = InlineFunction<void(ClientResult& result), 72>;

class ClientConnection {
 public:
  // Starts connecting to host:port; requests may be submitted at once.
  ClientConnection(uv_loop_t* loop, const std::string& host, int port,
                   const ClientOptions& options);
  ~ClientConnection();  // closes the socket; pending callbacks get kShutdown
  void Submit(OutboundRequest request, ResponseCallback callback);
  size_t in_flight() const;
  bool usable() const;  // connected or connecting, not failed or closed
  // Called once when the connection fails or closes.
  void OnClose(std::function<void()> fn);
  void Close();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

class HttpClient {
 public:
  HttpClient(uv_loop_t* loop, const ClientOptions& options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // peer is "host:port". The callback runs on the loop exactly once. Both
  // are taken by reference and moved once, where the request is kept.
  void Request(const std::string& peer, OutboundRequest&& request, ResponseCallback&& callback);
  // Fails pending requests with kShutdown and closes every connection.
  void Close();

  struct Counters {
    uint64_t requests = 0;
    uint64_t connections_opened = 0;  // new TCP connections (reuse keeps this low)
    uint64_t errors = 0;
    uint64_t timeouts = 0;
    uint64_t resent = 0;  // GET/HEAD resent once: the peer had closed the idle connection we reused
    uint64_t queued = 0;  // requests that waited for a connection (max_connections_per_peer)
  };
  const Counters& counters() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits "host:port" (IPv4, host name or "[v6]:port"); false if malformed.
// ParseHostPort (net/address.h) says what is wrong.
bool SplitHostPort(std::string_view peer, std::string* host, int* port);

}  // namespace distkv::net
